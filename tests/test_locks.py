"""Store locks that hold across nodes (introspection.core.locks): no flock, a heartbeat, atomic stale-lock breaking.

"Another node" is simulated in a process of its own whose machine identity (locks.this_machine) names
another host: its pid then cannot be checked by the others, only its heartbeat, as across two nodes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from introspection.core.locks import STALE_ENV, LockTimeout, StoreLock
from introspection.core.store import Store

ROOT = Path(__file__).resolve().parents[1]

# Simulates a file system whose flock holds only on one node (Lustre with localflock): every flock and
# fcntl lock call "succeeds" without locking anything.
NO_FLOCK = """
import fcntl
def _no_lock(*args, **kwargs):
    return None
_no_lock.simulated = True
fcntl.flock = fcntl.lockf = _no_lock
"""


def run_code(code: str, tmp_path: Path, stale_s: float | None = None, no_flock: bool = False) -> subprocess.Popen:
    """`python -c code` from the repository root, as a process of its own (a session, to be killed)."""
    paths = [str(ROOT)]
    if no_flock:
        shim = tmp_path / "no_flock"
        shim.mkdir(exist_ok=True)
        (shim / "sitecustomize.py").write_text(NO_FLOCK)
        paths.insert(0, str(shim))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": "1"}
    if stale_s is not None:
        env[STALE_ENV] = str(stale_s)
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def on_node(name: str) -> str:
    return f"import introspection.core.locks as L; L.this_machine = lambda: {name!r}\n"


def wait_for(path: Path, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while not path.exists():
        if proc.poll() is not None or time.time() > deadline:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"the builder never started building: {proc.communicate()[0][-3000:]}")
        time.sleep(0.02)


# --- two "nodes" whose flock locks nothing ----------------------------------------------------------

SWEEP_JOB = """
import fcntl, json, os, random, sys, time
from pathlib import Path
assert getattr(fcntl.flock, "simulated", False), "the no-flock shim is not loaded"
from introspection.core.store import Store
store_root, counter, order = sys.argv[1], sys.argv[2], sys.argv[3]
keys = [f"{i:02d}" * 32 for i in range(24)]
if order != "forward":
    random.Random(order).shuffle(keys)
store = Store(store_root)
def build(folder, key):
    fd = os.open(counter, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, (key + "\\n").encode())
    os.close(fd)
    time.sleep(0.05)  # the other job arrives while this one builds
    (folder / "value.txt").write_text(key)
for key in keys:
    folder = store.get_or_build("thing", key, lambda f, key=key: build(f, key))
    assert (folder / "value.txt").read_text() == key
print(json.dumps(store.counts()))
"""


def test_two_jobs_whose_flock_locks_nothing_build_each_key_once(tmp_path):
    store, counter = tmp_path / "store", tmp_path / "builds.txt"
    jobs = [run_code(on_node(f"node-{order}") + SWEEP_JOB.replace("sys.argv[1], sys.argv[2], sys.argv[3]",
                                                                  repr((str(store), str(counter), order))),
                     tmp_path, no_flock=True)
            for order in ("forward", "shuffled-7")]
    outputs = []
    for job in jobs:
        try:
            outputs.append(job.communicate(timeout=180)[0])
        finally:
            if job.poll() is None:
                os.killpg(job.pid, signal.SIGKILL)
        assert job.returncode == 0, outputs[-1][-3000:]
    keys = sorted(f"{i:02d}" * 32 for i in range(24))
    assert sorted(counter.read_text().split()) == keys  # every key built, none twice
    counts = [json.loads(out.strip().splitlines()[-1]) for out in outputs]
    computed = [set(c["computed"]) for c in counts]
    assert not computed[0] & computed[1] and len(computed[0] | computed[1]) == 24
    assert all(computed)  # both jobs built some: they really ran side by side
    assert sorted(p.name for p in (store / "locks").iterdir()) == []  # every lock released


# --- a dead holder, a live one ----------------------------------------------------------------------

KILLED_BUILDER = """
import time
from pathlib import Path
from introspection.core.store import Store
def build(folder):
    (folder / "half.txt").write_text("half")
    Path({ready!r}).write_text("building")
    time.sleep(600)
Store({store!r}).get_or_build("thing", "k" * 64, build)
"""


@pytest.mark.parametrize("node", ["another node", "this node"])
def test_a_lock_whose_holder_was_killed_mid_build_is_broken_and_the_key_built_once(node, tmp_path, monkeypatch,
                                                                                  caplog):
    """Across nodes only the heartbeat tells: the lock is broken once it is older than the stale timeout.
    On the holder's own node its dead pid tells at once, long before the (here long) timeout."""
    stale = 1.5 if node == "another node" else 60.0
    monkeypatch.setenv(STALE_ENV, str(stale))
    store, ready = tmp_path / "store", tmp_path / "ready"
    code = KILLED_BUILDER.format(ready=str(ready), store=str(store))
    holder = run_code((on_node("node-b") if node == "another node" else "") + code, tmp_path, stale_s=stale)
    wait_for(ready, holder)
    os.killpg(holder.pid, signal.SIGKILL)  # as an OOM kill or a failed node would
    holder.communicate()
    killed_at = time.monotonic()
    lock_file = store / "locks" / f"thing-{'k' * 64}.lock"
    assert lock_file.exists() and list((store / "tmp").iterdir())  # what the killed builder left
    last_beat = lock_file.stat().st_mtime

    builds = []  # when each build started (after the lock was broken)
    folder = Store(store).get_or_build("thing", "k" * 64,
                                       lambda f: builds.append(time.time()) or (f / "v").write_text("v") and None)
    waited = time.monotonic() - killed_at
    assert len(builds) == 1 and (folder / "v").read_text() == "v"
    if node == "another node":  # broken only once its last heartbeat was older than the stale timeout
        assert builds[0] - last_beat >= stale and waited < 30, (builds[0] - last_beat, waited)
        assert "heartbeat stopped" in caplog.text
    else:
        assert waited < 10, waited
        assert "is dead" in caplog.text
    assert not lock_file.exists() and list((store / "tmp").iterdir()) == []


LONG_BUILDER = """
import time
from pathlib import Path
from introspection.core.store import Store
def build(folder):
    Path({ready!r}).write_text("building")
    with open({counter!r}, "a") as f:
        f.write("built\\n")
    time.sleep({hold})
    (folder / "v").write_text("theirs")
Store({store!r}).get_or_build("thing", "k" * 64, build)
"""


def test_a_live_holders_lock_is_never_broken_however_long_it_holds_it(tmp_path, monkeypatch, caplog):
    stale, hold = 2.5, 6.0  # held more than twice the stale timeout: only its heartbeat keeps it
    monkeypatch.setenv(STALE_ENV, str(stale))
    store, ready, counter = tmp_path / "store", tmp_path / "ready", tmp_path / "builds.txt"
    code = LONG_BUILDER.format(ready=str(ready), counter=str(counter), hold=hold, store=str(store))
    holder = run_code(on_node("node-b") + code, tmp_path, stale_s=stale)
    try:
        wait_for(ready, holder)
        started = time.monotonic()
        waiter = Store(store)
        folder = waiter.get_or_build("thing", "k" * 64, lambda f: (f / "v").write_text("ours") and None)
        waited = time.monotonic() - started
    finally:
        output = holder.communicate(timeout=60)[0]
    assert holder.returncode == 0, output[-3000:]
    assert counter.read_text() == "built\n" and (folder / "v").read_text() == "theirs"  # built once, by the holder
    assert waiter.reused == ["thing/kkkkkkkkkkkk"] and waiter.computed == []
    assert waited > hold - 1.0 and "breaking" not in caplog.text + output


# --- in one process -----------------------------------------------------------------------------------

def test_a_held_lock_names_its_holder_and_is_gone_once_released(tmp_path):
    path = tmp_path / "locks" / "x.lock"
    with StoreLock(path, "thing/x", stale_s=0.3) as held:
        record = json.loads(path.read_text())
        assert record["pid"] == os.getpid() and record["token"] == held.token
        time.sleep(0.6)  # twice the stale timeout: a lock this process holds is never broken by it
        with pytest.raises(LockTimeout, match=f"thing/x is locked by .* pid {os.getpid()}"):
            StoreLock(path, "thing/x", stale_s=0.3).acquire(timeout=0.2)
    assert list(path.parent.iterdir()) == []


def test_many_waiters_break_a_stale_lock_once_and_hold_it_one_at_a_time(tmp_path):
    path = tmp_path / "x.lock"
    path.write_text(json.dumps({"token": "dead", "host": "node-b", "machine": "node-b", "pid": 1}))
    os.utime(path, (time.time() - 60, time.time() - 60))  # its heartbeat stopped a minute ago
    inside, most, runs = [0], [0], []
    guard = threading.Lock()

    def worker():
        with StoreLock(path, stale_s=5.0):
            with guard:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.02)
            with guard:
                inside[0] -= 1
                runs.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(runs) == 8 and most[0] == 1
    assert list(tmp_path.iterdir()) == []


def test_an_unwritten_lock_left_by_an_older_version_is_broken(tmp_path):
    path = tmp_path / "x.lock"
    path.touch()  # what a flock-based version left behind: an empty file
    os.utime(path, (time.time() - 30, time.time() - 30))
    with StoreLock(path, stale_s=60.0) as lock:
        assert json.loads(path.read_text())["token"] == lock.token


def test_a_holder_whose_lock_was_taken_over_says_so_and_leaves_the_new_one(tmp_path, caplog):
    path = tmp_path / "x.lock"
    lock = StoreLock(path, "thing/x", stale_s=0.3)
    lock.acquire()
    newer = json.dumps({"token": "newer", "host": "node-b", "machine": "node-b", "pid": 1})
    path.write_text(newer)  # broken by a waiter that found the heartbeat late, and taken
    deadline = time.time() + 10
    while not lock.lost and time.time() < deadline:
        time.sleep(0.02)
    lock.release()
    assert lock.lost and "was broken while this process held it" in caplog.text
    assert path.read_text() == newer


def test_a_bad_stale_timeout_fails_when_the_store_opens(tmp_path, monkeypatch):
    for bad in ("soon", "0", "-5", "nan"):
        monkeypatch.setenv(STALE_ENV, bad)
        with pytest.raises(ValueError, match=f"{STALE_ENV}='{bad}' .* seconds > 0"):
            Store(tmp_path)
