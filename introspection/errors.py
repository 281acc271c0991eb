"""Expected failures and how they reach the user: one line on stderr, exit code 2, no traceback.

Expected failures are the ones a user fixes by changing input: a bad config value, a missing or malformed
data file, a model folder that does not exist, no chat template, an offline hub, a full disk. The library
raises them as ValueError (or a subclass: ModelResolveError, AdapterError) or OSError, with a message
that names the value, where it came from and what would be valid. Anything else is a bug and keeps its
traceback. `HYDRA_FULL_ERROR=1` shows the traceback of an expected failure too.

A single run prints `error: <line>` on stderr and exits 2. A job of a sweep (`-m`) must not stop the
others: it writes the line to `<job output dir>/error.txt` (the sweep table reads it), logs
`error: <line>` to the job's log, and returns None, so Hydra records the job as finished and goes on.

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


JOB_ERROR_FILE = "error.txt"  # in a sweep job's output folder: the one line that stopped the job


def _multirun_job_dir() -> Path | None:
    """The output folder of the current job when it is one job of a sweep (-m), else None."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return Path(HydraConfig.get().runtime.output_dir)


def report_job_error(job_dir: Path, message: str) -> None:
    """A sweep job's expected failure: `error.txt` in its folder, and `error: <line>` in its log."""
    import logging

    from introspection.store import write_text_atomic

    try:
        write_text_atomic(job_dir / JOB_ERROR_FILE, message + "\n")
    except OSError as exc:  # e.g. the disk is full: the log line below still says what stopped the job
        message += f" (and {JOB_ERROR_FILE} could not be written: {one_line(exc)})"
    log = logging.getLogger("introspection")
    if log.hasHandlers():
        log.error("error: %s", message)
    else:  # no logging set up (hydra/job_logging=disabled): stderr still carries the line
        print(f"error: {message}", file=sys.stderr, flush=True)


def one_line_errors(task_function):
    """Decorate the Hydra task function: an expected failure prints `error: <message>` and exits 2; in a
    sweep job it is reported by `report_job_error` and the job returns None, so the other jobs go on."""

    @functools.wraps(task_function)
    def run(*args, **kwargs):
        try:
            return task_function(*args, **kwargs)
        except EXPECTED as exc:
            if _full_error():
                raise
            job_dir = _multirun_job_dir()
            if job_dir is not None:
                report_job_error(job_dir, one_line(exc))
                return None
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
