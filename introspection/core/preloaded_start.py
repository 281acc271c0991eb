"""Model workers on a CPU machine start from a pre-imported parent instead of a fresh interpreter.

A fresh spawned worker imports torch and transformers again (~5 s of CPU on a 2-core machine, ~1 s more to exit;
trl and vLLM add 2 and 6 s), and a small run starts ten workers. On a machine without CUDA devices the workers
are instead forked from one `multiprocessing` forkserver per run that imported those libraries once
(introspection/core/worker_preload.py). Each worker still starts as a spawned one would, from what the run's
process is at that moment, not from what it was when the forkserver started:
- its environment: the variables that differ from the forkserver's are set, those gone are removed;
- its standard output and error: the run's current file descriptors, passed to it (a test capturing them,
  a log file opened since);
- its signals: the run's signal mask, and which of the stop signals the run ignores.

Where that cannot be made equal, a worker is spawned afresh (`start_method`):
- any CUDA device is visible: a forked child must not inherit a parent's CUDA state, and every GPU job
  (the paper's setting) keeps the fresh spawned process with exactly its devices;
- a variable that a preloaded library reads when it is imported (HF_HOME, HF_HUB_OFFLINE, OMP_NUM_THREADS, ...)
  differs from the forkserver's (only variables read later, READ_LATE_*, may differ) while a worker forked
  from it still runs; with none running, the forkserver is replaced by one started from the run's environment;
- INTROSPECTION_WORKER_START=spawn asks for it.
"""

from __future__ import annotations

import os
import signal
import threading
from multiprocessing import reduction

START_VARIABLE = "INTROSPECTION_WORKER_START"
START_METHODS = ("auto", "spawn")
PRELOAD_MODULE = "introspection.core.worker_preload"

# Variables that nothing imported by the forkserver reads at import: they may differ between the run and the
# forkserver (the worker gets the run's). Everything else must be equal, or the worker is spawned afresh.
READ_LATE_PREFIXES = ("INTROSPECTION_", "WANDB_", "SLURM_", "SUBMITIT_")
READ_LATE_NAMES = frozenset({"PYTEST_CURRENT_TEST", "OLDPWD", "PWD", "_"})

# Signals a forkserver ignores (Slurm sends SIGUSR2 before the time limit to every process of the job, scancel
# SIGTERM: the forkserver must outlive them, or every running worker would be reported as failed) and that each
# worker sets back to what a spawned process would have.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP, signal.SIGINT)

OPTIONAL_LIBRARIES = ("peft", "trl", "vllm")  # imported by the forkserver too unless a run says it does not use them

_lock = threading.Lock()
_libraries: list[str] = list(OPTIONAL_LIBRARIES)
_server: dict = {}  # the running forkserver: its pid, the environment it started with, its running workers


def requested_method() -> str:
    """INTROSPECTION_WORKER_START: `auto` (the default) or `spawn`; anything else is a one-line error."""
    value = os.environ.get(START_VARIABLE, "auto").strip() or "auto"
    if value not in START_METHODS:
        raise ValueError(f"{START_VARIABLE}={value!r} in the environment is not a worker start method; valid: "
                         f"{', '.join(START_METHODS)}")
    return value


def read_late(name: str) -> bool:
    return name in READ_LATE_NAMES or name.startswith(READ_LATE_PREFIXES)


def differing(env: dict[str, str], server_env: dict[str, str]) -> list[str]:
    """Names whose values differ between `env` and `server_env` (set in one only included), sorted."""
    return sorted(k for k in set(env) | set(server_env) if env.get(k) != server_env.get(k))


def start_method(env: dict[str, str], cuda_devices: list[str]) -> str:
    """`forkserver` or `spawn` for a worker whose environment is `env` (module docstring). `forkserver` reserves
    the worker a place among the forkserver's running workers: call `worker_ended` once it has exited.

    A forkserver started from an environment that differs from `env` in a variable read at import is replaced
    by one started now, unless a worker forked from it still runs (its exit status comes through the
    forkserver): then this worker is spawned afresh."""
    import multiprocessing as mp

    if cuda_devices or requested_method() == "spawn" or "forkserver" not in mp.get_all_start_methods():
        return "spawn"  # (no forkserver on Windows)
    with _lock:
        server_env = _server.get("env")
        if server_env is not None and not same_imports(env, server_env):
            if _server["running"]:
                return "spawn"
            _stop_server()
        _ensure_server()
        _server["running"] += 1
        return "forkserver"


def worker_ended() -> None:
    """A worker that `start_method` sent to the forkserver has exited (or never started)."""
    with _lock:
        if _server:  # (a forkserver that died was replaced: its workers' places went with it)
            _server["running"] = max(0, _server["running"] - 1)


def same_imports(env: dict[str, str], server_env: dict[str, str]) -> bool:
    """Whether a worker with `env` can fork from a forkserver started with `server_env`: only variables read
    late differ."""
    return all(read_late(k) for k in differing(env, server_env))


def preload_libraries(names: list[str]) -> None:
    """The libraries besides torch and transformers that a forkserver started from now on imports (default: all of
    OPTIONAL_LIBRARIES): a run names those its workers use (vLLM costs 6 s of CPU to import); a worker that needs
    another imports it itself. A forkserver already running keeps its own."""
    unknown = sorted(set(names) - set(OPTIONAL_LIBRARIES))
    if unknown:
        raise ValueError(f"preload_libraries: {', '.join(unknown)} not among {', '.join(OPTIONAL_LIBRARIES)}")
    with _lock:
        _libraries[:] = [n for n in OPTIONAL_LIBRARIES if n in names]


def server_environment() -> dict[str, str] | None:
    """The environment the running forkserver started with (None before the first forked worker)."""
    return _server.get("env")


def _ensure_server() -> None:
    """Start the forkserver when none runs (or it died), recording the environment it starts with."""
    import multiprocessing as mp
    from multiprocessing import forkserver

    mp.get_context("forkserver").set_forkserver_preload([PRELOAD_MODULE, *_libraries])  # each, in that order
    forkserver.ensure_running()
    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)  # private: a restart gives a new pid
    if pid is None or _server.get("pid") != pid:
        _server.update(pid=pid, env=dict(os.environ), running=0)


def _stop_server() -> None:
    from multiprocessing import forkserver

    forkserver._forkserver._stop()  # private, as the standard library's own tests use it: closes its alive pipe
    _server.clear()


class ChildSetup:
    """What a forked worker takes over from the run at its start (module docstring); built in the run's
    process just before the start, applied in the worker by `apply` before anything else."""

    def __init__(self, env: dict[str, str]) -> None:
        server_env = server_environment() or {}
        self.set = {k: v for k, v in env.items() if server_env.get(k) != v}
        self.unset = [k for k in server_env if k not in env]
        self.mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        self.ignored = [s for s in STOP_SIGNALS if signal.getsignal(s) == signal.SIG_IGN]

    def __reduce__(self):
        # Pickled while the worker starts: the run's stdout and stderr travel as file descriptors then.
        return (_rebuild, (self.set, self.unset, self.mask, self.ignored, reduction.DupFd(1), reduction.DupFd(2)))

    def apply(self) -> None:
        for name in self.unset:
            os.environ.pop(name, None)
        os.environ.update(self.set)
        for number, fd in ((1, self.stdout), (2, self.stderr)):
            os.dup2(fd, number)
            os.close(fd)
        for sig in STOP_SIGNALS:
            default = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
            signal.signal(sig, signal.SIG_IGN if sig in self.ignored else default)
        signal.pthread_sigmask(signal.SIG_SETMASK, self.mask)


def _rebuild(set_, unset, mask, ignored, stdout, stderr) -> ChildSetup:
    setup = ChildSetup.__new__(ChildSetup)
    setup.set, setup.unset, setup.mask, setup.ignored = set_, unset, set(mask), list(ignored)
    setup.stdout, setup.stderr = stdout.detach(), stderr.detach()
    return setup


def ignore_stop_signals() -> None:
    """In the forkserver: outlive the job's stop signals (STOP_SIGNALS); the parent run decides when to stop."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def run_preloaded(target, payload: dict, setup: ChildSetup) -> None:
    """A forked worker's entry: take over the run's environment, output and signals, then run as a spawned
    worker does (a process group of its own, then `target`)."""
    from introspection.core.child_process import run_in_own_group

    setup.apply()
    run_in_own_group(target, payload)
