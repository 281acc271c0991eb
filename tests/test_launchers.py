"""Slurm / local launchers, the model catalogue and launchers/: configs composed as users compose them.

Nothing here loads a model or needs a GPU. Slurm is faked by two tiny executables on PATH (`srun`, whose
presence submitit checks, and `sbatch`, which answers with a job id), so the test reads the exact sbatch
scripts that a cluster would receive.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.plugins import Plugins
from hydra.types import HydraContext
from omegaconf import OmegaConf

import introspection.core.config  # noqa: F401  (schemas and resolvers)
from introspection.cli import check_overrides, group_options, rewrite_model_sides
from introspection.outputs.sweep import sweep_name
from tests.helpers import run_main

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
LAUNCHERS = ROOT / "launchers"
PAIRS = group_options("model")
ENTRIES = group_options("model/llm")


def composed(overrides: list[str], hydra: bool = True):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=overrides, return_hydra_config=hydra)


# --------------------------------------------------------------------------------------------------
# Model catalogue


def test_catalogue_has_the_issue_models():
    for pair in ("demo", "llama3_8b", "llama3_70b", "qwen2_5_7b", "qwen2_5_72b", "gemma", "mistral"):
        assert pair in PAIRS
    assert {"llama3_1_8b", "llama3_1_70b", "qwen2_5_7b", "qwen2_5_72b", "gemma2_9b", "mistral_7b"} <= set(ENTRIES)


def test_every_pair_composes_with_two_families():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        pairs = {p: compose(config_name="config", overrides=[f"model={p}"]).model for p in PAIRS if p != "demo"}
    for pair, model in pairs.items():
        assert model.name == pair
        assert model.m1.name != model.m2.name
        assert model.m1.path.split("/")[0] != model.m2.path.split("/")[0], f"{pair}: M2 should be another family"


def test_every_entry_is_a_valid_model_entry():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        sides = {e: compose(config_name="config", overrides=["model=llama3_8b", f"model/llm@model.m2={e}"]).model.m2
                 for e in ENTRIES}
    for entry, m in sides.items():
        assert m.name == entry, f"conf/model/llm/{entry}.yaml: name should equal the file name"
        assert 1 <= m.tensor_parallel_size <= m.gpus, f"{entry}: vLLM's tensor_parallel_size needs that many GPUs"
        assert m.source in ("hub", "embedded", "server") and m.path
        if m.source == "server":  # an endpoint's model: where it is served and which variable holds its key
            assert m.base_url.startswith(("http://", "https://")), f"{entry}: base_url {m.base_url!r}"
    assert sides["llama3_1_70b"].path == "meta-llama/Llama-3.1-70B-Instruct"
    assert sides["llama3_1_70b"].tensor_parallel_size == 4


def test_one_side_swap_spellings():
    argv = ["-m", "model=llama3_70b", "model.m2=gemma2_9b", "model/m1=qwen2_5_7b", "model.m1.gpus=8", "seed=1"]
    assert rewrite_model_sides(argv) == ["-m", "model=llama3_70b", "model/llm@model.m2=gemma2_9b",
                                         "model/llm@model.m1=qwen2_5_7b", "model.m1.gpus=8", "seed=1"]
    cfg = composed(rewrite_model_sides(["model=llama3_70b", "model.m2=gemma2_9b"]))
    assert (cfg.model.m1.name, cfg.model.m2.name) == ("llama3_1_70b", "gemma2_9b")
    assert cfg.model.m2.chat_template == "gemma"
    # the Slurm request follows the swapped pair: max(4, 1) GPUs
    slurm = composed(rewrite_model_sides(["model=llama3_8b", "model.m1=llama3_1_70b", "hydra/launcher=slurm"]))
    assert OmegaConf.to_container(slurm.hydra.launcher, resolve=True)["gpus_per_node"] == 4


def test_cli_names_the_valid_entries():
    problem = check_overrides(rewrite_model_sides(["model=llama3_8b", "model.m2=nope"]))
    assert problem is not None and "'nope'" in problem and "qwen2_5_7b" in problem and "\n" not in problem
    assert check_overrides(rewrite_model_sides(["model=llama3_8b", "model.m2=mistral_7b,gemma2_9b"])) is None


# --------------------------------------------------------------------------------------------------
# Slurm preset


def test_cfg_hydra_resolves_without_a_gpu(monkeypatch):
    """The issue's check, through the real entry point (argv validation included), in this process."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    out = run_main(["model=llama3_70b", "tasks=all", "hydra/launcher=slurm", "--cfg", "hydra"])
    launcher = yaml.safe_load(out.stdout)["hydra"]["launcher"]
    assert launcher["_target_"] == "hydra_plugins.introspection_launcher.launcher.SlurmLauncher"
    assert launcher["gpus_per_node"] == "${max:${model.m1.gpus},${model.m2.gpus}}"  # resolved per job


@pytest.mark.parametrize("pair", ["llama3_8b", "llama3_70b", "demo"])
def test_slurm_resources_follow_the_model_config(pair):
    cfg = composed([f"model={pair}", "tasks=all", "hydra/launcher=slurm"])
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    gpus = max(cfg.model.m1.gpus, cfg.model.m2.gpus)
    assert launcher["_target_"] == "hydra_plugins.introspection_launcher.launcher.SlurmLauncher"
    assert launcher["gpus_per_node"] == gpus
    assert launcher["cpus_per_task"] == 8 * gpus and launcher["mem_gb"] == 64 * gpus
    assert launcher["tasks_per_node"] == 1 and launcher["nodes"] == 1
    assert any("WANDB_MODE" in line for line in launcher["setup"])


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch) -> Path:
    """`srun` and `sbatch` stand-ins; sbatch hands out job ids 1001, 1002, ..."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sbatch").write_text(
        '#!/bin/sh\nn=$(cat "$0.count" 2>/dev/null || echo 1000); n=$((n + 1)); echo $n > "$0.count"\n'
        'echo "Submitted batch job $n"\n')
    for tool in ("srun", "sbatch"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def _launcher(cfg):
    """The launcher exactly as Hydra builds it for a multirun of this config."""
    loader = GlobalHydra.instance().hydra.config_loader  # type: ignore[union-attr]
    from hydra._internal.callbacks import Callbacks

    context = HydraContext(config_loader=loader, callbacks=Callbacks())
    return Plugins.instance().instantiate_launcher(hydra_context=context, task_function=lambda c: None, config=cfg)


def _sbatch_flags(text: str) -> dict[str, str]:
    return dict(re.findall(r"^#SBATCH --([\w-]+)(?:=(.*))?$", text, flags=re.M))


def test_slurm_executor_gets_each_jobs_resources(tmp_path, fake_slurm, monkeypatch):
    # the submitting shell's environment: passed into the job scripts, except the W&B key
    monkeypatch.setenv("HF_HOME", "/shared/hf cache")
    monkeypatch.setenv("HF_HUB_CACHE", "/shared/hf cache/hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_TOKEN", "hf_fakehftoken0launcher0test00000")
    monkeypatch.setenv("INTROSPECTION_CACHE", "/shared/introspection store")
    monkeypatch.setenv("WANDB_PROJECT", "introspection-70b")
    monkeypatch.setenv("WANDB_API_KEY", "fakewandbkey0launcher0test0000000000000")
    monkeypatch.setenv("WANDB_IDENTITY_TOKEN", "fakewandbtoken0launcher0test")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    sweep_dir = tmp_path / "multirun" / "grid"
    overrides = ["tasks=all", "hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.account=lab",
                 "hydra.launcher.qos=high", "hydra.launcher.array_parallelism=2", f"hydra.sweep.dir={sweep_dir}"]
    jobs = [["model=llama3_8b", "seed=0"], ["model=llama3_70b", "seed=0"], ["model=llama3_8b", "seed=1"]]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
        launcher = _launcher(cfg)

        # executor parameters, as submitit will hold them
        plan = launcher.plan(jobs)
        assert [positions for _, positions in plan] == [[0, 2], [1]]
        executor = launcher.make_executor(plan[1][0])
        assert executor.cluster == "slurm"
        params = executor._executor.parameters
        assert params["gpus_per_node"] == 4 and params["cpus_per_task"] == 32 and params["mem"] == "256GB"
        assert params["partition"] == "gpu" and params["account"] == "lab" and params["qos"] == "high"
        assert params["time"] == 1440 and params["ntasks_per_node"] == 1 and params["array_parallelism"] == 2
        assert executor._executor.max_num_timeout == 3

        # what sbatch receives: one array per resource shape, submitted without a cluster
        submitted = launcher.submit(jobs, initial_job_idx=0)
    assert [j.job_id for j in submitted] == ["1001_0", "1002", "1001_1"]
    scripts = {p.parent.name: p.read_text() for p in sweep_dir.glob(".submitit/*/*_submission.sh")}
    small, large = _sbatch_flags(scripts["1001"]), _sbatch_flags(scripts["1002"])
    assert small["gpus-per-node"] == "1" and small["cpus-per-task"] == "8" and small["mem"] == "64GB"
    assert small["array"] == "0-1%2"
    assert large["gpus-per-node"] == "4" and large["cpus-per-task"] == "32" and large["mem"] == "256GB"
    assert "array" not in large
    for flags in (small, large):
        assert flags["partition"] == "gpu" and flags["account"] == "lab" and flags["qos"] == "high"
        assert flags["time"] == "1440" and flags["ntasks-per-node"] == "1" and flags["job-name"] == "introspection"
        assert flags["signal"] == "USR2@300"
        assert "requeue" in flags and "no-requeue" not in flags  # requeued even where JobRequeue=0
        assert "wckey" not in flags  # submitit's default --wckey=submitit is rejected where wckeys are enforced
    assert "export VLLM_WORKER_MULTIPROC_METHOD=spawn" in scripts["1002"]
    assert "srun" in scripts["1002"] and "submitit.core._submit" in scripts["1002"]
    # the job's environment, set before its srun step: srun on Slurm 22.05 gets the job's CPUs only
    # through SRUN_CPUS_PER_TASK; HF_* and WANDB_* come from the submitting shell, quoted
    for name, cpus in (("1001", 8), ("1002", 32)):
        setup = scripts[name].split("# setup\n")[1].split("# command")[0].splitlines()
        assert f"export SRUN_CPUS_PER_TASK={cpus}" in setup
        assert "export HF_HOME='/shared/hf cache'" in setup and "export HF_HUB_OFFLINE=1" in setup
        assert "export HF_HUB_CACHE='/shared/hf cache/hub'" in setup
        # every job uses the submitter's store, even where sbatch passes no environment (--export=NONE)
        assert "export INTROSPECTION_CACHE='/shared/introspection store'" in setup
        assert "export INTROSPECTION_SIGNAL_DELAY_S=300" in setup  # the finetune's deadline (time_limit.py)
        # secrets: named, never written (sbatch passes them in the environment)
        assert "fakehftoken" not in scripts[name] and "HF_TOKEN=" not in scripts[name]
        assert "# from sbatch's environment, not written here: HF_TOKEN WANDB_API_KEY WANDB_IDENTITY_TOKEN" in setup
        assert "export WANDB_PROJECT=introspection-70b" in setup
        assert "export WANDB_MODE=offline" in setup and sum(line.startswith("export WANDB_MODE=") for line in setup) == 1
        assert "WANDB_API_KEY=" not in scripts[name] and "fakewandbkey" not in scripts[name]
        assert "fakewandbtoken" not in scripts[name]  # any secret-named variable stays out of the file
    assert scripts["1002"].index("SRUN_CPUS_PER_TASK") < scripts["1002"].index("\nsrun ")
    # the job pickles (the whole config, a command-line credential included) are the owner's only
    assert (sweep_dir / ".submitit").stat().st_mode & 0o777 == 0o700
    assert list(sweep_dir.glob(".submitit/*/*_submitted.pkl"))


def test_wckey_and_requeue_are_written_only_as_the_user_sets_them(tmp_path, fake_slurm, monkeypatch):
    monkeypatch.delenv("INTROSPECTION_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        for name, extra in (("wckey", ["hydra.launcher.wckey=lab-gpu"]), ("norequeue", ["hydra.launcher.requeue=false"])):
            sweep_dir = tmp_path / name
            cfg = compose(config_name="config", return_hydra_config=True,
                          overrides=["hydra/launcher=slurm", f"hydra.sweep.dir={sweep_dir}", *extra])
            _launcher(cfg).submit([["model=llama3_8b"]], initial_job_idx=0)
            (script,) = sweep_dir.glob(".submitit/*/*_submission.sh")
            flags = _sbatch_flags(script.read_text())
            if name == "wckey":
                assert flags["wckey"] == "lab-gpu" and "requeue" in flags
            else:
                assert "no-requeue" in flags and "requeue" not in flags and "wckey" not in flags
            # no INTROSPECTION_CACHE where it was submitted: the submitter's default store, spelled out
            assert f"export INTROSPECTION_CACHE={tmp_path}/home/.cache/introspection" in script.read_text()


def test_an_empty_store_variable_is_refused_at_submission(tmp_path, fake_slurm, monkeypatch):
    monkeypatch.setenv("INTROSPECTION_CACHE", " ")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", return_hydra_config=True,
                      overrides=["hydra/launcher=slurm", f"hydra.sweep.dir={tmp_path}"])
        with pytest.raises(ValueError, match="INTROSPECTION_CACHE is set but empty"):
            _launcher(cfg).plan([["model=llama3_8b"]])


def test_submitit_folder_is_private_up_to_its_first_placeholder(tmp_path):
    from hydra_plugins.introspection_launcher.launcher import private_folder

    assert private_folder(f"{tmp_path}/a/.submitit/%j") == tmp_path / "a" / ".submitit"
    assert private_folder(f"{tmp_path}/b/.submitit/job_%A_%a") == tmp_path / "b" / ".submitit"
    assert private_folder(f"{tmp_path}/c/fixed") == tmp_path / "c" / "fixed"
    for name in ("a", "b", "c"):
        folder = tmp_path / name / (".submitit" if name != "c" else "fixed")
        assert folder.stat().st_mode & 0o777 == 0o700


def test_a_job_without_gpus_asks_for_none(tmp_path, fake_slurm):
    """gpus_per_node 0 (or null) writes no --gpus-per-node line: a cluster without GPUs refuses one."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        for gpus in ("0", "null"):
            sweep_dir = tmp_path / gpus
            cfg = compose(config_name="config", return_hydra_config=True,
                          overrides=["hydra/launcher=slurm", f"hydra.launcher.gpus_per_node={gpus}",
                                     "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2",
                                     f"hydra.sweep.dir={sweep_dir}"])
            launcher = _launcher(cfg)
            assert launcher.plan([["model=llama3_8b"]])[0][0]["gpus_per_node"] is None
            launcher.submit([["model=llama3_8b"]], initial_job_idx=0)
            (script,) = sweep_dir.glob(".submitit/*/*_submission.sh")
            flags = _sbatch_flags(script.read_text())
            assert "gpus-per-node" not in flags and flags["cpus-per-task"] == "1" and flags["mem"] == "2GB"
            assert "export SRUN_CPUS_PER_TASK=1" in script.read_text()


def test_a_sweep_wide_launcher_override_wins(tmp_path, fake_slurm):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", return_hydra_config=True,
                      overrides=["hydra/launcher=slurm", "hydra.launcher.gpus_per_node=2", f"hydra.sweep.dir={tmp_path}"])
        plan = _launcher(cfg).plan([["model=llama3_70b"], ["model=llama3_8b"]])
    assert len(plan) == 1 and plan[0][0]["gpus_per_node"] == 2 and plan[0][0]["cpus_per_task"] == 16


# --------------------------------------------------------------------------------------------------
# Local launcher: a real multirun through submitit's pickled-job path


def fake_task(cfg) -> float:
    """Stands in for the experiment: writes a results.json as tracking.write_results does."""
    out = Path(HydraConfig.get().runtime.output_dir)
    m1, m2 = cfg.model.m1.name, cfg.model.m2.name
    cells = [{"predictor": p, "target": t, "kind": "self" if p == t else "cross", "accuracy": 0.5, "ci_low": 0.4,
              "ci_high": 0.6, "n": 100, "mode_baseline": 0.3, "compliance": 1.0} for t in (m1, m2) for p in (m1, m2)]
    (out / "results.json").write_text(json.dumps({
        "models": {"m1": m1, "m2": m2}, "matrix": cells,
        "job": {"group": cfg.logger.group, "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), "pid": os.getpid()}}))
    return 0.5


def _multirun(argv: list[str], monkeypatch) -> None:
    import hydra

    monkeypatch.setattr(sys, "argv", ["test_launchers", "-m", *argv])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    GlobalHydra.instance().clear()
    try:
        hydra.main(version_base="1.3", config_path=str(CONF), config_name="config")(fake_task)()
    finally:
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = None  # type: ignore[assignment]


def test_local_launcher_runs_jobs_through_submitit(tmp_path, monkeypatch):
    sweep_dir = tmp_path / "multirun" / "local_grid"
    _multirun(["hydra/launcher=local", "logger=none", "model=llama3_8b,llama3_70b", f"hydra.sweep.dir={sweep_dir}",
               "hydra/hydra_logging=none", "hydra/job_logging=none"], monkeypatch)
    records = {d.name: json.loads((d / "results.json").read_text())["job"] for d in sweep_dir.iterdir()
               if (d / "results.json").is_file()}
    assert set(records) == {"0", "1"}
    assert records["0"]["pid"] != os.getpid() != records["1"]["pid"]  # each job ran in its own process
    assert records["0"]["cuda"] == "0" and records["1"]["cuda"] == "0,1,2,3"  # its model's GPUs
    assert records["0"]["group"] == records["1"]["group"] == sweep_name(sweep_dir) == "local_grid"
    assert list(sweep_dir.glob(".submitit/*/*_result.pkl"))
    # the end-of-multirun callback (conf/config.yaml) gathered both jobs
    table = json.loads((sweep_dir / "sweep_results.json").read_text())
    assert [j["status"] for j in table["jobs"]] == ["ok", "ok"] and len(table["rows"]) == 8
    assert (sweep_dir / "sweep_matrices.png").stat().st_size > 0


def test_a_failed_job_is_awaited_and_tabulated(tmp_path, fake_slurm):
    """Hydra raises for a failed job and skips on_multirun_end, so the launcher writes the table first."""
    from hydra.core.utils import JobReturn, JobStatus

    class DeadJob:  # a job killed outside Hydra (node failure, OOM kill)
        job_id = "1001_1"

        def done(self):  # sacct reports it ended
            return True

        def results(self):
            raise RuntimeError("job 1001_1 was killed")

    job_dir = tmp_path / "0"
    job_dir.mkdir()
    (job_dir / "results.json").write_text(json.dumps({"models": {"m1": "a", "m2": "b"}, "matrix": []}))
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", return_hydra_config=True,
                      overrides=["hydra/launcher=slurm", "logger=none", f"hydra.sweep.dir={tmp_path}"])
        launcher = _launcher(cfg)
    dead = launcher.wait(DeadJob())
    assert dead.status == JobStatus.FAILED and "killed" in str(dead._return_value)
    with pytest.raises(SystemExit) as stopped:  # the table, then `error: 1 of 2 jobs failed; ...` and exit 2
        launcher.finish([JobReturn(status=JobStatus.COMPLETED, _return_value=0.5), dead],
                        [["model=demo"], ["model=llama3_8b"]], 0)
    assert stopped.value.code == 2
    table = json.loads((tmp_path / "sweep_results.json").read_text())
    assert [j["job"] for j in table["jobs"]] == ["0", "1"] and (tmp_path / "sweep_results.csv").is_file()
    assert table["jobs"][1]["status"] == "failed" and "killed" in table["jobs"][1]["error"]


class QueuedJob:
    """A submitit job stand-in: no result until `done_after` checks, then a completed one."""

    def __init__(self, job_id: str, done_after: int | None):
        self.job_id, self.done_after, self.checks = job_id, done_after, 0

    def done(self) -> bool:
        self.checks += 1
        return self.done_after is not None and self.checks > self.done_after

    def results(self):
        from hydra.core.utils import JobReturn, JobStatus

        return [JobReturn(status=JobStatus.COMPLETED, _return_value=0.5)]


@pytest.mark.parametrize("squeue_says", ["listed", "gone"])
def test_waiting_on_a_cluster_without_sacct(tmp_path, fake_slurm, monkeypatch, squeue_says):
    """Without accounting, submitit cannot see that a job ended without a result (scancel, OOM kill):
    the launcher asks squeue, and fails a job that has left the queue for the grace period."""
    from hydra.core.utils import JobStatus

    from hydra_plugins.introspection_launcher.launcher import SlurmLauncher

    squeue = {"listed": "#!/bin/sh\necho PENDING\n",
              "gone": "#!/bin/sh\necho 'slurm_load_jobs error: Invalid job id specified' >&2\nexit 1\n"}[squeue_says]
    (fake_slurm / "squeue").write_text(squeue)
    (fake_slurm / "squeue").chmod(0o755)
    monkeypatch.setattr(SlurmLauncher, "LEFT_QUEUE_GRACE_S", 0.3)
    monkeypatch.setattr(SlurmLauncher, "QUEUE_POLL_S", 0.05)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", return_hydra_config=True,
                      overrides=["hydra/launcher=slurm", "logger=none", f"hydra.sweep.dir={tmp_path}"])
        launcher = _launcher(cfg)
    if squeue_says == "listed":  # pending for longer than the grace period, then a result
        job = QueuedJob("1001_0", done_after=20)
        assert launcher.wait(job).status == JobStatus.COMPLETED and job.checks == 21
    else:
        ret = launcher.wait(QueuedJob("1001_1", done_after=None))
        assert ret.status == JobStatus.FAILED and "1001_1 left the Slurm queue without a result" in str(ret._return_value)


TERMINATED_ATTEMPT = """
import os, signal, sys, time
from pathlib import Path
from types import SimpleNamespace
from omegaconf import OmegaConf
from hydra_plugins.introspection_launcher.launcher import _Termination, _end_attempt_without_result

job_dir = Path(sys.argv[1])
started, termination = time.time(), _Termination()
os.kill(os.getpid(), signal.SIGTERM)  # what Slurm sends on requeue, preemption or scancel
assert termination.time is not None  # recorded, not fatal
(job_dir / "error.txt").write_text("inference for m failed in its worker process (exit code -15)\\n")
ret = SimpleNamespace(hydra_cfg=OmegaConf.create({"hydra": {"runtime": {"output_dir": str(job_dir)}}}))
_end_attempt_without_result(ret, started)
print("not reached")
"""


def test_an_attempt_ended_by_slurm_leaves_no_result(tmp_path):
    """SIGTERM (requeue) is recorded; the attempt then exits before submitit could write a result, and
    the error.txt its killed workers caused is removed, so the requeued attempt alone decides."""
    proc = subprocess.run([sys.executable, "-c", TERMINATED_ATTEMPT, str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 128 + 15, proc.stderr[-2000:]
    assert "not reached" not in proc.stdout and not (tmp_path / "error.txt").exists()


# --------------------------------------------------------------------------------------------------
# launchers/


def test_accelerate_and_deepspeed_configs():
    fsdp = yaml.safe_load((LAUNCHERS / "accelerate_fsdp.yaml").read_text())
    assert fsdp["distributed_type"] == "FSDP" and fsdp["mixed_precision"] == "bf16"
    assert fsdp["fsdp_config"]["fsdp_use_orig_params"] is False  # PEFT + FSDP memory savings
    assert fsdp["fsdp_config"]["fsdp_cpu_ram_efficient_loading"] is True
    zero3 = yaml.safe_load((LAUNCHERS / "accelerate_deepspeed_zero3.yaml").read_text())
    assert zero3["distributed_type"] == "DEEPSPEED" and zero3["deepspeed_config"]["zero_stage"] == 3
    assert zero3["deepspeed_config"]["zero3_save_16bit_model"] is True
    ds = json.loads((LAUNCHERS / "deepspeed_zero3.json").read_text())
    assert ds["zero_optimization"]["stage"] == 3
    assert ds["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
    for cfg in (fsdp, zero3):
        assert cfg["num_machines"] == 1 and cfg["use_cpu"] is False


def test_sbatch_wrapper_is_valid_bash_and_runs_the_slurm_sweep():
    script = LAUNCHERS / "submit_sweep.sbatch"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    assert re.search(r"^#SBATCH --time=", text, flags=re.M)
    assert "-m introspection.main -m hydra/launcher=slurm" in text
    assert "unset" in text and "SLURM_" in text  # child jobs must not inherit this allocation's settings
    assert os.access(script, os.X_OK)


def test_wandb_sweep_file_drives_valid_hydra_overrides():
    sweep = yaml.safe_load((LAUNCHERS / "wandb_sweep.yaml").read_text())
    assert "${args_no_hyphens}" in sweep["command"] and "introspection.main" in sweep["command"]
    # every value of every parameter, as the agent passes them (key=value), composes against the schema
    overrides = [f"{k}={','.join(map(str, v['values'])) if 'values' in v else v['value']}"
                 for k, v in sweep["parameters"].items()]
    assert check_overrides(rewrite_model_sides(overrides)) is None
