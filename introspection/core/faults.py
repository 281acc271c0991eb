"""A test hook that kills a run at a chosen point, as an OOM kill, a pre-empted Slurm job or a power cut would, or
holds it there.

    INTROSPECTION_FAULT=<point>:<n>              SIGKILL the whole process group the n-th time <point> is reached
    INTROSPECTION_FAULT=<point>:<n>:wait:<file>  the n-th time, wait until <file> exists (at most WAIT_S), then go
                                                 on; nothing when it exists already. A test holds a finetune
                                                 mid-way, signals it there and then creates the file; a later
                                                 attempt of the run (a requeued job) goes through.

Points (each counted separately in every process, from 1):
    answer-batch    an inference worker has just written one batch of answers to the store's partial/ folder
    finetune-step   a finetuning worker has just finished one optimizer step
    score           the orchestrator is about to score one target (every answer exists; results.json does not)

The whole run dies (orchestrator and worker alike, each process group of the run; no cleanup handlers run), so a test starts
the run in its own session (`subprocess.Popen(..., start_new_session=True)`). Unset, the hook does nothing.
tests/test_faults.py uses it to show that a rerun resumes and reproduces an uninterrupted run.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

ENV = "INTROSPECTION_FAULT"
POINTS = ("answer-batch", "finetune-step", "score")
WAIT_S = 600.0  # a held run goes on by itself after this: a test that failed to release it ends, not hangs

_reached: dict[str, int] = {}


def _armed() -> tuple[str, int, Path | None] | None:
    """(point, n, the file a held run waits for; None: a kill), or None when unset."""
    spec = os.environ.get(ENV)
    if not spec:
        return None
    point, _, rest = spec.partition(":")
    n, _, action = rest.partition(":")
    release = Path(action.removeprefix("wait:")) if action.startswith("wait:") and len(action) > 5 else None
    if point not in POINTS or not n.isdigit() or int(n) < 1 or (action and release is None):
        raise ValueError(f"{ENV}={spec!r} is not <point>:<n> or <point>:<n>:wait:<file>, with n >= 1; "
                         f"points: {', '.join(POINTS)}")
    return point, int(n), release


def armed(point: str) -> bool:
    """True when INTROSPECTION_FAULT names this point (callers use it to skip setting up a hook)."""
    spec = _armed()
    return spec is not None and spec[0] == point


def reached(point: str) -> None:
    """Count one arrival at `point`; on the n-th, kill the run (SIGKILL) or hold it until its release file exists."""
    spec = _armed()
    if spec is None or spec[0] != point:
        return
    _reached[point] = _reached.get(point, 0) + 1
    if _reached[point] != spec[1]:
        return
    release = spec[2]
    if release is not None:
        deadline = time.monotonic() + WAIT_S
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.1)  # a signal's handler still runs meanwhile (Python runs it between these sleeps)
    else:
        # A worker runs in a process group of its own (child_process.py), which names the run's other groups
        # (the orchestrator's first) in INTROSPECTION_RUN_GROUPS: all of them die, then this one.
        run = [int(g) for g in os.environ.get("INTROSPECTION_RUN_GROUPS", "").split(",") if g]
        for group in [*run, os.getpgid(0)]:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass


def trainer_callback():
    """A transformers TrainerCallback that reaches "finetune-step" at the end of every optimizer step."""
    from transformers import TrainerCallback

    class FaultAfterStep(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            reached("finetune-step")

    return FaultAfterStep()
