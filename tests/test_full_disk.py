"""A full disk under the store or the run folder: one `error:` line naming the folder and the fix, exit
code 2, nothing else on stderr after the progress output, and a consistent store.

The disk is a real 1 MiB tmpfs filled with a file (mounting needs root; otherwise these tests skip).
"""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from introspection.core.errors import WorkerError, one_line_errors, quiet_full_disk_logs, reported
from introspection.core.spawn import spawn_and_wait
from tests.helpers.checks import assert_store_consistent

ROOT = Path(__file__).resolve().parents[1]
PROGRESS = ("[20",)  # log lines ("[2026-...][introspection][INFO] - ...") are progress output


@pytest.fixture
def full_disk(tmp_path):
    """A mounted 1 MiB tmpfs, filled up (`full_disk / "fill"` takes every free byte)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True,
                              text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(reason=f"cannot mount a tmpfs here: {exc}")
    if done.returncode != 0:
        pytest.skip(reason=f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        fill(mount)
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def fill(folder: Path) -> None:
    with open(folder / "fill", "wb", buffering=0) as f:  # unbuffered: closing has nothing left to write
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    assert os.statvfs(folder).f_bavail == 0


def run_main(args: list[str], code: str | None = None) -> subprocess.CompletedProcess:
    launch = ["-c", f"{code}\nimport runpy, sys\nsys.argv[1:] = {args!r}\n"
                    "runpy.run_module('introspection.main', run_name='__main__', alter_sys=True)"] \
        if code else ["-m", "introspection.main", *args]
    return subprocess.run([sys.executable, *launch], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})


def the_error_line(proc: subprocess.CompletedProcess) -> str:
    """Exit code 2 and one `error:` line, the last on stderr; the lines before it are progress output."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert lines and lines[-1].startswith("error: "), proc.stderr[-3000:]
    assert all(ln.startswith(PROGRESS) for ln in lines[:-1]), proc.stderr[-3000:]
    return lines[-1]


def test_run_folder_on_a_full_disk(full_disk, tmp_path):
    """Hydra writes .hydra/*.yaml before the run starts: the run folder's disk is checked before that."""
    run_dir, store = full_disk / "run", tmp_path / "store"
    proc = run_main(["tasks=smoke", "logger=none", f"hydra.run.dir={run_dir}", f"store_dir={store}"])
    line = the_error_line(proc)
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert str(run_dir) in line and "is full" in line and "set hydra.run.dir to a folder on another disk" in line
    assert not store.exists()  # nothing ran


FILL_DURING_THE_RUN = """
import logging
import introspection.outputs.run_outputs as tracking
real = tracking.write_results
def write_results(results, cfg, run_dir):
    # Another process takes the last free byte of the run folder's disk, then the run logs on.
    with open(run_dir / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(bytes(65536))
        except OSError:
            pass
    for i in range(70):
        logging.getLogger("introspection").info("line %d after the disk filled", i)
    real(results, cfg, run_dir)
tracking.write_results = write_results  # before introspection.main imports it
"""


def test_run_folder_that_fills_during_the_run(full_disk, tmp_path):
    """main.log stops quietly at the full disk (no 'Logging error' per line), then the first output that
    cannot be written ends the run with one line naming it, the fix and the stopped log."""
    os.remove(full_disk / "fill")  # room for Hydra's files; the run itself fills the disk later
    run_dir, store = full_disk / "run", tmp_path / "store"
    proc = run_main(["tasks=smoke", "logger=none", "experiment.stop_after=build", f"hydra.run.dir={run_dir}",
                     f"store_dir={store}"], code=FILL_DURING_THE_RUN)
    line = the_error_line(proc)
    assert "Logging error" not in proc.stderr and "Traceback" not in proc.stderr
    assert "No space left on device" in line and str(run_dir) in line
    assert "set hydra.run.dir to a folder on another disk" in line
    assert f"{run_dir / 'main.log'} stopped" in line
    assert_store_consistent(store)


def test_store_on_a_full_disk(full_disk, tmp_path):
    store = full_disk / "store"
    proc = run_main(["tasks=smoke", "logger=none", "experiment.stop_after=build", f"hydra.run.dir={tmp_path / 'run'}",
                     f"store_dir={store}"])
    line = the_error_line(proc)
    assert str(store) in line and "No space left on device" in line and "store_dir" in line
    assert_store_consistent(store)
    assert not list((store / "artifacts").glob("*/*"))


@reported
def serializing_worker(payload: dict) -> None:
    """Fails as safetensors does when the disk is full (its own exception type, not an OSError)."""
    raise RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)")


def test_a_worker_on_a_full_store_disk_reports_one_line(full_disk, capfd):
    """A model worker's full-disk error (safetensors, torch) is the same one line, even though the store's
    disk has no room for the worker's error file."""
    store = full_disk / "store"
    with pytest.raises(WorkerError) as info:
        spawn_and_wait(store, serializing_worker, {"store_root": str(store)}, "materialising embedded model x")
    message = str(info.value)
    assert "\n" not in message and message.startswith("materialising embedded model x: No space left on device")
    assert str(store) in message and "set store_dir to a folder on another disk" in message
    assert capfd.readouterr().err == ""  # no traceback from the worker
    assert_store_consistent(store)

    @one_line_errors  # the orchestrator prints the worker's line as it is, naming what failed
    def task(cfg):
        raise info.value

    with pytest.raises(SystemExit):
        task(SimpleNamespace(store_dir=str(store)))
    assert capfd.readouterr().err == f"error: {message}\n"


def test_a_log_file_on_a_full_disk_stops_quietly(full_disk, capfd, monkeypatch):
    monkeypatch.setattr("introspection.core.errors.STOPPED_LOGS", [])
    import introspection.core.errors as errors

    path = full_disk / "main.log"
    handler = logging.FileHandler(path)
    logger = logging.getLogger("introspection.test_full_disk")
    logger.addHandler(handler)
    try:
        quiet_full_disk_logs()
        for i in range(100):
            logger.warning("line %d %s", i, "x" * 200)
        assert handler not in logger.handlers
        assert errors.STOPPED_LOGS == [str(path)]
        assert capfd.readouterr().err == ""

        @one_line_errors
        def task(cfg):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(full_disk / "results.json"))

        with pytest.raises(SystemExit):
            task(None)
        err = capfd.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: No space left on device"), err
        assert f"{path} stopped at the first line its disk had no room for" in err
    finally:
        logger.removeHandler(handler)
        handler.close()
