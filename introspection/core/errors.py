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
writes the worker's one-line message to `<store>/tmp/worker-<pid>.error` (or, when the store's disk is
full, to the system's temp folder) and exits with code 2, and `worker_failure` (in the orchestrator) turns
it into a WorkerError carrying that line.

A full disk is an expected failure wherever it shows: as an OSError, or as a library's own exception
(safetensors' "No space left on device (os error 28)", torch's "file write failed"), which `as_full_disk`
turns into the OSError naming the folder; the line names the file and the setting that moves it
(store_dir, hydra.run.dir). Log files stop at their first failed write (`quiet_full_disk_logs`, installed
at job start) instead of printing a traceback per line, and the error line says so.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import shutil
import sys
from pathlib import Path

EXIT_CODE = 2  # as for a bad command-line override (introspection.cli)


class WorkerError(RuntimeError):
    """A model worker stopped on an expected failure; the message is the worker's one line."""


class ModelResolveError(ValueError):
    """A model entry that cannot be turned into loadable weights (message is one line)."""


EXPECTED = (ValueError, OSError, WorkerError)


FULL_DISK_TEXT = re.compile(r"No space left on device|os error 28\b|Disk quota exceeded|os error 122\b", re.I)
FULL_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def as_full_disk(exc: BaseException, folder: str | Path | None) -> BaseException:
    """A library's own exception for a full disk (safetensors' SafetensorError "No space left on device
    (os error 28)", torch's "file write failed") as the OSError it stands for, naming `folder`; any other
    exception unchanged."""
    if isinstance(exc, EXPECTED) or folder is None:  # a WorkerError already carries its worker's line
        return exc
    text = str(exc)
    full = FULL_DISK_TEXT.search(text) is not None
    if not full and "file write failed" in text:  # torch.save names no cause: look at the disk itself
        try:
            full = shutil.disk_usage(folder).free < (1 << 20)
        except OSError:
            full = False
    if not full:
        return exc
    code = errno.EDQUOT if re.search(r"quota|os error 122", text, re.I) else errno.ENOSPC
    return OSError(code, os.strerror(code), str(folder))


def one_line(exc: BaseException, folders: dict[str, str | Path] | None = None) -> str:
    """The exception's message on one line. A full disk names the file and the fix: `folders` maps a
    setting (store_dir, hydra.run.dir) to its folder, so the fix names the setting that moves that file."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror + (f": {exc.filename}" if exc.filename else "")
        if exc.errno in FULL_DISK_ERRNOS and "free space" not in text:
            key = _setting_for(exc.filename, folders or {})
            text += (f"; free space on that disk, or set {key} to a folder on another disk" if key else
                     "; free space on that disk, or set store_dir (artifacts) or hydra.run.dir (outputs) elsewhere")
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _setting_for(filename, folders: dict[str, str | Path]) -> str | None:
    """The setting whose folder holds `filename` (the deepest, when one holds the other)."""
    if not filename:
        return None
    path = Path(str(filename)).expanduser().absolute()
    holders = [(len(Path(str(f)).expanduser().absolute().parts), key) for key, f in folders.items()
               if f and (Path(str(f)).expanduser().absolute() in (path, *path.parents))]
    return max(holders)[1] if holders else None


# Log files that stopped because their disk filled (see quiet_full_disk_logs); the error line names them.
STOPPED_LOGS: list[str] = []


def quiet_full_disk_logs() -> None:
    """Make every log file handler stop, silently, at its first failed write (a full disk): logging's
    default prints a traceback to stderr for every later line (~70 of them before a run's error line)."""
    import logging

    loggers = [logging.getLogger()] + [lg for lg in logging.Logger.manager.loggerDict.values()
                                       if isinstance(lg, logging.Logger)]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.FileHandler) and not getattr(handler, "quiet_when_full", False):
                handler.quiet_when_full = True
                handler.handleError = functools.partial(_stop_log_file, handler)


def _stop_log_file(handler, record) -> None:
    import logging

    exc = sys.exc_info()[1]
    if not isinstance(exc, OSError):
        logging.FileHandler.handleError(handler, record)
        return
    for logger in [logging.getLogger()] + list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and handler in logger.handlers:
            logger.removeHandler(handler)
    try:
        handler.close()
    except OSError:  # its buffered lines cannot be written either
        pass
    if handler.baseFilename not in STOPPED_LOGS:
        STOPPED_LOGS.append(handler.baseFilename)


def stopped_logs_note() -> str:
    if not STOPPED_LOGS:
        return ""
    return f" ({', '.join(STOPPED_LOGS)} stopped at the first line its disk had no room for)"


def command_line_secrets() -> set[str]:
    """Secret values given on this job's command line (introspection/core/secrets.py has the rule)."""
    from introspection.core import secrets

    values = secrets.override_secrets(sys.argv[1:])
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            values |= secrets.override_secrets(list(HydraConfig.get().overrides.task))
            values |= secrets.override_secrets(list(HydraConfig.get().overrides.hydra))
    except Exception:  # noqa: BLE001 - no Hydra config here: the process's command line still counts
        pass
    return values


def scrub_secrets(message: str, cfg=None) -> str:
    """An error line without credentials: values under secret keys of `cfg` and of this job's overrides,
    so `logger.api_key=XYZ` never shows XYZ."""
    from introspection.core import secrets

    values = command_line_secrets()
    if cfg is not None:
        try:
            from omegaconf import OmegaConf

            values |= secrets.secret_values(OmegaConf.to_container(cfg, resolve=False))
        except Exception:  # noqa: BLE001 - a half-built config: the command line's values are still scrubbed
            pass
    return secrets.scrub(message, values)


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

    from introspection.core.store import write_text_atomic

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
        except Exception as raised:
            cfg = args[0] if args else None
            exc = as_full_disk(raised, _store_dir(cfg))
            if not isinstance(exc, EXPECTED) or _full_error():
                raise
            message = scrub_secrets(one_line(exc, _job_folders(cfg)), cfg) + stopped_logs_note()
            job_dir = _multirun_job_dir()
            if job_dir is not None:
                report_job_error(job_dir, message)
                return None
            print(f"error: {message}", file=sys.stderr, flush=True)
            raise SystemExit(EXIT_CODE) from None

    return run


def _store_dir(cfg) -> str | None:
    try:
        return str(Path(str(cfg.store_dir)).expanduser())
    except Exception:  # noqa: BLE001 - no config (a test calling the function directly)
        return None


def _job_folders(cfg) -> dict[str, str]:
    """The folders a full disk can be under: the store and the run (or sweep job) folder."""
    folders = {"store_dir": _store_dir(cfg)}
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            key = "hydra.sweep.dir" if _multirun_job_dir() is not None else "hydra.run.dir"
            folders[key] = HydraConfig.get().runtime.output_dir
    except Exception:  # noqa: BLE001
        pass
    return {k: v for k, v in folders.items() if v}


def _error_files(store_root: str | Path, pid: int) -> list[Path]:
    """Where a worker leaves its line: the store's tmp/, or (that disk being full) the system's temp folder."""
    import tempfile

    return [Path(store_root) / "tmp" / f"worker-{pid}.error",
            Path(tempfile.gettempdir()) / f"introspection-worker-{pid}.error"]


def reported(worker):
    """Decorate a worker entry point (it takes a payload dict with "store_root"): see the module doc."""

    @functools.wraps(worker)
    def run(payload: dict) -> None:
        try:
            worker(payload)
        except Exception as raised:
            store_root = payload.get("store_root")
            exc = as_full_disk(raised, store_root)
            if not isinstance(exc, EXPECTED) or _full_error():
                raise
            message = one_line(exc, {"store_dir": store_root} if store_root else None)
            for path in _error_files(store_root, os.getpid()) if store_root else []:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(message, encoding="utf-8")
                    break
                except OSError:  # e.g. the store's disk is full: try the next place
                    path.unlink(missing_ok=True)
            else:  # nowhere to leave it: say it here instead
                print(f"error: {message}", file=sys.stderr, flush=True)
            raise SystemExit(EXIT_CODE) from None

    return run


def worker_failure(store_root: str | Path, pid: int | None, what: str, exitcode: int | None) -> RuntimeError:
    """The exception for a worker that exited with `exitcode`: a WorkerError when it reported one line."""
    if exitcode == EXIT_CODE and pid is not None:
        for path in _error_files(store_root, pid):
            if path.is_file():
                message = path.read_text(encoding="utf-8").strip()
                path.unlink(missing_ok=True)
                return WorkerError(f"{what}: {message}")
    return RuntimeError(f"{what} failed in its worker process (exit code {exitcode}); its log is above")
