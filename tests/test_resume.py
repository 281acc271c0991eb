"""Resumable finetunes (introspection/finetune/checkpoints.py) and the job's handling of Slurm's time-limit
signal (introspection/finetune/time_limit.py), without Slurm: tests/test_slurm.py runs the same on a real cluster.

The central check: a finetune stopped by SIGUSR2 at a checkpoint, then resumed, trains exactly the adapter
an uninterrupted run trains (same seed; the Trainer restores the data position and the RNG states).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from introspection.core.config import FinetuneConfig, LoraSettings
from introspection.finetune import checkpoints, time_limit
from introspection.finetune.data import sft_rows


def _rows(n: int = 16) -> list[dict]:
    examples = [{"prompt": [{"role": "user", "content": f"Is {i} even? Answer yes or no."}],
                 "completion": "yes" if i % 2 == 0 else "no", "item_id": str(i), "task": "t", "property": "p"}
                for i in range(n)]
    return sft_rows(examples, max_examples=None)


def _cfg(**over) -> FinetuneConfig:
    # Dropout on: the resumed run must also restore the RNG that draws the dropout masks.
    settings = {"name": "tiny", "method": "lora", "lora": LoraSettings(r=4, alpha=8, dropout=0.1), "epochs": 2,
                "learning_rate": 5e-3, "batch_size": 4, "lr_scheduler": "linear", "checkpoint_every_steps": 3}
    return FinetuneConfig(**{**settings, **over})


def _adapter(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


@pytest.fixture
def usr2_handler():
    """Restore this process's SIGUSR2 handler and the stop request after the test."""
    previous = signal.getsignal(signal.SIGUSR2)
    checkpoints.clear_stop_request()
    time_limit.reset_for_tests()
    yield
    signal.signal(signal.SIGUSR2, previous)
    checkpoints.clear_stop_request()
    time_limit.reset_for_tests()


def _signal_during_step(monkeypatch, step: int) -> None:
    """Send this process SIGUSR2 while optimizer step `step` runs, as Slurm would at any moment."""
    from transformers import TrainerCallback

    from introspection.finetune import training as training_module

    class SignalDuringStep(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == step - 1:
                os.kill(os.getpid(), signal.SIGUSR2)

    real = training_module.build_trainer

    def build_and_signal(*args, **kwargs):
        trainer, hyperparameters = real(*args, **kwargs)
        trainer.add_callback(SignalDuringStep())
        return trainer, hyperparameters

    monkeypatch.setattr(training_module, "build_trainer", build_and_signal)


def test_a_finetune_stopped_by_the_signal_resumes_to_the_uninterrupted_adapter(tiny_model_dir, tmp_path, monkeypatch,
                                                                                 usr2_handler):
    from transformers import AutoTokenizer

    from introspection.finetune.training import finetune

    tokenizer, rows, cfg = AutoTokenizer.from_pretrained(tiny_model_dir), _rows(), _cfg()
    whole = finetune(str(tiny_model_dir), tokenizer, rows, cfg, tmp_path / "whole" / "adapter", progress=False,
                     checkpoint_dir=tmp_path / "whole_checkpoints")
    assert whole.n_steps == 8
    # periodic checkpoints at steps 3 and 6 (none at the end: the adapter is the end), each marked complete
    kept = sorted(p.name for p in (tmp_path / "whole_checkpoints").glob("checkpoint-*"))
    assert kept == ["checkpoint-3", "checkpoint-6"]

    checkpoints.stop_on_signal()  # what every finetune worker and rank does first (finetune/job.py)
    _signal_during_step(monkeypatch, 5)
    stopped_dir = tmp_path / "stopped" / "adapter"
    with pytest.raises(checkpoints.FinetuneStopped, match="stopped at step 5 of 8 on SIGUSR2"):
        finetune(str(tiny_model_dir), tokenizer, rows, cfg, stopped_dir, progress=False,
                 checkpoint_dir=tmp_path / "checkpoints")
    assert not stopped_dir.parent.exists() or list(stopped_dir.parent.iterdir()) == []  # no adapter, no temp folder
    saved = checkpoints.latest_complete(tmp_path / "checkpoints")
    assert saved is not None and saved.name == "checkpoint-5"
    assert {"adapter_model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json",
            checkpoints.MARKER} <= {p.name for p in saved.iterdir()}

    # the requeued job: a fresh process would start without the request; the signal hook stays off
    monkeypatch.undo()
    checkpoints.clear_stop_request()
    resumed = finetune(str(tiny_model_dir), tokenizer, rows, cfg, stopped_dir, progress=False,
                       checkpoint_dir=tmp_path / "checkpoints")
    lineage = json.loads((stopped_dir / "lineage.json").read_text())
    assert lineage["resumed_from_step"] == 5 and resumed.n_steps == 8
    expected, got = _adapter(tmp_path / "whole" / "adapter"), _adapter(stopped_dir)
    assert expected.keys() == got.keys() and expected
    worst = max(float((expected[k] - got[k]).abs().max()) for k in expected)
    assert worst <= 1e-6, f"resumed adapter differs from the uninterrupted one by up to {worst}"
    assert resumed.train_loss == pytest.approx(whole.train_loss, abs=1e-6)


def test_only_complete_checkpoints_are_resumed(tmp_path):
    folder = tmp_path / "checkpoints"
    for step, complete in ((4, True), (8, True), (12, False)):
        (folder / f"checkpoint-{step}").mkdir(parents=True)
        if complete:
            (folder / f"checkpoint-{step}" / checkpoints.MARKER).write_text(json.dumps({"step": step}))
    (folder / "README.md").write_text("TRL's model card")
    assert checkpoints.latest_complete(folder) == folder / "checkpoint-8"  # 12's save was cut off
    checkpoints.remove_incomplete(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "checkpoint-4", "checkpoint-8"]
    assert checkpoints.latest_complete(tmp_path / "absent") is None
    assert checkpoints.checkpoint_folder(tmp_path, "abc") == tmp_path / "checkpoints" / "abc"
    with pytest.raises(ValueError, match="empty adapter key"):
        checkpoints.checkpoint_folder(tmp_path, "")
    checkpoints.discard(tmp_path, "abc")  # nothing there: nothing to do
    (tmp_path / "checkpoints" / "abc" / "checkpoint-1").mkdir(parents=True)
    checkpoints.discard(tmp_path, "abc")
    assert not (tmp_path / "checkpoints" / "abc").exists()


def test_negative_checkpoint_interval_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"finetune.checkpoint_every_steps=-1 is not valid"):
        checkpoints.attach(object(), tmp_path, -1)


# --- the job's main process: submitit's requeue waits for the finetune -----------------------------


def _install_fake_submitit(calls: list) -> None:
    """submitit's SIGUSR2 handler, as its job environment installs it, recording instead of requeueing."""
    signal.signal(signal.SIGUSR2, lambda signum, frame: calls.append(time.monotonic()))
    assert time_limit.install()


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_without_a_finetune_in_flight_the_signal_goes_straight_to_submitit(usr2_handler):
    calls: list = []
    _install_fake_submitit(calls)
    os.kill(os.getpid(), signal.SIGUSR2)
    _wait_for(lambda: calls)
    assert len(calls) == 1


def test_submitit_requeues_only_once_the_finetune_in_flight_has_stopped(usr2_handler):
    calls: list = []
    _install_fake_submitit(calls)
    release, outcome = threading.Event(), {}

    def side() -> None:  # a pipeline side whose finetune worker is checkpointing
        try:
            with time_limit.finetune_in_flight("finetuning M1 on M1"):
                release.wait(10)
                raise RuntimeError("finetuning M1 on M1: the worker stopped at a checkpoint")
        except Exception as e:  # noqa: BLE001 - the test inspects it
            outcome["error"] = e

    thread = threading.Thread(target=side)
    thread.start()
    _wait_for(lambda: time_limit._state.in_flight)
    os.kill(os.getpid(), signal.SIGUSR2)
    _wait_for(time_limit.stop_requested)
    time.sleep(0.2)
    assert calls == []  # submitit has not requeued: the worker is still saving
    release.set()
    thread.join(10)
    _wait_for(lambda: calls)
    assert len(calls) == 1
    assert time_limit._state.timer is None  # the deadline is cancelled: no second signal once handed over
    assert isinstance(outcome["error"], time_limit.TimeLimitStop) and "Slurm time limit" in str(outcome["error"])
    with pytest.raises(time_limit.TimeLimitStop, match="not started"):  # no later finetune starts
        with time_limit.finetune_in_flight("finetuning M2 on M1"):
            pass


def test_a_finetune_outside_slurm_is_untouched(usr2_handler):
    with pytest.raises(RuntimeError, match="boom"), time_limit.finetune_in_flight("finetuning x"):
        raise RuntimeError("boom")
    with time_limit.finetune_in_flight("finetuning x"):
        pass
    assert not time_limit.stop_requested() and time_limit._state.in_flight == {}


def test_the_deadline_follows_the_jobs_signal_delay(monkeypatch):
    assert time_limit.deadline_s({}) == time_limit.DEFAULT_DELAY_S - time_limit.MARGIN_S
    assert time_limit.deadline_s({time_limit.DELAY_ENV: "300"}) == 270
    assert time_limit.deadline_s({time_limit.DELAY_ENV: "20"}) == 10  # never less than 10 s
    with pytest.raises(ValueError, match="INTROSPECTION_SIGNAL_DELAY_S='soon' is not a number"):
        time_limit.deadline_s({time_limit.DELAY_ENV: "soon"})
