"""A sweep on a real Slurm cluster: two tiny-model pairs through `hydra/launcher=slurm`, one job requeued
while it runs.

Needs a cluster that answers `sinfo` (CI starts a one-node one with launchers/local_slurm/start.sh);
elsewhere the test skips and says why. The jobs are real submissions (sbatch, an srun step, submitit's
pickled job), sized from the launcher config like any sweep: 1 CPU and 2 GB each, no GPU line, so both
run at once on a 2-CPU node. Job 0 is requeued (`scontrol requeue`) as soon as it has sealed an
artifact of its own; it must start again, reuse that artifact, and end with the same results as an
uninterrupted run of the same pair. A second test sends one job Slurm's time-limit signal (SIGUSR2) in
the middle of a finetune: the finetune stops at a checkpoint, the job requeues itself, and its next
attempt resumes the finetune, ending with the adapters of an uninterrupted run. Every run uses one
OpenMP thread, so the numbers do not depend on how many cores a process happened to see.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers import TINY_SIZES, tiny_side
from tests.tiny_model import build_tiny_model

ROOT = Path(__file__).resolve().parents[1]
SWEEP_TIMEOUT_S = 900  # ~2 min on an idle 2-core machine; generous for a loaded one


def slurm_problem() -> str | None:
    """Why no Slurm cluster can run jobs here, or None."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return "Slurm is absent (no sbatch/sinfo on PATH); as root, launchers/local_slurm/start.sh starts a one-node cluster"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        return "Slurm does not answer: sinfo timed out after 15 s"
    states = out.stdout.split()
    if out.returncode != 0 or not any(s.rstrip("*~#") in ("idle", "mixed", "allocated") for s in states):
        return f"no Slurm node can run jobs (sinfo: {(out.stderr or out.stdout).strip()[:200] or 'no nodes'})"
    return None


pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def slurm_cluster() -> None:
    """Skips, with the reason, where no Slurm cluster runs jobs (asked only when a test here runs)."""
    problem = slurm_problem()
    if problem is not None:
        pytest.skip(reason=problem)


def scontrol(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["scontrol", *args], capture_output=True, text=True, timeout=30)


def job_record(job_id: str) -> dict[str, str]:
    """`scontrol show job` as key -> value (Slurm keeps a finished job's record for MinJobAge seconds)."""
    out = scontrol("show", "job", "--oneliner", job_id).stdout
    return dict(re.findall(r"(\w+(?::\w+)?)=(\S*)", out))


def manifests(store: Path) -> dict[Path, dict]:
    found = {}
    for path in store.glob("artifacts/*/*/_manifest.json"):
        try:
            found[path] = json.loads(path.read_text())
        except (OSError, ValueError):  # being written
            pass
    return found


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def requeue_and_release(job_id: str) -> None:
    """Requeue a running job; Slurm holds a requeued job for two minutes (BeginTime), so start it sooner.

    Not at once: the requeue revokes the first attempt's job credential, and slurmd compares times in whole
    seconds, so an attempt launched within the same second is killed ("Job credential revoked") and the
    job ends FAILED. A few seconds' hold is what a real cluster's two minutes guarantee."""
    done = scontrol("requeue", job_id)
    assert done.returncode == 0, done.stderr
    for _ in range(60):
        state = job_record(job_id).get("JobState")
        if state == "PENDING" and scontrol("update", f"JobId={job_id}", "StartTime=now+5").returncode == 0:
            return
        if state == "RUNNING" and job_record(job_id).get("Restarts") == "1":
            return
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} was not pending after its requeue: {job_record(job_id)}")


def controller_log(array_id: str | None) -> str:
    """slurmctld's lines about the array (why a job was killed or never started), for a failure message."""
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30).stdout
    found = re.search(r"^SlurmctldLogFile\s*=\s*(\S+)", config, flags=re.M)
    if array_id is None or found is None or not Path(found.group(1)).is_file():
        return ""
    log_lines = Path(found.group(1)).read_text(errors="replace").splitlines()
    # An array task appears as JobId=<array>_<task>(<own id>), and some lines name only its own id.
    ids = {array_id, *re.findall(rf"JobId={array_id}_\d+\((\d+)\)", "\n".join(log_lines))}
    alternatives = "|".join(map(re.escape, ids))
    pattern = re.compile(rf"JobId=({alternatives})(?![0-9])")
    lines = [ln for ln in log_lines if pattern.search(ln)]
    return "\nslurmctld:\n" + "\n".join(lines[-40:])


def submitted_array(sweep: Path, strict: bool = True) -> str | None:
    """The Slurm id of the sweep's one job array (both jobs ask for the same resources): submitit keeps
    `.submitit/<array id>/` (the sbatch script) and `.submitit/<array id>_<task>/` (each task's logs)."""
    ids = [p.name for p in (sweep / ".submitit").glob("*") if p.is_dir() and "_" not in p.name]
    if strict:
        assert len(ids) == 1, f"expected one job array, got {ids}"
    return ids[0] if len(ids) == 1 else None


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory, tiny_pair) -> Path:
    """tiny_a and tiny_b (the session's tiny_pair, whose run tiny_run is) and tiny_c, side by side in one folder."""
    base = tmp_path_factory.mktemp("slurm_models")
    (base / "tiny_a").symlink_to(tiny_pair[0], target_is_directory=True)
    (base / "tiny_b").symlink_to(tiny_pair[1], target_is_directory=True)
    build_tiny_model(base / "tiny_c", seed=2)
    return base


def stop(*procs: subprocess.Popen, job: str | None) -> None:
    """End whatever a test left running: its processes, and its Slurm job (none once it completed)."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
    if job:
        subprocess.run(["scancel", job], capture_output=True, timeout=30)


def test_slurm_sweep_with_a_requeued_job(slurm_cluster, tmp_path, tiny_models, tiny_run):
    started = time.monotonic()
    store, sweep = tmp_path / "store", tmp_path / "sweep"
    # The same pair as job 0, uninterrupted, on one thread: the session's tiny run (tests/conftest.py).
    reference, reference_store = tiny_run.run_dir, tiny_run.store
    name = f"introspection-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1",
           "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT)}
    # Two pairs, (tiny_a, tiny_b) and (tiny_a, tiny_c): M2's path follows its name, so one sweep key
    # gives two pairs (a second key would give their product).
    m2 = [o for o in tiny_side("m2", "unused", "unused") if ".path=" not in o and ".name=" not in o]
    pairs = [*tiny_side("m1", tiny_models / "tiny_a", "tiny_a"), *m2, "model.m2.name=tiny_b,tiny_c",
             f"model.m2.path={tiny_models}/${{model.m2.name}}"]
    launcher = ["hydra/launcher=slurm", f"hydra.launcher.name={name}", "hydra.launcher.gpus_per_node=0",
                "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2", "hydra.launcher.timeout_min=20"]
    submitter = subprocess.Popen(
        [sys.executable, "-m", "introspection.main", "-m", f"hydra.sweep.dir={sweep}", *launcher, *TINY_SIZES,
         f"store_dir={store}", *pairs], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    array_id = None
    try:
        # Job 0 has sealed an artifact only it computes (tiny_b's): requeue it while it runs.
        deadline = time.monotonic() + 240
        sealed = None
        while sealed is None:
            assert submitter.poll() is None, f"the sweep ended before job 0 could be requeued:\n{submitter.stdout.read()[-3000:]}"
            assert time.monotonic() < deadline, "job 0 sealed no artifact of tiny_b within 240 s"
            sealed = next((p for p, m in manifests(store).items() if m.get("info", {}).get("model") == "tiny_b"), None)
            time.sleep(0.2)
        sealed_bytes, sealed_mtime = sealed.read_bytes(), sealed.stat().st_mtime_ns
        array_id = submitted_array(sweep)
        job0 = f"{array_id}_0"
        assert job_record(job0).get("JobState") == "RUNNING", job_record(job0)
        requeue_and_release(job0)

        out, _ = submitter.communicate(timeout=SWEEP_TIMEOUT_S - (time.monotonic() - started))
    finally:
        stop(submitter, job=array_id or submitted_array(sweep, strict=False))
    elapsed = time.monotonic() - started
    assert submitter.returncode == 0, out[-4000:] + controller_log(array_id)

    # Real submissions with the launcher's resources: 1 CPU, 2 GB, no GPU line, srun given the CPUs.
    script = (sweep / ".submitit" / array_id / f"{array_id}_submission.sh").read_text()
    assert re.search(r"^#SBATCH --cpus-per-task=1$", script, flags=re.M)
    assert re.search(r"^#SBATCH --mem=2GB$", script, flags=re.M) and "--gpus-per-node" not in script
    assert "export SRUN_CPUS_PER_TASK=1" in script and "export HF_HUB_OFFLINE=1" in script
    for task in ("0", "1"):
        record = job_record(f"{array_id}_{task}")
        assert record.get("JobState") == "COMPLETED", record
        assert record.get("NumCPUs") == "1" and record.get("MinMemoryNode") == "2G", record
    assert job_record(job0).get("Restarts") == "1"  # Slurm requeued it once
    assert job_record(f"{array_id}_1").get("Restarts") == "0"

    # The requeued job ran twice and its second attempt reused the store instead of recomputing.
    log = "".join(p.read_text() for p in (sweep / ".submitit" / job0).glob(f"{job0}_0_log.*"))
    assert log.count("Starting with JobEnvironment") == 2, log[-3000:]
    reused = [int(n) for n in re.findall(r"artifacts computed \d+, reused (\d+)", log)]
    assert len(reused) == 1 and reused[0] >= 1, log[-3000:]  # only the second attempt got to its summary
    assert sealed.read_bytes() == sealed_bytes and sealed.stat().st_mtime_ns == sealed_mtime

    # Its results equal the uninterrupted run's: the matrix cell for cell, every raw answer, and the
    # adapters byte for byte (same artifact keys in both stores, as the keys hash their inputs).
    requeued = json.loads((sweep / "0" / "results.json").read_text())
    expected = json.loads((reference / "results.json").read_text())
    assert requeued["models"] == expected["models"] == {"m1": "tiny_a", "m2": "tiny_b"}
    assert requeued["matrix"] == expected["matrix"]
    assert read_jsonl(sweep / "0" / "items.jsonl") == read_jsonl(reference / "items.jsonl")
    reference_adapters = sorted(reference_store.glob("artifacts/adapters/*/adapter/*.safetensors"))
    assert len(reference_adapters) == 4  # self and cross, for each model of the pair
    for path in reference_adapters:
        assert (store / path.relative_to(reference_store)).read_bytes() == path.read_bytes()
    assert json.loads((sweep / "1" / "results.json").read_text())["models"] == {"m1": "tiny_a", "m2": "tiny_c"}

    # The end-of-sweep table, written by the submitting process once both jobs were back.
    table = json.loads((sweep / "sweep_results.json").read_text())
    assert [j["status"] for j in table["jobs"]] == ["ok", "ok"]
    csv = (sweep / "sweep_results.csv").read_text().splitlines()
    assert len(csv) == 1 + len(table["rows"]) and {"tiny_b", "tiny_c"} <= {r["target"] for r in table["rows"]}
    print(f"slurm sweep with a requeued job: {elapsed:.0f} s")


def release_requeued(job_id: str, timeout: float = 60) -> None:
    """The job requeued itself (submitit, on SIGUSR2): start it in 5 s instead of Slurm's two-minute hold."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = job_record(job_id)
        if record.get("Restarts") == "1" and record.get("JobState") == "PENDING":
            if scontrol("update", f"JobId={job_id}", "StartTime=now+5").returncode == 0:
                return
        if record.get("Restarts") == "1" and record.get("JobState") == "RUNNING":
            return
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not requeue itself after SIGUSR2: {job_record(job_id)}")


def store_without_finetunes(source: Path, target: Path) -> Path:
    """A copy of `source` without its adapters and their answers: a run on it trains again, on the same rows."""
    shutil.copytree(source, target, symlinks=True)
    for manifest in target.glob("artifacts/answers/*/_manifest.json"):
        if "[" in json.loads(manifest.read_text())["info"]["model"]:  # a finetuned model's label: tiny_a[self]
            shutil.rmtree(manifest.parent)
    shutil.rmtree(target / "artifacts" / "adapters")
    return target


def test_time_limit_signal_mid_finetune_resumes_from_its_checkpoint(slurm_cluster, tmp_path, tiny_models, tiny_run):
    """Slurm's time-limit signal (SIGUSR2, what `--signal=USR2@<signal_delay_s>` sends to every process of
    the job step) comes while a finetune runs: the finetune stops at a checkpoint, the job requeues itself
    (submitit), and its next attempt resumes the finetune from that checkpoint, ending with adapters equal
    to an uninterrupted run's: the session's tiny run, whose config this is."""
    started = time.monotonic()
    sweep, release = tmp_path / "sweep", tmp_path / "release"
    # tiny_run's store less its adapters and their answers: the base models' answers are reused, the four
    # finetunes run again (their keys are tiny_run's: checkpoint_every_steps is not hashed).
    store = store_without_finetunes(tiny_run.store, tmp_path / "store")
    # The first finetune holds at the end of its step 2 of 4 (introspection/core/faults.py) until the test has
    # signalled it; a checkpoint every step. The requeued attempt finds the release file and goes through.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1",
           "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT), "INTROSPECTION_FAULT": f"finetune-step:2:wait:{release}"}
    pair = [*tiny_side("m1", tiny_models / "tiny_a", "tiny_a"), *tiny_side("m2", tiny_models / "tiny_b", "tiny_b")]
    launcher = ["hydra/launcher=slurm", f"hydra.launcher.name=introspection-test-{uuid.uuid4().hex[:8]}",
                "hydra.launcher.gpus_per_node=0", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2",
                "hydra.launcher.timeout_min=20"]
    submitter = subprocess.Popen(
        [sys.executable, "-m", "introspection.main", "-m", f"hydra.sweep.dir={sweep}", *launcher, *TINY_SIZES,
         "finetune.checkpoint_every_steps=1", f"store_dir={store}", *pair],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    array_id = None
    try:
        deadline = time.monotonic() + 300
        while not list(store.glob("checkpoints/*/checkpoint-*/complete.json")):  # a finetune is under way
            assert submitter.poll() is None, f"the sweep ended before any finetune checkpointed:\n{submitter.stdout.read()[-3000:]}"
            assert time.monotonic() < deadline, "no finetune checkpoint within 300 s"
            time.sleep(0.1)
        array_id = job = submitted_array(sweep)  # one job: submitit submits it as a plain job, not an array
        signalled = subprocess.run(["scancel", "--signal=USR2", job], capture_output=True, text=True, timeout=30)
        assert signalled.returncode == 0, signalled.stderr
        time.sleep(1.0)  # the signal reaches every process of the step before the held finetune goes on
        release.touch()
        release_requeued(job)
        out, _ = submitter.communicate(timeout=SWEEP_TIMEOUT_S - (time.monotonic() - started))
    finally:
        release.touch()
        stop(submitter, job=array_id)
    assert submitter.returncode == 0, out[-4000:] + controller_log(array_id)

    # the script: requeue on, the store and offline switch passed, no workload key
    script = (sweep / ".submitit" / array_id / f"{array_id}_submission.sh").read_text()
    assert re.search(r"^#SBATCH --requeue$", script, flags=re.M) and "--wckey" not in script
    assert "export INTROSPECTION_CACHE=" in script and "export HF_HUB_OFFLINE=1" in script
    record = job_record(job)
    assert record.get("JobState") == "COMPLETED" and record.get("Restarts") == "1", record

    log = "".join(p.read_text() for p in (sweep / ".submitit" / job).glob(f"{job}_0_log.*"))
    assert log.count("Starting with JobEnvironment") == 2, log[-3000:]
    assert "checkpoints and stops first" in log, log[-3000:]  # the job waited for the finetune
    stopped = re.findall(r"the finetune stopped at step (\d+) of (\d+) on SIGUSR2", log)
    resumed = re.findall(r"resuming the finetune from \S+checkpoint-(\d+) \(step \d+\)", log)
    assert len(stopped) == 1 and resumed == [stopped[0][0]], log[-3000:]
    assert 0 < int(stopped[0][0]) < int(stopped[0][1])  # mid-finetune
    lineages = [json.loads(path.read_text()) for path in store.glob("artifacts/adapters/*/adapter/lineage.json")]
    resumed_from = [x.get("resumed_from_step") for x in lineages]
    assert len(resumed_from) == 4 and resumed_from.count(None) == 3 and int(stopped[0][0]) in resumed_from
    assert not list(store.glob("checkpoints/*/checkpoint-*"))  # sealed adapters keep no checkpoints

    # the resumed adapter equals the uninterrupted run's, as do the other three and the results
    reference_adapters = sorted(tiny_run.store.glob("artifacts/adapters/*/adapter/*.safetensors"))
    assert len(reference_adapters) == 4
    for path in reference_adapters:
        assert (store / path.relative_to(tiny_run.store)).read_bytes() == path.read_bytes()
    assert json.loads((sweep / "0" / "results.json").read_text())["matrix"] == tiny_run.results["matrix"]
    print(f"time-limit signal mid-finetune: {time.monotonic() - started:.0f} s")
