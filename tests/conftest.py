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

import os
import shutil
import tempfile
from pathlib import Path

import pytest

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


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory) -> tuple[Path, Path]:
    """Two tiny random models of one architecture (seeds 0 and 1), built once per test module."""
    base = tmp_path_factory.mktemp("tiny_pair")
    return build_tiny_model(base / "a", seed=0), build_tiny_model(base / "b", seed=1)


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
