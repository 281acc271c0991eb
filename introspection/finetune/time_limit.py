"""Slurm's time-limit signal in a job's main process: let a finetune in flight checkpoint before the requeue.

Slurm sends SIGUSR2 `signal_delay_s` before the time limit (submitit's `#SBATCH --signal=USR2@<s>`) to
every process of the job step: this process, and the finetune's worker or accelerate ranks, whose handler
makes training checkpoint and stop after the step in flight (finetune/checkpoints.py). submitit's own
handler here would requeue the job at once (`scontrol requeue`), and the requeue kills the step, the
finetune's save included. So the launcher (hydra_plugins/introspection_launcher) puts `install()` in front
of it: with no finetune in flight the signal goes straight to submitit; with one, submitit's handler
runs once every finetune in flight has ended (each raises TimeLimitStop, so no later stage starts), or
when the deadline comes (`INTROSPECTION_SIGNAL_DELAY_S` less a margin), whichever is first.

Outside a Slurm job nothing is installed and `finetune_in_flight` only counts.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

DELAY_ENV = "INTROSPECTION_SIGNAL_DELAY_S"  # the job's signal_delay_s, exported by its sbatch script
DEFAULT_DELAY_S = 120.0
MARGIN_S = 30.0  # left for submitit's requeue and the job's exit before Slurm's kill


class TimeLimitStop(RuntimeError):
    """The job stops for its time limit (it is being requeued); the requeued attempt resumes the work."""


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight: dict[str, int] = {}  # what -> how many
        self.previous: Callable | None = None  # submitit's handler
        self.requested = False
        self.deadline_passed = False
        self.timer: threading.Timer | None = None  # the deadline after the signal; cancelled once handed over


_state = _State()


def deadline_s(environ: dict[str, str] | None = None) -> float:
    """Seconds a finetune gets, after the signal, to checkpoint and stop."""
    raw = (os.environ if environ is None else environ).get(DELAY_ENV, "")
    try:
        delay = float(raw) if raw else DEFAULT_DELAY_S
    except ValueError:
        raise ValueError(f"{DELAY_ENV}={raw!r} is not a number of seconds (the job's signal_delay_s)") from None
    return max(10.0, delay - MARGIN_S)


def install() -> bool:
    """Wrap the process's SIGUSR2 handler (submitit's, installed before the job runs). False: nothing to wrap."""
    previous = signal.getsignal(signal.SIGUSR2)
    if not callable(previous) or threading.current_thread() is not threading.main_thread():
        return False
    _state.previous = previous
    signal.signal(signal.SIGUSR2, _on_signal)
    return True


def stop_requested() -> bool:
    return _state.requested


def _on_signal(signum, frame) -> None:
    with _state.lock:
        waiting = sorted(_state.in_flight) if not _state.deadline_passed else []
        first = not _state.requested
        _state.requested = True
    if not waiting:
        _hand_over(signum, frame)
        return
    if first:
        limit = deadline_s()
        log.warning("SIGUSR2 (time limit near): %s checkpoints and stops first; the job is requeued when it "
                    "has, or in %.0f s", ", ".join(waiting), limit)
        timer = threading.Timer(limit, _deadline, args=(_state,))
        timer.daemon = True
        with _state.lock:
            _state.timer = timer
        timer.start()


def _hand_over(signum, frame) -> None:
    """submitit's handler, once: it requeues the job (scontrol requeue) and exits this process."""
    with _state.lock:
        previous, _state.previous = _state.previous, None
        timer, _state.timer = _state.timer, None
    if timer is not None:
        timer.cancel()
    if previous is not None:
        previous(signum, frame)


def _deadline(state: _State) -> None:
    with state.lock:
        if state is not _state or state.previous is None:  # handed over already (or reset): nothing to force
            return
        state.deadline_passed = True
        left = sorted(state.in_flight)
    log.warning("the finetune did not stop within the signal's deadline (%s still running): requeueing now",
                ", ".join(left))
    os.kill(os.getpid(), signal.SIGUSR2)


@contextmanager
def finetune_in_flight(what: str) -> Iterator[None]:
    """Mark a finetune as running (its worker stops at a checkpoint on the signal). Once a signal came,
    leaving raises TimeLimitStop, and the last finetune to leave hands the signal on to submitit."""
    with _state.lock:
        if _state.requested:  # the job is being requeued: start nothing
            raise TimeLimitStop(f"{what} not started: the job stops for the Slurm time limit")
        _state.in_flight[what] = _state.in_flight.get(what, 0) + 1
    failure: BaseException | None = None
    try:
        yield
    except BaseException as e:  # noqa: BLE001 - re-raised below, or replaced by TimeLimitStop
        failure = e
    finally:
        with _state.lock:
            _state.in_flight[what] -= 1
            if not _state.in_flight[what]:
                del _state.in_flight[what]
            requested, last = _state.requested, not _state.in_flight
    if not requested:
        if failure is not None:
            raise failure
        return
    if last:
        log.warning("%s has stopped: handing the time-limit signal to submitit (requeue)", what)
        os.kill(os.getpid(), signal.SIGUSR2)  # runs _on_signal in the main thread: submitit requeues and exits
    raise TimeLimitStop(f"{what} stopped for the Slurm time limit; the requeued job resumes it from its "
                        "checkpoint") from failure


def reset_for_tests() -> None:
    global _state
    if _state.timer is not None:
        _state.timer.cancel()
    _state = _State()
