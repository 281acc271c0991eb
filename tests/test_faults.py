"""Resume under faults: a run killed with SIGKILL (the whole process group, as an OOM kill or a pre-empted
job would be) inside inference, inside finetuning or inside scoring is rerun to the same result bit for
bit, redoing only the unfinished stage; inference keeps its finished batches. Damaged artifacts are
found by their checksums and recomputed, never read.

The kill points are introspection/core/faults.py's test hook (INTROSPECTION_FAULT=<point>:<n>). The tiny
models are random, so the comparison is of bytes, not of quality: every artifact (items, answers, SFT
rows, adapter weights) and the scored matrix must equal those of an uninterrupted run. The uninterrupted
reference runs in parallel with the killed runs (each on one thread: identical numerics, two cores used).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from introspection.core.store import MANIFEST, Store, file_sha256
from tests.helpers.checks import SECRETS, assert_store_consistent, secrets_found

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 900

# Files whose bytes legitimately differ between two identical runs: timestamps, temporary paths, and
# PEFT's target_modules (a set, saved in hash order). Everything else in the store must match exactly.
VOLATILE = {MANIFEST, "lineage.json", "training_args.bin", "adapter_config.json"}


def overrides(tiny_pair, store: Path, run_dir: Path, logger: str = "none") -> list[str]:
    """As tests/test_pipeline.py, smaller: 3 inference batches per object/train job, 3 finetuning steps."""
    out = ["tasks=smoke", f"logger={logger}", "inference=hf", f"store_dir={store}", f"hydra.run.dir={run_dir}",
           "tasks.n_train_items=6", "tasks.n_test_items=4", "tasks.n_finetune_per_property=6",
           "inference.batch_size=2", "inference.max_tokens=12", "inference.max_tokens_hypothetical=4",
           "finetune.epochs=1", "finetune.batch_size=4", "finetune.lora.r=4", "finetune.lora.alpha=8"]
    for slot, path, name in (("m1", tiny_pair[0], "tiny_a"), ("m2", tiny_pair[1], "tiny_b")):
        out += [f"model.{slot}.source=local", f"model.{slot}.path={path}", f"model.{slot}.name={name}",
                f"model.{slot}.chat_template=null", f"model.{slot}.dtype=float32"]
    return out


def run_env(fault: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "INTROSPECTION_FAULT"}
    # One thread everywhere: the same numerics in every run, and the reference runs beside the others.
    env |= {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
            "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", **SECRETS}
    if fault:
        env["INTROSPECTION_FAULT"] = fault
    return env


def command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "introspection.main", *args]


def run(args: list[str], fault: str | None = None) -> subprocess.CompletedProcess:
    # Its own session: the hook kills the run's whole process group, never pytest.
    return subprocess.run(command(args), cwd=ROOT, env=run_env(fault), capture_output=True, text=True,
                          timeout=TIMEOUT_S, start_new_session=True)


def log_of(proc) -> str:
    return proc.stdout + proc.stderr


def answering(log: str) -> list[str]:
    """The models whose inference worker started in this run: 'tiny_a', 'tiny_a[self]', ..."""
    return re.findall(r"\[introspection\.stages\.answers\]\[INFO\] - (\S+): answering \d+ prompts", log)


def finetuning(log: str) -> list[str]:
    """The finetuning workers started in this run, by base label."""
    return re.findall(r"\[introspection\.stages\.adapters\]\[INFO\] - finetuning (\S+) on ", log)


def artifact_files(store: Path) -> dict[str, str]:
    """relative path -> sha256 of every artifact file whose bytes must be reproducible."""
    root = store / "artifacts"
    return {str(p.relative_to(root)): file_sha256(p) for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in VOLATILE}


def first_differences(got, expected) -> list:
    if isinstance(got, list) and isinstance(expected, list) and len(got) == len(expected):
        return [(g, e) for g, e in zip(got, expected, strict=True) if g != e][:2]
    return [got, expected]


@dataclass
class Reference:
    proc: subprocess.Popen
    base: Path

    def wait(self) -> dict:
        self.proc.wait(timeout=TIMEOUT_S)
        log = (self.base / "log.txt").read_text()
        assert self.proc.returncode == 0, log[-4000:]
        return json.loads((self.base / "run" / "results.json").read_text())

    @property
    def store(self) -> Path:
        return self.base / "store"


@pytest.fixture(scope="module")
def reference(tiny_pair, tmp_path_factory):
    """An uninterrupted run of the same config, started now and awaited by the tests that compare with it."""
    base = tmp_path_factory.mktemp("reference")
    with open(base / "log.txt", "w") as log:
        proc = subprocess.Popen(command(overrides(tiny_pair, base / "store", base / "run")), cwd=ROOT, env=run_env(),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    yield Reference(proc, base)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_runs_killed_in_inference_finetuning_and_scoring_resume_to_the_uninterrupted_result(
        tiny_pair, reference, tmp_path):
    store = tmp_path / "store"
    args = overrides(tiny_pair, store, tmp_path / "run")
    answers = store / "artifacts" / "answers"

    # 1. Killed inside inference: tiny_a's first job (6 prompts, 3 batches) has written 2 batches.
    first = run(args, fault="answer-batch:2")
    assert first.returncode == -signal.SIGKILL, log_of(first)[-3000:]
    assert answering(log_of(first)) == ["tiny_a"]
    batches = sorted(p.name for p in (store / "partial" / "answers").glob("*/batch-*.jsonl"))
    assert batches == ["batch-00000.jsonl", "batch-00001.jsonl"]
    assert not answers.exists() or not any(answers.iterdir())  # no answers artifact is complete yet

    # 2. Rerun, killed inside finetuning (tiny_a on its own behaviour, after step 2 of 3).
    second = run(args, fault="finetune-step:2")
    assert second.returncode == -signal.SIGKILL, log_of(second)[-3000:]
    log = log_of(second)
    assert answering(log) == ["tiny_a", "tiny_b"] and finetuning(log) == ["tiny_a"]
    resumed = [json.loads(m.read_text())["info"] for m in answers.glob(f"*/{MANIFEST}")]
    by_job = {(i["model"], i["job"]): i for i in resumed}
    assert by_job[("tiny_a", "object/train")]["batches_resumed"] == 2  # kept, not recomputed
    assert by_job[("tiny_a", "object/train")]["batches"] == 3
    assert all(i["batches_resumed"] == 0 for k, i in by_job.items() if k != ("tiny_a", "object/train"))
    assert len(by_job) == 6  # both base models' three jobs
    assert not (store / "artifacts" / "adapters").exists()
    assert [p.name.split("-")[0] for p in (store / "tmp").iterdir()] == ["adapters"]  # the killed build's folder

    # 3. Rerun, killed inside scoring: every answer exists, results.json does not. Only the unfinished
    #    stage and the ones after it ran: no base-model inference again.
    third = run(args, fault="score:1")
    assert third.returncode == -signal.SIGKILL, log_of(third)[-3000:]
    log = log_of(third)
    assert answering(log) == ["tiny_a[self]", "tiny_b[self]", "tiny_b[cross:tiny_a]", "tiny_a[cross:tiny_b]"]
    assert finetuning(log) == ["tiny_a", "tiny_b", "tiny_b", "tiny_a"]  # tiny_a[self] redone, then the rest
    assert list((store / "tmp").iterdir()) == []  # the killed build's folder was cleared when rebuilt
    assert not (tmp_path / "run" / "results.json").exists()

    # 4. Rerun to the end (W&B offline this time): no model is loaded, and the result is the reference's.
    final = run(overrides(tiny_pair, store, tmp_path / "run", logger="wandb"))
    assert final.returncode == 0, log_of(final)[-3000:]
    assert answering(log_of(final)) == [] and finetuning(log_of(final)) == []
    expected = reference.wait()
    got = json.loads((tmp_path / "run" / "results.json").read_text())
    assert got["store"]["worker_runs"] == 0
    for key in ("matrix", "cells", "paired_tests", "n_items"):
        assert got[key] == expected[key], f"{key} differs: {first_differences(got[key], expected[key])}"
    assert (tmp_path / "run" / "items.jsonl").read_bytes() == (reference.base / "run" / "items.jsonl").read_bytes()
    assert artifact_files(store) == artifact_files(reference.store)  # answers, rows, adapter weights
    assert_store_consistent(store)

    # No run printed or wrote a token (item 4 of issue 6, on the whole pipeline; see test_secrets.py).
    logs = [log_of(p) for p in (first, second, third, final)]
    assert secrets_found([tmp_path, reference.base], logs) == []


def test_damaged_artifacts_are_recomputed_never_read(tiny_pair, reference, tmp_path):
    reference.wait()
    store = tmp_path / "store"
    shutil.copytree(reference.store, store)
    answers = {(json.loads(m.read_text())["info"]["model"], json.loads(m.read_text())["info"]["job"]): m.parent
               for m in (store / "artifacts" / "answers").glob(f"*/{MANIFEST}")}
    adapters = {json.loads(m.read_text())["info"]["label"]: m.parent
                for m in (store / "artifacts" / "adapters").glob(f"*/{MANIFEST}")}
    truncated = answers[("tiny_a", "object/train")] / "answers.jsonl"
    truncated.write_bytes(truncated.read_bytes()[:100])
    weights = adapters["tiny_b[self]"] / "adapter" / "adapter_model.safetensors"
    damaged = bytearray(weights.read_bytes())
    damaged[-1] ^= 0xFF  # same size, one flipped byte: only the checksum can tell
    weights.write_bytes(bytes(damaged))

    proc = run(overrides(tiny_pair, store, tmp_path / "run"))
    assert proc.returncode == 0, log_of(proc)[-3000:]
    log = log_of(proc)
    assert log.count("failed its checksum; removing it so it is recomputed") == 2
    assert answering(log) == ["tiny_a"] and finetuning(log) == ["tiny_b"]  # those two, nothing downstream
    assert artifact_files(store) == artifact_files(reference.store)
    got = json.loads((tmp_path / "run" / "results.json").read_text())
    assert got["store"]["worker_runs"] == 2
    assert got["matrix"] == reference.wait()["matrix"]
    assert_store_consistent(store)


def test_a_resumed_job_recomputes_batches_of_another_batch_size(tiny_model_dir, tmp_path):
    """The partial folder is keyed like the answers, not by batch size: a rerun with another
    inference.batch_size must not take a kept batch for one of its own."""
    from dataclasses import asdict

    from omegaconf import OmegaConf

    from introspection.core.config import ModelEntry
    from introspection.core.types import ChatRequest, Sampling
    from introspection.stages.answers import AnswerJob, answer_key
    from introspection.stages.model_ref import ModelRef
    from introspection.stages.worker import answer_worker
    from introspection.weights.resolve import resolve_model

    store = Store(tmp_path / "store")
    entry = ModelEntry(name="tiny", source="local", path=str(tiny_model_dir), dtype="float32")
    model = ModelRef("tiny", asdict(entry), asdict(resolve_model(entry, store.root)))
    requests = [ChatRequest(f"r{i}", [{"role": "user", "content": f"say {i}"}]) for i in range(5)]
    inference = {"name": "hf", "backend": "hf", "batch_size": 3, "max_tokens": 3, "top_logprobs": 0}
    job = AnswerJob("object/train", requests, Sampling(max_tokens=3, top_logprobs=0))
    job.key = answer_key(model, job, OmegaConf.create({"aggregation": "mode", "backend": "hf"}))
    partial = store.partial_dir("answers", job.key)
    # Left by a run with batch_size=2: batch 0 answered r0, r1 (not r0..r2); batch 1 is damaged.
    fake = {"text": "ZZZ", "samples": ["ZZZ"], "agreement": 1.0, "first_token_logprobs": [], "finish_reason": "stop"}
    (partial / "batch-00000.jsonl").write_text("".join(json.dumps({"request_id": f"r{i}", **fake}) + "\n" for i in (0, 1)))
    (partial / "batch-00001.jsonl").write_text('{"request_id": "r3", "te')

    answer_worker({"store_root": str(store.root), "model": asdict(model), "inference": inference,
                   "jobs": [{"name": job.name, "key": job.key, "sampling": asdict(job.sampling),
                             "requests": [asdict(r) for r in requests]}]})
    folder = store.get("answers", job.key)
    rows = [json.loads(line) for line in (folder / "answers.jsonl").read_text().splitlines()]
    assert [r["request_id"] for r in rows] == ["r0", "r1", "r2", "r3", "r4"]
    assert all(r["text"] != "ZZZ" for r in rows)  # the foreign batch was recomputed, not mixed in
    assert store.info("answers", job.key)["batches_resumed"] == 0


def test_a_held_point_waits_for_its_release_file_and_a_bad_spec_names_the_forms(tmp_path, monkeypatch):
    import threading
    import time

    from introspection.core import faults

    release = tmp_path / "release"
    monkeypatch.setattr(faults, "_reached", {})
    monkeypatch.setenv(faults.ENV, f"score:2:wait:{release}")
    faults.reached("answer-batch")  # another point: not counted
    faults.reached("score")  # the first arrival goes through
    held = threading.Thread(target=faults.reached, args=("score",))
    held.start()
    time.sleep(0.5)
    assert held.is_alive()  # the second waits for the file
    release.touch()
    held.join(timeout=5)
    assert not held.is_alive()
    monkeypatch.setattr(faults, "_reached", {})
    faults.reached("score")
    faults.reached("score")  # the file exists: a later attempt goes through at once

    for spec in ("score:1:wait:", "score:1:pause", "score:0", "nowhere:1"):
        monkeypatch.setenv(faults.ENV, spec)
        with pytest.raises(ValueError, match=r"is not <point>:<n> or <point>:<n>:wait:<file>.*points: answer-batch"):
            faults.reached("score")
