"""Shared fixtures. Markers: `integration` tests load the embedded real models (minutes on CPU);
`session_end` tests run after every other test of the session.

Tests that compare against the paper's released data read it only through INTROSPECTION_PAPER_DATA, a
folder holding the authors' source datasets and a sample of their released prompts (its layout:
docs/testing.md). Unset, those tests skip and say so; CI sets it.

No test writes to the user's caches: for the session (and every process a test starts), the artifact
store default (INTROSPECTION_CACHE), the converted embedded models and the libraries' caches (HOME and
the XDG folders: Hugging Face, W&B, vLLM, matplotlib, torch) lie in a temporary folder, removed at the
end (tests/helpers/session.py). The integration tests therefore convert the embedded models once per session
(30-75 s each); set INTROSPECTION_TEST_CACHE to a folder of your own to keep them between sessions.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import run_main, tiny_overrides
from tests.helpers.session import (
    REPO_OUTPUT_FOLDERS,
    TEST_CACHE_VARIABLE,
    SessionFolders,
    footprint,
    use_session_folders,
    user_folders,
)
from tests.tiny_model import build_tiny_model

PAPER_DATA_VARIABLE = "INTROSPECTION_PAPER_DATA"
SESSION_FOLDERS = pytest.StashKey[SessionFolders]()


def pytest_configure(config):
    config.addinivalue_line("markers", "session_end: runs after every other test of the session")
    # The user's folders, read from the environment before the session's folders replace it.
    watched = [*user_folders(os.environ, Path.home()), *REPO_OUTPUT_FOLDERS]
    requested = os.environ.get(TEST_CACHE_VARIABLE)
    if requested:
        base = Path(requested).expanduser().absolute()
        for folder in watched:
            if base == folder or folder in base.parents or base in folder.parents:
                raise pytest.UsageError(f"{TEST_CACHE_VARIABLE}={requested} overlaps {folder}, a folder no test "
                                        "may write to; choose a folder of its own")
    else:
        base = Path(tempfile.mkdtemp(prefix="introspection-tests-"))
    use_session_folders(os.environ, base)
    config.stash[SESSION_FOLDERS] = SessionFolders(base, not requested, watched, footprint(watched))


def pytest_unconfigure(config):
    folders = config.stash.get(SESSION_FOLDERS, None)
    if folders is not None and folders.remove:
        shutil.rmtree(folders.base, ignore_errors=True)


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.get_closest_marker("session_end") is not None)  # stable: order kept


@pytest.fixture(scope="session")
def session_folders(pytestconfig) -> SessionFolders:
    """The session's cache folder and the user's folders recorded when the session started."""
    return pytestconfig.stash[SESSION_FOLDERS]


@pytest.fixture(scope="session")
def tiny_pair(tiny_model_dir, tmp_path_factory) -> tuple[Path, Path]:
    """Two tiny random models of one architecture (seeds 0 and 1: tiny_model_dir and one more), once per session.

    Every artifact key starts from a model's fingerprint, the sha256 of its folder's files
    (introspection/model_fingerprints.py folder_fingerprint), so runs in any module share tiny_run's artifacts."""
    return tiny_model_dir, build_tiny_model(tmp_path_factory.mktemp("tiny_b"), seed=1)


@dataclass(frozen=True)
class TinyRun:
    """The whole experiment on tiny_pair at tests/helpers TINY_SIZES, from an empty store."""

    store: Path  # never written after the run: copy it first (the warm_store fixture)
    run_dir: Path
    results: dict  # run_dir/results.json
    stdout: str  # what the entry point printed (its logging included)
    workers: list[dict]  # each model worker: what it did, its CUDA_VISIBLE_DEVICES, start and end (monotonic s)


@pytest.fixture(scope="session")
def tiny_run(tiny_pair, tmp_path_factory) -> TinyRun:
    """The tiny pipeline, run once per session; tests read its run folder and results.json.

    Its workers run on one thread each (OMP_NUM_THREADS=1), so that a run of the same config elsewhere on one
    thread (tests/test_concurrent_sides.py) computes the same bytes."""
    from introspection import devices
    from introspection.stages import worker_runs

    base = tmp_path_factory.mktemp("tiny_run")
    workers: list[dict] = []
    spawn_and_wait = worker_runs.spawn_and_wait

    def recorded(store_root, target, payload, what, *args, **kwargs):
        record = {"what": what, "devices": devices.environment().get("CUDA_VISIBLE_DEVICES"), "start": time.monotonic()}
        try:
            spawn_and_wait(store_root, target, payload, what, *args, **kwargs)
        finally:
            workers.append(record | {"end": time.monotonic()})

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(worker_runs, "spawn_and_wait", recorded)
        patch.setenv("OMP_NUM_THREADS", "1")
        patch.delenv("CUDA_VISIBLE_DEVICES", raising=False)  # no devices: the two sides in turn
        proc = run_main([f"hydra.run.dir={base / 'run'}", *tiny_overrides(tiny_pair, base / "store")])
    results = json.loads((base / "run" / "results.json").read_text())
    return TinyRun(base / "store", base / "run", results, proc.stdout, workers)


@pytest.fixture
def warm_store(tiny_run, tmp_path) -> Path:
    """A private copy of tiny_run's store: a test's runs reuse its artifacts and may add their own."""
    return Path(shutil.copytree(tiny_run.store, tmp_path / "warm_store", symlinks=True))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A random tiny Llama (byte tokenizer, ChatML template) saved once per test session."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    folder = os.environ.get(PAPER_DATA_VARIABLE)
    if not folder:
        pytest.skip(reason=f"{PAPER_DATA_VARIABLE} is not set: no folder of the paper's released data to compare against")
    path = Path(folder).resolve()
    if not path.is_dir():
        pytest.fail(f"{PAPER_DATA_VARIABLE}={folder} is not a folder")
    return path
