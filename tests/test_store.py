"""The content-addressed store: atomic artifacts, checksums, and one computation under concurrency."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import pytest

from introspection.core.store import Store, digest, read_jsonl, write_jsonl_atomic


def test_digest_is_stable_and_order_independent():
    assert digest({"a": 1, "b": [1, 2]}) == digest({"b": [1, 2], "a": 1})
    assert digest({"a": 1}) != digest({"a": 2})


def test_artifact_is_built_once_then_reused(tmp_path):
    store = Store(tmp_path)
    calls = []

    def build(folder: Path):
        calls.append(1)
        (folder / "x.txt").write_text("hello")
        return {"note": "built"}

    first = store.get_or_build("thing", "k1", build)
    second = store.get_or_build("thing", "k1", build)
    assert first == second and (first / "x.txt").read_text() == "hello"
    assert len(calls) == 1
    assert store.info("thing", "k1")["note"] == "built"
    assert store.computed == ["thing/k1"] and store.reused == ["thing/k1"]


def test_failed_build_leaves_nothing_behind(tmp_path):
    store = Store(tmp_path)

    def build(folder: Path):
        (folder / "half.txt").write_text("partial")
        raise RuntimeError("killed mid-way")

    with pytest.raises(RuntimeError):
        store.get_or_build("thing", "k", build)
    assert store.get("thing", "k") is None
    assert not store.path("thing", "k").exists()
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.parametrize("damage", ["truncate", "edit", "delete"])
def test_corrupt_artifact_is_detected_and_rebuilt(tmp_path, damage):
    store = Store(tmp_path)
    folder = store.get_or_build("thing", "k", lambda f: (f / "data.txt").write_text("0123456789") and None)
    target = folder / "data.txt"
    if damage == "truncate":
        target.write_text("01234")
    elif damage == "edit":
        target.write_text("0123456780")
    else:
        target.unlink()
    assert store.get("thing", "k") is None  # never read
    rebuilt = store.get_or_build("thing", "k", lambda f: (f / "data.txt").write_text("0123456789") and None)
    assert (rebuilt / "data.txt").read_text() == "0123456789"


def test_jsonl_roundtrip_and_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    write_jsonl_atomic(path, [{"a": 1}, {"b": "é"}])
    assert read_jsonl(path) == [{"a": 1}, {"b": "é"}]
    path.write_text('{"a": 1}\n{not json}\n')
    with pytest.raises(ValueError, match=r"rows\.jsonl line 2"):
        read_jsonl(path)


def _slow_build(root: str, counter: str) -> None:
    store = Store(root)

    def build(folder: Path):
        with open(counter, "a") as f:
            f.write("computed\n")
        time.sleep(1.0)  # long enough that the other process arrives while this one holds the lock
        (folder / "value.txt").write_text("42")

    folder = store.get_or_build("shared", "same-key", build)
    assert (folder / "value.txt").read_text() == "42"


def test_two_processes_asking_for_the_same_artifact_compute_it_once(tmp_path):
    counter = tmp_path / "counter.txt"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_slow_build, args=(str(tmp_path / "store"), str(counter))) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert counter.read_text().count("computed") == 1
    assert (Store(tmp_path / "store").get("shared", "same-key") / "value.txt").read_text() == "42"


def test_ordinary_reads_rehash_only_changed_files_and_verify_rehashes_all(tmp_path, monkeypatch, capsys):
    import os

    import introspection.core.store as store_module

    store = Store(tmp_path)
    folder = store.get_or_build("thing", "k", lambda f: (f / "data.bin").write_bytes(b"0123456789") and None)
    hashed = []
    real = store_module.file_sha256
    monkeypatch.setattr(store_module, "file_sha256", lambda p: hashed.append(p) or real(p))
    assert store.get("thing", "k") == folder and hashed == []  # size and mtime unchanged: not re-read

    target = folder / "data.bin"
    st = target.stat()
    target.write_bytes(b"0123456780")  # same size, new mtime: re-hashed, found damaged
    assert store.get("thing", "k") is None and hashed == [target]

    # A damage that kept size and mtime (bit rot) passes the quick check; verify finds it and removes it.
    folder = store.get_or_build("thing", "k", lambda f: (f / "data.bin").write_bytes(b"0123456789") and None)
    st = target.stat()
    target.write_bytes(b"0123456780")
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert store.get("thing", "k") == folder
    assert store_module.main(["verify", str(tmp_path)]) == 1
    assert "damaged, removed" in capsys.readouterr().out and store.get("thing", "k") is None
    assert store_module.main(["verify", str(tmp_path)]) == 0
    assert store_module.main(["verify", str(tmp_path / "absent")]) == 2


def test_a_killed_builds_folder_is_swept_unless_its_build_is_alive(tmp_path):
    import subprocess
    import sys

    from introspection.core.locks import StoreLock

    store = Store(tmp_path)
    locks = {key: tmp_path / "locks" / f"answers-{key}.lock" for key in ("a" * 64, "b" * 64)}
    for key in locks:  # as left by two builds: a folder in tmp/ each
        (tmp_path / "tmp" / f"answers-{key[:16]}-123-abcdef").mkdir(parents=True)
    # Key a's builder was killed holding its lock (here: it exits without releasing it): the file stays.
    code = f"from introspection.core.locks import StoreLock; import os; StoreLock({str(locks['a' * 64])!r}).acquire(); os._exit(0)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
    assert locks["a" * 64].exists()
    with StoreLock(locks["b" * 64]):  # key b is being built right now (by this process, as another one would)
        Store(tmp_path)
        assert [p.name for p in (tmp_path / "tmp").iterdir()] == [f"answers-{'b' * 16}-123-abcdef"]
    store.get_or_build("other", "c" * 64, lambda f: (f / "x").write_text("x") and None)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_the_store_keeps_its_counts_and_adds_a_workers(tmp_path):
    """A worker process opens the same store, builds one artifact and finds another; its counts come back
    to the parent's store, which counted the worker when it started it."""
    import json

    parent = Store(tmp_path)
    parent.get_or_build("thing", "a" * 64, lambda f: (f / "a.txt").write_text("a") and None)
    parent.count_worker_run()
    worker = Store(tmp_path)  # as a spawned worker opens it
    worker.get_or_build("thing", "a" * 64, lambda f: (f / "a.txt").write_text("other") and None)  # reused
    worker.get_or_build("thing", "b" * 64, lambda f: (f / "b.txt").write_text("b") and None)  # computed
    parent.add_counts(json.loads(json.dumps(worker.counts())))  # through the worker's result file
    parent.count_reused("thing", "b" * 64)  # found sealed when the parent reads it back
    assert parent.counts() == {"computed": ["thing/aaaaaaaaaaaa", "thing/bbbbbbbbbbbb"],
                               "reused": ["thing/aaaaaaaaaaaa", "thing/bbbbbbbbbbbb"], "worker_runs": 1}
    assert worker.counts()["worker_runs"] == 0 and (parent.get("thing", "a" * 64) / "a.txt").read_text() == "a"
