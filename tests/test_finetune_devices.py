"""Each model-bound process sees exactly its own CUDA devices (introspection/core/devices.py), a finetune records
the batch it trained with (finetune/batch.py), and a child that holds GPUs cannot outlive its limits
(introspection/core/child_process.py). No GPU here: the job's GPUs are pretend ids in CUDA_VISIBLE_DEVICES,
which a child without a driver sees but cannot use, so what it is given is what the test reads."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from introspection.core import devices
from introspection.core.spawn import spawn_and_wait

JOB_GPUS = "0,1,2,3"


# --- which devices ---------------------------------------------------------------------------------
def test_each_kind_of_process_gets_the_first_of_its_sides_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", JOB_GPUS)
    one_after_another = devices.child_environment(1, "finetuning M1")
    assert one_after_another == {"CUDA_VISIBLE_DEVICES": "0"}  # not all four: no DataParallel
    assert devices.child_environment(4, "finetuning M1 on 4 processes") == {"CUDA_VISIBLE_DEVICES": JOB_GPUS}
    assert devices.child_environment(0, "CPU ranks") == {"CUDA_VISIBLE_DEVICES": ""}
    with devices.confined_to(["2", "3"]):  # both sides at once: this thread runs M2's steps on devices 2, 3
        assert devices.child_environment(1, "finetuning M2") == {"CUDA_VISIBLE_DEVICES": "2"}
        assert devices.child_environment(2, "inference for M2") == {"CUDA_VISIBLE_DEVICES": "2,3"}
        with pytest.raises(ValueError, match=r"inference for M2 needs 3 CUDA devices but its side has 2 "
                                             r"\(CUDA_VISIBLE_DEVICES=2,3\)"):
            devices.child_environment(3, "inference for M2")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # a CPU job: nothing to confine
    assert devices.child_environment(1, "finetuning M1") == {}


def test_the_device_counts_follow_the_backend_and_the_strategy():
    entry = {"gpus": 4, "tensor_parallel_size": 2}
    assert devices.inference_devices(entry, "vllm") == 2 and devices.inference_devices(entry, "hf") == 1
    assert devices.finetune_devices({"multi_gpu": "none"}, entry) == 1
    assert devices.finetune_devices({"multi_gpu": "fsdp"}, entry) == 4


def report_devices(payload: dict) -> None:
    Path(payload["out"]).write_text(os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"))


def test_a_spawned_worker_sees_only_its_devices_in_either_schedule(monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", JOB_GPUS)
    seen = {}
    for name, confined, gpus in (("sequential", None, 1), ("side m2", ["2", "3"], 1), ("vllm tp 2", ["2", "3"], 2)):
        out = tmp_path / f"{len(seen)}.txt"
        if confined is None:
            spawn_and_wait(tmp_path, report_devices, {"out": str(out)}, name, gpus=gpus)
        else:
            with devices.confined_to(confined):
                spawn_and_wait(tmp_path, report_devices, {"out": str(out)}, name, gpus=gpus)
        seen[name] = out.read_text()
    assert seen == {"sequential": "0", "side m2": "2", "vllm tp 2": "2,3"}
    assert os.environ["CUDA_VISIBLE_DEVICES"] == JOB_GPUS  # the parent's own is untouched


# --- the batch a finetune records is the batch it trained with --------------------------------------
def _rows(n: int) -> list[dict]:
    return [{"prompt": [{"role": "user", "content": f"Is {i} a number?"}],
             "completion": [{"role": "assistant", "content": "yes"}]} for i in range(n)]


def _finetune_cfg(**over) -> dict:
    from omegaconf import OmegaConf

    from introspection.core.config import FinetuneConfig, LoraSettings

    plain = OmegaConf.to_container(OmegaConf.structured(FinetuneConfig(name="t", lora=LoraSettings(r=4, alpha=8))))
    return plain | {"batch_size": 2, "gradient_accumulation_steps": 2, "learning_rate": 1e-3} | over


def test_a_single_process_finetune_on_a_4_gpu_job_sees_one_device_and_records_its_batch(monkeypatch, tmp_path,
                                                                                      tiny_model_dir):
    """The real finetune worker, as the pipeline starts it with the job's four (pretend) GPUs visible."""
    from introspection.core.config import ModelEntry
    from introspection.core.store import Store, digest
    from introspection.finetune.data import write_rows
    from introspection.stages.adapters import finetune_model
    from introspection.stages.model_ref import ModelRef
    from introspection.weights.resolve import resolve_model

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", JOB_GPUS)
    store = Store(tmp_path / "store")
    entry = asdict(ModelEntry(name="tiny", source="local", path=str(tiny_model_dir), dtype="float32"))
    base = ModelRef("tiny", entry, asdict(resolve_model(ModelEntry(**entry), store.root, where="test")))
    rows = _rows(8)
    write_rows(rows, tmp_path / "rows.jsonl")
    tuned = finetune_model(store, base, tmp_path / "rows.jsonl", digest(rows), _finetune_cfg(), "tiny[self]")

    lineage = json.loads((Path(tuned.adapter_dir) / "lineage.json").read_text())
    resolved = lineage["hyperparameters"]["resolved"]
    assert resolved["cuda_visible_devices"] == "0"  # the first of the job's four, and only it
    # 8 rows, 2 per step x 2 accumulation: 2 optimizer steps of 4 rows
    assert lineage["n_examples"] == 8 and lineage["n_steps"] == 2
    assert resolved["effective_batch_size"] == lineage["n_examples"] / lineage["n_steps"] == 4


def test_the_recorded_batch_is_the_rows_per_optimizer_step_counted_in_training(tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer, TrainerCallback

    from introspection.core.config import FinetuneConfig, LoraSettings
    from introspection.finetune.trainer import build_trainer

    class CountSteps(TrainerCallback):
        steps = 0

        def on_step_end(self, args, state, control, **kwargs):  # once per optimizer step
            CountSteps.steps += 1

    cfg = FinetuneConfig(name="t", lora=LoraSettings(r=4, alpha=8), batch_size=3, gradient_accumulation_steps=2,
                         learning_rate=1e-3)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    trainer, hyperparameters = build_trainer(str(tiny_model_dir), tokenizer, _rows(12), cfg, tmp_path / "work",
                                             progress=False)
    trainer.add_callback(CountSteps())
    trainer.train()
    assert CountSteps.steps == trainer.state.global_step == 2
    assert hyperparameters["resolved"]["effective_batch_size"] == 12 / CountSteps.steps == 6


def test_a_trainer_that_would_take_another_batch_fails_in_one_line():
    from introspection.core.config import FinetuneConfig
    from introspection.finetune.batch import check_batch

    cfg = FinetuneConfig(name="t", batch_size=4, gradient_accumulation_steps=4)
    # What transformers does in a process that sees 4 GPUs: 4 per device x 4 GPUs (DataParallel) x 4 accumulation.
    data_parallel = {"effective_batch_size": 64, "per_device_train_batch_size": 4, "n_gpu": 4,
                     "gradient_accumulation_steps": 4, "world_size": 1}
    with pytest.raises(ValueError, match=r"take 64 rows per optimizer step \(4 per device x 4 GPU\(s\) this process "
                                         r"sees x 4 accumulation x 1 process\(es\)\), not the configured 16") as error:
        check_batch(data_parallel, cfg, ranks=1)
    assert "\n" not in str(error.value)
    check_batch({**data_parallel, "effective_batch_size": 16, "n_gpu": 1}, cfg, ranks=1)  # one GPU: as configured


# --- a child that holds GPUs is bounded ------------------------------------------------------------
def finish_then_hang(payload: dict) -> None:
    Path(payload["result_path"]).write_text("{}")
    time.sleep(600)  # e.g. an engine that does not shut down


def sleep_long(payload: dict) -> None:
    time.sleep(600)


def test_a_worker_that_hangs_after_its_result_is_stopped_after_the_grace(monkeypatch, tmp_path):
    monkeypatch.setenv("INTROSPECTION_EXIT_GRACE_S", "1")
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"^inference for tiny did not exit within 1 s after writing its result "
                                           r"\(result.json\); stopped its processes"):
        spawn_and_wait(tmp_path, finish_then_hang, {"result_path": str(tmp_path / "result.json")}, "inference for tiny")
    assert time.monotonic() - started < 60


def test_a_worker_past_the_whole_run_limit_is_stopped(monkeypatch, tmp_path):
    monkeypatch.setenv("INTROSPECTION_CHILD_TIMEOUT_S", "2")
    with pytest.raises(TimeoutError, match=r"^merging tiny did not finish within 2 s; stopped its processes "
                                           r"\(INTROSPECTION_CHILD_TIMEOUT_S sets the limit\)"):
        spawn_and_wait(tmp_path, sleep_long, {}, "merging tiny")
    monkeypatch.setenv("INTROSPECTION_CHILD_TIMEOUT_S", "soon")
    with pytest.raises(ValueError, match=r"INTROSPECTION_CHILD_TIMEOUT_S='soon' \(environment\) is not valid"):
        spawn_and_wait(tmp_path, sleep_long, {}, "merging tiny")
    import multiprocessing

    assert multiprocessing.active_children() == []  # refused before the start: nothing left running


# A stand-in for `accelerate launch`: rank 0 writes its result, then the launch hangs in teardown, with a
# process of its own (a rank) that must be stopped with it.
HANGING_LAUNCH = r'''
import json, subprocess, sys, time
from pathlib import Path
folder = Path(sys.argv[1])
rank = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
(folder / "rank_pid").write_text(str(rank.pid))
(folder / "rank0_result.json").write_text(json.dumps({"merged": False}))
time.sleep(600)
'''


def _stopped(pid: int) -> bool:
    """Whether the process has ended (gone, or a zombie nobody has reaped yet)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False


def test_ranks_that_hang_after_rank_0_wrote_its_result_are_stopped_and_the_step_named(monkeypatch, tmp_path):
    from introspection.finetune import distributed

    monkeypatch.setenv("INTROSPECTION_EXIT_GRACE_S", "1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", JOB_GPUS)
    monkeypatch.setattr(distributed, "launch_command",
                        lambda config, n, payload: [sys.executable, "-c", HANGING_LAUNCH, str(payload.parent)])
    payload = {"label": "M1_self", "finetune": {"multi_gpu": "ddp"}, "model": {}}
    with pytest.raises(TimeoutError, match=r"^finetuning M1_self on 4 processes did not exit within 1 s after writing "
                                           r"its result \(rank0_result.json\)"):
        distributed.finetune_on_ranks(payload, tmp_path, 4)
    rank = int((tmp_path / "rank_pid").read_text())
    assert _stopped(rank)  # the whole process group was stopped, not only the launcher
    assert not (tmp_path / distributed.PAYLOAD_FILE).exists()


def test_the_process_group_is_stopped_when_the_wait_is_interrupted(tmp_path):
    import subprocess

    from introspection.core.child_process import wait_bounded

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)

    def interrupted(seconds: float):
        if proc.poll() is None and not getattr(interrupted, "raised", False):
            interrupted.raised = True
            raise KeyboardInterrupt  # Ctrl-C in the orchestrator while it waits
        return proc.poll()

    with pytest.raises(KeyboardInterrupt):
        wait_bounded(interrupted, proc.pid, "finetuning x", None, (600.0, 300.0))
    assert proc.wait(timeout=30) == -signal.SIGTERM
