"""Expected failures and how they reach the user: one line on stderr, exit code 2, no traceback.

Expected failures are the ones a user fixes by changing input: a bad config value, a missing or malformed
data file, a model folder that does not exist, no chat template, an offline hub, a full disk. The library
raises them as ValueError (or a subclass: ModelResolveError, AdapterError) or OSError, with a message
that names the value, where it came from and what would be valid. Anything else is a bug and keeps its
traceback. `HYDRA_FULL_ERROR=1` shows the traceback of an expected failure too.

A model worker process cannot raise into the orchestrator, so `reported` (around a worker entry point)
writes the worker's one-line message to `<store>/tmp/worker-<pid>.error` and exits with code 2, and
`worker_failure` (in the orchestrator) turns it into a WorkerError carrying that line.
"""

from __future__ import annotations

import errno
import functools
import os
import sys
from pathlib import Path

EXIT_CODE = 2  # as for a bad command-line override (introspection.cli)


class WorkerError(RuntimeError):
    """A model worker stopped on an expected failure; the message is the worker's one line."""


EXPECTED = (ValueError, OSError, WorkerError)


def one_line(exc: BaseException) -> str:
    """The exception's message on one line."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror + (f": {exc.filename}" if exc.filename else "")
        if exc.errno in (errno.ENOSPC, errno.EDQUOT) and "free space" not in text:
            text += "; free space on that disk, or set store_dir (artifacts) or hydra.run.dir (outputs) elsewhere"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _full_error() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def _in_multirun() -> bool:
    # In a sweep a failed job is recorded by Hydra and the others go on, so the exception is kept.
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def one_line_errors(task_function):
    """Decorate the Hydra task function: an expected failure prints `error: <message>` and exits 2."""

    @functools.wraps(task_function)
    def run(*args, **kwargs):
        try:
            return task_function(*args, **kwargs)
        except EXPECTED as exc:
            if _full_error() or _in_multirun():
                raise
            print(f"error: {one_line(exc)}", file=sys.stderr, flush=True)
            raise SystemExit(EXIT_CODE) from None

    return run


def _error_file(store_root: str | Path, pid: int) -> Path:
    return Path(store_root) / "tmp" / f"worker-{pid}.error"


def reported(worker):
    """Decorate a worker entry point (it takes a payload dict with "store_root"): see the module doc."""

    @functools.wraps(worker)
    def run(payload: dict) -> None:
        try:
            worker(payload)
        except EXPECTED as exc:
            if _full_error():
                raise
            message = one_line(exc)
            try:
                path = _error_file(payload["store_root"], os.getpid())
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(message, encoding="utf-8")
            except (OSError, KeyError):  # e.g. the disk is full: say it here instead
                print(f"error: {message}", file=sys.stderr, flush=True)
            raise SystemExit(EXIT_CODE) from None

    return run


def worker_failure(store_root: str | Path, pid: int | None, what: str, exitcode: int | None) -> RuntimeError:
    """The exception for a worker that exited with `exitcode`: a WorkerError when it reported one line."""
    path = _error_file(store_root, pid) if pid is not None else None
    if exitcode == EXIT_CODE and path is not None and path.is_file():
        message = path.read_text(encoding="utf-8").strip()
        path.unlink(missing_ok=True)
        return WorkerError(f"{what}: {message}")
    return RuntimeError(f"{what} failed in its worker process (exit code {exitcode}); its log is above")


def spawn_and_wait(store_root: str | Path, target, payload: dict, what: str) -> None:
    """Run `target(payload)` in a fresh spawned process and wait; its failure is raised here (one line
    when the worker reported one under `store_root`)."""
    import multiprocessing as mp

    proc = mp.get_context("spawn").Process(target=target, args=(payload,), name=what)
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        raise worker_failure(store_root, proc.pid, what, proc.exitcode)
