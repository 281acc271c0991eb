"""Resumable finetunes: Trainer checkpoints under the artifact store, and a stop at the next step on Slurm's
time-limit signal (launchers/README.md, "Requeue, the job's environment and time limits").

A finetune's checkpoints live in STORE/checkpoints/<adapter key>/checkpoint-<step>/ (the Trainer's own
format: adapter or weights, optimizer, scheduler, RNG states, trainer_state.json), outside the store's
temporary build folder, so they survive a killed or requeued job. A checkpoint counts only once its
`complete.json` marker exists (written after every rank has saved its part), so a save cut off by the
kill is never resumed from. The Trainer keeps the last two; the folder goes when the adapter is sealed.

Checkpoints are written every `finetune.checkpoint_every_steps` optimizer steps (0: never) and once more
when the process receives SIGUSR2: Slurm sends it `signal_delay_s` before the time limit to every process
of the job step. Training then stops at the end of the step in flight, the checkpoint is saved, and the
finetune raises FinetuneStopped instead of saving an adapter; the requeued job resumes from it with
`trainer.train(resume_from_checkpoint=...)`, which restores the data position and RNG states, so the
adapter equals an uninterrupted run's (tests/test_resume.py).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

CHECKPOINTS_DIR = "checkpoints"  # under the store root, beside artifacts/
MARKER = "complete.json"
KEEP = 2  # the Trainer's save_total_limit: the newest checkpoint and the one before it
_NAME = re.compile(r"^checkpoint-(\d+)$")

_stop_requested = threading.Event()


class FinetuneStopped(RuntimeError):
    """Training stopped at a checkpoint because the process was asked to (SIGUSR2: Slurm's time limit)."""


def checkpoint_folder(store_root: str | Path, key: str) -> Path:
    """Where the finetune with this adapter key keeps its checkpoints."""
    if not key:
        raise ValueError("an empty adapter key has no checkpoint folder")
    return Path(store_root) / CHECKPOINTS_DIR / key


def discard(store_root: str | Path, key: str) -> None:
    """Remove the finetune's checkpoints (its adapter is sealed: nothing is left to resume)."""
    folder = checkpoint_folder(store_root, key)
    if folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
        log.info("removed the checkpoints of adapter %s (sealed)", key[:12])


def stop_on_signal() -> None:
    """Make SIGUSR2 ask the training loop of this process to checkpoint and stop (instead of killing it).

    A signal that came while it was blocked (see started_with_signal_pending) is delivered now. Only the
    main thread may install a handler; elsewhere (a test calling finetune from a thread) nothing changes."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGUSR2, _on_signal)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR2})


@contextmanager
def started_with_signal_pending() -> Iterator[None]:
    """Start child processes in this block with SIGUSR2 blocked (a signal mask survives fork and exec).

    For `accelerate launch`: Slurm signals every process of the step, and the launcher (torch's elastic
    agent) would die of SIGUSR2 while its ranks are still saving their checkpoint; blocked, it never
    sees the signal, and each rank receives it once it calls stop_on_signal."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _on_signal(signum, frame) -> None:
    if not _stop_requested.is_set():
        log.warning("SIGUSR2 (the Slurm time limit is near): the finetune checkpoints and stops after this step")
    _stop_requested.set()


def request_stop() -> None:
    """What SIGUSR2 does (for code that asks without a signal)."""
    _stop_requested.set()


def clear_stop_request() -> None:
    _stop_requested.clear()


def step_of(checkpoint: Path) -> int:
    found = _NAME.match(checkpoint.name)
    if found is None:
        raise ValueError(f"{checkpoint} is not a Trainer checkpoint folder (checkpoint-<step>)")
    return int(found.group(1))


def latest_complete(folder: Path) -> Path | None:
    """The newest checkpoint in folder whose every part was saved, or None."""
    if not folder.is_dir():
        return None
    complete = [p for p in folder.iterdir() if _NAME.match(p.name) and (p / MARKER).is_file()]
    return max(complete, key=step_of, default=None)


def remove_incomplete(folder: Path) -> None:
    """Remove checkpoint folders whose save was cut off (no marker): the Trainer would count them as kept."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if _NAME.match(path.name) and not (path / MARKER).is_file():
            log.warning("removing %s: its save did not finish", path)
            shutil.rmtree(path, ignore_errors=True)


def _write_marker(checkpoint: Path, step: int) -> None:
    tmp = checkpoint / f".{MARKER}.tmp"
    tmp.write_text(json.dumps({"step": step}) + "\n")
    os.replace(tmp, checkpoint / MARKER)


def checkpoint_callback(every_steps: int, accelerator):
    """The TrainerCallback that asks for periodic checkpoints and for a checkpoint-and-stop on SIGUSR2."""
    from transformers import TrainerCallback

    class CheckpointAndStop(TrainerCallback):
        def __init__(self) -> None:
            self.stopped_at: int | None = None

        def on_step_end(self, args, state, control, **kwargs):
            # At the last step training ends anyway, and the finished adapter is saved instead.
            if state.global_step < state.max_steps and self._every_rank_agrees_to_stop():
                control.should_save = True
                control.should_training_stop = True
                self.stopped_at = state.global_step
            elif every_steps > 0 and state.global_step % every_steps == 0 and state.global_step < state.max_steps:
                control.should_save = True
            return control

        def on_save(self, args, state, control, **kwargs):
            accelerator.wait_for_everyone()  # every rank's RNG state (and shard) is on disk
            if state.is_world_process_zero:
                _write_marker(Path(args.output_dir) / f"checkpoint-{state.global_step}", state.global_step)
            accelerator.wait_for_everyone()

        @staticmethod
        def _every_rank_agrees_to_stop() -> bool:
            # Slurm signals each rank on its own; all must stop at the same step, or the next collective hangs.
            flag = _stop_requested.is_set()
            if accelerator.num_processes == 1:
                return flag
            import torch

            flags = accelerator.gather(torch.tensor([1 if flag else 0], device=accelerator.device))
            return bool(flags.max().item())

    return CheckpointAndStop()


def attach(trainer, folder: Path | None, every_steps: int) -> Path | None:
    """Checkpoint `trainer` into folder; return the checkpoint to resume from (None: start afresh).

    folder None: no checkpoints at all (a finetune outside the store)."""
    if folder is None:
        return None
    if every_steps < 0:
        raise ValueError(f"finetune.checkpoint_every_steps={every_steps} is not valid; use 0 (only on the "
                         "time-limit signal) or a positive number of optimizer steps")
    folder = Path(folder)
    if trainer.is_world_process_zero():
        folder.mkdir(parents=True, exist_ok=True)
        remove_incomplete(folder)
    trainer.accelerator.wait_for_everyone()
    trainer.args.output_dir = str(folder)
    trainer.args.save_total_limit = KEEP
    callback = checkpoint_callback(every_steps, trainer.accelerator)
    trainer.add_callback(callback)
    trainer.checkpoint_and_stop = callback
    resume = latest_complete(folder)
    if resume is not None:
        log.info("resuming the finetune from %s (step %d)", resume, step_of(resume))
    return resume


def raise_if_stopped(trainer) -> None:
    """After trainer.train(): raise FinetuneStopped when the signal stopped it at a checkpoint."""
    callback = getattr(trainer, "checkpoint_and_stop", None)
    if callback is not None and callback.stopped_at is not None:
        raise FinetuneStopped(f"the finetune stopped at step {callback.stopped_at} of {trainer.state.max_steps} "
                              f"on SIGUSR2 (Slurm's time limit); its checkpoint is in {trainer.args.output_dir}, "
                              "and a requeued or repeated run resumes from it")
