"""Model workers on a CPU machine fork from a parent that imported the model libraries once
(introspection/core/preloaded_start.py), and each still starts as a fresh spawned worker would: the run's
environment, output and signals at that moment; a fresh spawn wherever that cannot be made equal."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from multiprocessing import forkserver
from pathlib import Path

import pytest

from introspection.core import preloaded_start
from introspection.core.spawn import spawn_and_wait


def report_worker(payload: dict) -> None:
    """Writes what the worker started with: how, its environment, its signals, its process group."""
    facts = {
        "torch_before_target": "torch" in sys.modules,  # preloaded: already imported when the target begins
        "parent_is_run": os.getppid() == payload["run_pid"],  # spawned: the run is its parent; forked: the forkserver
        "env": {k: os.environ.get(k) for k in payload["names"]},
        "sigusr2": "default" if signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL else "other",
        "sigterm_ignored": signal.getsignal(signal.SIGTERM) == signal.SIG_IGN,
        "blocked": sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])),
        "own_group": os.getpgid(0) == os.getpid(),
        "libraries": sorted(n for n in preloaded_start.OPTIONAL_LIBRARIES if n in sys.modules),
    }
    print(f"worker says hello on stdout {payload['tag']}", flush=True)
    print(f"worker says hello on stderr {payload['tag']}", file=sys.stderr, flush=True)
    Path(payload["out"]).write_text(json.dumps(facts))


def start(tmp_path: Path, tag: str, names=("INTROSPECTION_PROBE", "HF_HOME")) -> dict:
    out = tmp_path / f"{tag}.json"
    spawn_and_wait(tmp_path, report_worker, {"out": str(out), "names": list(names), "run_pid": os.getpid(),
                                             "tag": tag}, f"probe {tag}", gpus=0)
    return json.loads(out.read_text())


@pytest.fixture
def cpu_machine(monkeypatch):
    """This process sees no CUDA device (as on the test machine): workers may fork from the preloaded parent."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.delenv(preloaded_start.START_VARIABLE, raising=False)


def test_a_worker_forks_preloaded_and_takes_the_runs_environment_output_and_signals(cpu_machine, tmp_path, monkeypatch,
                                                                                      capfd):
    start(tmp_path, "first")  # starts the forkserver if no earlier test did
    server_env = preloaded_start.server_environment()
    # Changed after the forkserver started: a variable read late reaches the worker; so do the run's current
    # output (capfd replaced fds 1 and 2 after the forkserver started, or not: either way the worker must write
    # where this process writes now) and its signal dispositions and mask.
    monkeypatch.setenv("INTROSPECTION_PROBE", "set-after-the-forkserver-started")
    assert "INTROSPECTION_PROBE" not in server_env
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        facts = start(tmp_path, "second")
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        signal.signal(signal.SIGTERM, previous)
    assert facts["torch_before_target"] and not facts["parent_is_run"]  # forked from the preloaded parent
    assert facts["env"]["INTROSPECTION_PROBE"] == "set-after-the-forkserver-started"
    assert facts["env"]["HF_HOME"] == os.environ.get("HF_HOME")
    assert facts["sigterm_ignored"] and facts["sigusr2"] == "default"  # not the forkserver's SIG_IGN
    assert int(signal.SIGUSR1) in facts["blocked"]
    assert facts["own_group"]
    out, err = capfd.readouterr()
    assert "worker says hello on stdout second" in out and "worker says hello on stderr second" in err


def hold_worker(payload: dict) -> None:
    """A worker that runs until the test creates payload["release"]."""
    Path(payload["started"]).touch()
    while not Path(payload["release"]).exists():
        time.sleep(0.05)


def test_a_library_variable_that_differs_replaces_an_idle_forkserver_else_spawns(cpu_machine, tmp_path, monkeypatch):
    start(tmp_path, "warm")
    first_server = forkserver._forkserver._forkserver_pid
    # huggingface_hub reads HF_HOME when it is imported: a worker forked from the running forkserver would not see it
    monkeypatch.setenv("HF_HOME", str(tmp_path / "another-hf-home"))
    preloaded_start.preload_libraries(["peft"])  # a run that uses no vLLM and no TRL says so
    try:
        facts = start(tmp_path, "replaced")  # no forked worker runs: the forkserver is replaced
    finally:
        preloaded_start.preload_libraries(list(preloaded_start.OPTIONAL_LIBRARIES))
    assert facts["torch_before_target"] and not facts["parent_is_run"]
    assert facts["libraries"] == ["peft"]  # imported by the new forkserver; vLLM not
    assert facts["env"]["HF_HOME"] == str(tmp_path / "another-hf-home")
    assert forkserver._forkserver._forkserver_pid != first_server
    assert preloaded_start.server_environment()["HF_HOME"] == str(tmp_path / "another-hf-home")

    # A forked worker still runs: its exit status comes through the forkserver, which must stay; the next worker
    # with yet another HF_HOME is spawned afresh.
    started, release = tmp_path / "held-started", tmp_path / "held-release"
    held = threading.Thread(target=spawn_and_wait, args=(tmp_path, hold_worker, {"started": str(started),
                                                         "release": str(release)}, "held worker"),
                            kwargs={"gpus": 0})
    held.start()
    try:
        while not started.exists():
            assert held.is_alive(), "the held worker ended before it started"
            time.sleep(0.05)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "a-third-hf-home"))
        facts = start(tmp_path, "beside-a-running-worker")
        assert facts["parent_is_run"] and not facts["torch_before_target"]
        assert facts["env"]["HF_HOME"] == str(tmp_path / "a-third-hf-home")
    finally:
        release.touch()
        held.join()


def test_a_visible_cuda_device_or_the_setting_gets_a_fresh_spawn(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # a pretend GPU: a forked child must not share CUDA state
    assert preloaded_start.start_method(dict(os.environ), ["0"]) == "spawn"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setenv(preloaded_start.START_VARIABLE, "spawn")
    facts = start(tmp_path, "asked")
    assert facts["parent_is_run"] and not facts["torch_before_target"]


def test_a_bad_start_setting_is_one_line_naming_it(monkeypatch):
    monkeypatch.setenv(preloaded_start.START_VARIABLE, "fork")
    with pytest.raises(ValueError, match=r"^INTROSPECTION_WORKER_START='fork' in the environment is not a worker "
                                         r"start method; valid: auto, spawn$"):
        preloaded_start.requested_method()


def test_only_known_libraries_can_be_preloaded():
    with pytest.raises(ValueError, match=r"^preload_libraries: torchvision not among peft, trl, vllm$"):
        preloaded_start.preload_libraries(["torchvision", "trl"])


def test_only_variables_read_late_may_differ():
    assert preloaded_start.differing({"A": "1", "B": "2"}, {"A": "1", "C": "3"}) == ["B", "C"]
    assert all(preloaded_start.read_late(n) for n in ("INTROSPECTION_FAULT", "WANDB_MODE", "PYTEST_CURRENT_TEST"))
    assert not any(preloaded_start.read_late(n) for n in ("HF_HOME", "OMP_NUM_THREADS", "PYTHONPATH", "HOME"))


def test_the_forkserver_outlives_the_jobs_stop_signals(cpu_machine, tmp_path):
    start(tmp_path, "before")
    pid = forkserver._forkserver._forkserver_pid
    for sig in (signal.SIGUSR2, signal.SIGTERM):  # Slurm's time-limit warning and scancel reach every process
        os.kill(pid, sig)
    time.sleep(1)  # for the signals to land: a forkserver they stopped would be replaced by a new pid below
    facts = start(tmp_path, "after-signals")
    assert forkserver._forkserver._forkserver_pid == pid and not facts["parent_is_run"]
