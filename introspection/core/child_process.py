"""Waiting for a child process that holds GPUs, with a bound on how long: a hung child must not hold the
job's GPUs until the job's time limit.

Every such child (a spawned model worker, spawn.spawn_and_wait; the `accelerate launch` / torchrun of a
multi-rank finetune, finetune/distributed.py) runs in a process group of its own, so that everything it
started (vLLM's engine and tensor-parallel workers, the ranks of a launch) is stopped with it. Two limits:

- the whole run: INTROSPECTION_CHILD_TIMEOUT_S seconds (default 7 days, a backstop: a 70B finetune
  takes hours, and the job's own time limit usually comes first);
- after its work is done: a child that wrote its result file (rank 0's result, a worker's result) gets
  INTROSPECTION_EXIT_GRACE_S seconds (default 300) to exit. An NCCL hang in the ranks' teardown or a
  vLLM engine that does not shut down is caught there, minutes after the work ended.

Either way the child's process group is stopped (SIGTERM, then SIGKILL) and a TimeoutError (an expected
failure: one line, exit code 2) names the step and the setting that changes the limit.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from introspection.core.env_seconds import seconds_from_environment

TIMEOUT_VARIABLE = "INTROSPECTION_CHILD_TIMEOUT_S"
GRACE_VARIABLE = "INTROSPECTION_EXIT_GRACE_S"
DEFAULT_TIMEOUT_S = 7 * 24 * 3600.0
DEFAULT_GRACE_S = 300.0
POLL_S = 0.5
TERM_WAIT_S = 10.0  # after SIGTERM, before SIGKILL


def limits() -> tuple[float, float]:
    """(whole-run timeout, exit grace) in seconds, from the environment; read before a child starts, so a
    bad value fails in one line with nothing left running."""
    return (seconds_from_environment(TIMEOUT_VARIABLE, DEFAULT_TIMEOUT_S, finite=False),
            seconds_from_environment(GRACE_VARIABLE, DEFAULT_GRACE_S, finite=False))


GROUPS_VARIABLE = "INTROSPECTION_RUN_GROUPS"  # read by faults.py: the test hook kills the whole run


def run_groups_environment() -> dict[str, str]:
    """For a child's environment: the process groups of the run so far (this process's own added), so the
    fault-injection hook (introspection/core/faults.py) can kill the whole run from inside a child."""
    groups = [g for g in os.environ.get(GROUPS_VARIABLE, "").split(",") if g]
    own = str(os.getpgid(0))
    return {GROUPS_VARIABLE: ",".join(groups + ([own] if own not in groups else []))}


def run_in_own_group(target, payload: dict) -> None:
    """The spawned child's entry: a process group of its own (its pid is the group id), then `target`."""
    os.setsid()
    target(payload)


def stop_group(pgid: int, exited: Callable[[], bool]) -> None:
    """SIGTERM the process group, SIGKILL it when its leader has not exited TERM_WAIT_S later."""
    for sig, wait in ((signal.SIGTERM, TERM_WAIT_S), (signal.SIGKILL, TERM_WAIT_S)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if exited():
                break
            time.sleep(0.1)
    try:  # the leader is gone: stop whatever it left behind in its group (e.g. a rank stuck in a collective)
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_bounded(wait: Callable[[float], int | None], pgid: int, what: str, result_file: Path | None,
                 limits: tuple[float, float]) -> int:
    """Wait for a child and return its exit code. `wait(s)` waits up to s seconds and returns the exit code,
    or None while the child runs. Stops the child's process group and raises a one-line TimeoutError when
    it runs past `limits`' timeout, or past its grace after `result_file` appeared (the child's work is
    done; what remains is its exit)."""
    timeout, grace = limits
    started = time.monotonic()
    finished_at = None

    def stop() -> None:
        stop_group(pgid, lambda: wait(0) is not None)

    try:
        while (code := wait(POLL_S)) is None:
            now = time.monotonic()
            if finished_at is None and result_file is not None and result_file.is_file():
                finished_at = now
            if finished_at is not None and now - finished_at > grace:
                stop()
                raise TimeoutError(f"{what} did not exit within {grace:g} s after writing its result "
                                   f"({result_file.name}); stopped its processes (a hang at exit, e.g. in NCCL's "
                                   f"teardown; {GRACE_VARIABLE} sets the wait)")
            if now - started > timeout:
                stop()
                raise TimeoutError(f"{what} did not finish within {timeout:g} s; stopped its processes "
                                   f"({TIMEOUT_VARIABLE} sets the limit)")
    except BaseException:  # Ctrl-C or a failure here: the child's group is not left running on the GPUs
        if wait(0) is None:
            stop()
        raise
    return code
