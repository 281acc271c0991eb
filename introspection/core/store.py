"""Content-addressed artifact store.

An artifact is a folder `artifacts/<kind>/<key>/` whose key is the hash of everything it was computed
from. It becomes visible only complete: it is built in a temporary folder, a manifest with the sha256
of every file is written last, and the folder is renamed into place. A per-key lock makes two processes
(two sweep jobs, say, on one node or on two) that need the same artifact compute it once; the other waits
and reads it. A folder whose files no longer match their manifest (truncated, edited) is removed and
rebuilt, never read. The manifest records each file's sha256, size and mtime: the hash is computed when the
artifact is sealed, and an ordinary read re-hashes only files whose size or mtime changed (any write
changes the mtime), so a large artifact is not re-read on every use.

Work inside a stage can also be resumed: `partial_dir(kind, key)` is a scratch folder that survives a
crash (inference keeps one file per finished batch there) and is deleted once the artifact is complete.

Caches that must keep a fixed path outside `artifacts/` (merged LoRA weights under `merged/`, converted
embedded models under `models/`) are sealed folders: `sealed_folder` builds them the same way (temporary
sibling, manifest, rename, under a lock) with the manifest in `.manifest.json`, and checks them before every
use: size and mtime of every file, and the full sha256 of any file whose size or mtime changed. A folder
that fails is rebuilt, never used. `python -m introspection.core.store verify [STORE]` re-hashes everything.

The locks are not flock, which Lustre (mounted with `localflock`) and some NFS setups grant per node only:
a lock is a file created atomically (link(2)) that names its holder (host, pid, a token) and is kept fresh
by the holder's heartbeat; a waiter breaks it when its holder is dead on the waiter's own machine, or when
its heartbeat is older than INTROSPECTION_LOCK_STALE_S (default 120 s), as when a job on another node was
killed. introspection.core.locks says how it works and what it assumes of the file system.

Temporary folders never outlive their builder for long: a failed build removes its own, and a killed
builder's are removed by the next process that takes the same lock.

The store counts what this process computed and reused (`computed`, `reused`, `worker_runs`: results.json's
"store" section). Only the store changes them: `get_or_build` counts its own builds and reuses, a caller
that finds an artifact another way says so with `count_reused`, a process started for model work with
`count_worker_run`, and a worker's counts come back through `counts()` / `add_counts`.

Everything on disk under a store root (store_dir, default $INTROSPECTION_CACHE or ~/.cache/introspection):
- `artifacts/<kind>/<key>/` with `_manifest.json`: every result a run computes (items, answers, SFT rows,
  adapters and full finetunes, ...). Keys hash their inputs (introspection.stages); a hub model enters
  them by its resolved commit sha, a local or embedded one by the sha256 of its files.
- `partial/<kind>/<key>/`: resumable work of an unfinished artifact (finished inference batches); deleted
  when the artifact is sealed.
- `checkpoints/<adapter key>/`: a finetune's resumable Trainer checkpoints (introspection.finetune.checkpoints);
  deleted when its adapter is sealed.
- `tmp/`, `locks/`: builds in progress and the per-key locks (a lock file exists while its key is held);
  `tmp/worker-<pid>.error` is the one-line error a spawned worker leaves for its parent (introspection.core.errors).
- `models/<key>/` (sealed folder): embedded GGUF models converted to safetensors. Not an artifact because
  the folder's content is the model's identity: its fingerprint hashes every visible file, so a visible
  `_manifest.json` inside it would change the fingerprint, and with it every key of the demo's models;
  the dot-named sealed manifest is not hashed. Built once per embedded key (introspection.weights.embedded).
- `merged/<key>/` (sealed folder): an adapter folded into its base for serving (vLLM on CPU,
  inference.lora_serving=merge) or as the base of a continued finetune (behaviour shift). A derived,
  disposable copy of weights that are keyed already (base fingerprint + adapter content); its
  merge_info.json names what it was built from and is compared before every use
  (introspection.inference.lora). Safe to delete at any time.
- `fingerprints/<hash of folder path>.json`: the sha256 of a local or embedded model folder, reused while
  every file keeps its size and mtime; each carries a checksum of its own content and is recomputed when it
  fails it (introspection.weights.fingerprints.folder_fingerprint). Safe to delete at any time.
- `torchinductor/`: torch's own compile cache for vLLM on CPU (TORCHINDUCTOR_CACHE_DIR, unless set), managed
  by torch; it holds compiled kernels, no results. Safe to delete at any time.
- `<name>.lock` beside each sealed folder: its build lock.
Outside the store: the Hugging Face cache (HF_HOME / HF_HUB_CACHE) holds hub weights and datasets, managed
by huggingface_hub; the model is keyed by the commit sha it resolves to there or on the hub.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from introspection.core.locks import StoreLock, stale_after_s

log = logging.getLogger(__name__)

MANIFEST = "_manifest.json"
SEALED_MANIFEST = ".manifest.json"  # dot-named: not part of a model folder's fingerprint (model_fingerprints.file_stats)


def digest(obj: Any) -> str:
    """A stable sha256 of a JSON-serialisable object (dict keys sorted)."""
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def write_text_atomic(path: Path, text: str) -> None:
    """Write via a temporary sibling and rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if e.filename is None:  # a failed write names no file: name the one being written
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise
    finally:
        tmp.unlink(missing_ok=True)


def write_jsonl_atomic(path: Path, rows: list[dict]) -> None:
    write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"malformed JSON in {path} line {n}: {e.msg}") from None
    return rows


def manifest_files(folder: Path, skip: str) -> dict[str, dict]:
    """relative path -> size, sha256 and mtime of every file under folder except the manifest `skip`."""
    files = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.relative_to(folder).as_posix() != skip:
            st = p.stat()
            files[p.relative_to(folder).as_posix()] = {"size": st.st_size, "sha256": file_sha256(p),
                                                       "mtime_ns": st.st_mtime_ns}
    return files


def files_match(folder: Path, files: dict[str, dict], quick: bool = False) -> bool:
    """True when every listed file exists with its size and sha256. `quick` trusts an unchanged size and
    mtime; a file whose mtime changed (any write does that) is re-hashed."""
    for rel, meta in files.items():
        p = folder / rel
        if not p.is_file():
            return False
        st = p.stat()
        if st.st_size != meta["size"]:
            return False
        if quick and st.st_mtime_ns == meta.get("mtime_ns"):
            continue
        if file_sha256(p) != meta["sha256"]:
            return False
    return True


def _visible(rel: str) -> bool:
    return not any(part.startswith(".") for part in rel.split("/"))


def sealed_folder_ok(folder: Path, quick: bool = True) -> bool:
    """True when folder has a sealed manifest and no file was added, removed or changed since it was sealed.
    A hidden file added later (a loader's cache, say) is ignored: no model loader reads one as weights."""
    try:
        files = json.loads((Path(folder) / SEALED_MANIFEST).read_text())["files"]
        present = {p.relative_to(folder).as_posix() for p in Path(folder).rglob("*") if p.is_file()}
        added = {rel for rel in present - set(files) if _visible(rel)}
        return not added and files_match(Path(folder), files, quick)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def seal(folder: Path, info: dict | None = None) -> None:
    """Write the sealed manifest (sha256, size and mtime of every file) into a finished folder."""
    write_json_atomic(Path(folder) / SEALED_MANIFEST, {"files": manifest_files(Path(folder), SEALED_MANIFEST),
                                                       "info": info or {}, "created": time.strftime("%Y-%m-%dT%H:%M:%S")})


def sweep_siblings(final: Path) -> None:
    """Remove `.<name>.tmp-*` siblings of final: temporary folders of killed builders. Call under final's lock."""
    for stale in Path(final).parent.glob(f".{Path(final).name}.tmp-*"):
        log.info("removing %s, left by a killed build", stale)
        shutil.rmtree(stale, ignore_errors=True)


def sealed_folder(final: Path, build: Callable[[Path], None], info: dict | None = None,
                  accept: Callable[[Path], bool] | None = None) -> Path:
    """A cache folder at a fixed path, built once by `build(tmp_folder)` and checked before every use.

    `accept(folder)` may add a condition (e.g. what the folder was built from); a folder that fails it or
    its manifest is removed and rebuilt. The build runs in `.<name>.tmp-<pid>-<rand>` beside final under the
    lock `<name>.lock`, is sealed and renamed into place; a failed build leaves no temporary folder.
    """
    final = Path(final)

    def usable() -> bool:
        return sealed_folder_ok(final) and (accept is None or accept(final))

    if usable():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with StoreLock(final.parent / f"{final.name}.lock", str(final)):
        if usable():  # another process finished it while we waited
            return final
        sweep_siblings(final)
        if final.exists():
            log.warning("%s is damaged, incomplete or stale (its files or inputs no longer match its manifest); "
                        "rebuilding it", final)
            shutil.rmtree(final)
        tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        try:
            tmp.mkdir()
            build(tmp)
            seal(tmp, info)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


class Store:
    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ValueError(f"cannot create the artifact store at {self.root} (config key store_dir): {e.strerror}") from None
        # Counts what this process computed versus reused; main prints it and tests assert on it.
        self.computed: list[str] = []
        self.reused: list[str] = []
        self.worker_runs = 0  # model-bound processes started (0 on a rerun of a finished experiment)
        self._counting = threading.Lock()  # the two sides of a run may count from two threads
        stale_after_s()  # a bad INTROSPECTION_LOCK_STALE_S fails here, at start, not at the first build
        try:
            self.sweep_tmp()  # also when this run then builds nothing (every artifact reused)
        except OSError as e:  # a read-only store, say: the leftovers stay, the run goes on
            log.debug("could not sweep %s/tmp: %s", self.root, e)

    # --- counters ----------------------------------------------------------------------------
    def count_reused(self, kind: str, key: str) -> None:
        """An artifact this process used without building it, found other than by get_or_build (e.g. sealed
        by another job while this one waited for its lock)."""
        with self._counting:
            self.reused.append(f"{kind}/{key[:12]}")

    def _count_computed(self, kind: str, key: str) -> None:
        with self._counting:
            self.computed.append(f"{kind}/{key[:12]}")

    def count_worker_run(self) -> None:
        """A model-bound process started (a spawned worker, or the ranks of a multi-GPU finetune)."""
        with self._counting:
            self.worker_runs += 1

    def counts(self) -> dict:
        """What this process computed and reused: for results.json, or for a worker to hand to its parent."""
        with self._counting:
            return {"computed": list(self.computed), "reused": list(self.reused), "worker_runs": self.worker_runs}

    def add_counts(self, counts: dict) -> None:
        """Add the artifacts a worker process computed and reused (its counts()) to this store's. Its
        worker_runs are not added: the parent counted the worker when it started it."""
        with self._counting:
            self.computed.extend(counts.get("computed", []))
            self.reused.extend(counts.get("reused", []))

    # --- paths -------------------------------------------------------------------------------
    def path(self, kind: str, key: str) -> Path:
        return self.root / "artifacts" / kind / key

    def partial_dir(self, kind: str, key: str) -> Path:
        d = self.root / "partial" / kind / key
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _lock(self, kind: str, key: str) -> StoreLock:
        return StoreLock(self.root / "locks" / f"{kind}-{key}.lock", f"{kind}/{key[:12]}")

    # --- reading -----------------------------------------------------------------------------
    def get(self, kind: str, key: str) -> Path | None:
        """The artifact's folder if it exists and every file matches its manifest; else None."""
        folder = self.path(kind, key)
        if not (folder / MANIFEST).is_file():
            return None
        if not self._verify(folder, quick=True):
            log.warning("artifact %s/%s failed its checksum; removing it so it is recomputed", kind, key[:12])
            shutil.rmtree(folder, ignore_errors=True)
            return None
        return folder

    @staticmethod
    def _verify(folder: Path, quick: bool = False) -> bool:
        """Every file matches its manifest. `quick` (ordinary reads) re-hashes only files whose size or mtime
        changed since sealing; `python -m introspection.core.store verify` re-hashes all of them."""
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
            return files_match(folder, manifest["files"], quick)
        except (OSError, ValueError, KeyError, TypeError):
            return False

    # --- writing -----------------------------------------------------------------------------
    def get_or_build(self, kind: str, key: str, build: Callable[[Path], dict | None], info: dict | None = None) -> Path:
        """Return the artifact, building it with `build(tmp_folder)` if it is missing.

        `build` writes its files into the folder it is given and may return extra metadata for the
        manifest. Only one process builds a given key at a time.
        """
        found = self.get(kind, key)
        if found is not None:
            self.count_reused(kind, key)
            return found
        with self._lock(kind, key) as lock:
            found = self.get(kind, key)  # another process may have finished it while we waited
            if found is not None:
                self.count_reused(kind, key)
                return found
            # Holding the lock, no live process builds this key: a folder of it in tmp/ is a killed run's.
            for stale in (self.root / "tmp").glob(f"{kind}-{key[:16]}-*"):
                shutil.rmtree(stale, ignore_errors=True)
            self.sweep_tmp()
            tmp = self.root / "tmp" / f"{kind}-{key[:16]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
            try:
                tmp.mkdir(parents=True)
                started = time.time()
                extra = build(tmp) or {}
                self._write_manifest(tmp, kind, key, {**(info or {}), **extra}, time.time() - started)
                final = self.path(kind, key)
                final.parent.mkdir(parents=True, exist_ok=True)
                if lock.lost and self.get(kind, key) is not None:  # our lock was broken (we were stopped past
                    self.count_reused(kind, key)  # the stale timeout) and its new holder sealed it: keep theirs
                    return final
                if final.exists():  # a corrupt leftover without a valid manifest
                    shutil.rmtree(final)
                os.rename(tmp, final)
            except OSError as e:
                fix = {errno.ENOSPC: "free space there", errno.EDQUOT: "free space there",
                       errno.EROFS: "make it writable", errno.EACCES: "make it writable"}.get(e.errno)
                if fix is None or not str(e.filename or self.root).startswith(str(self.root)):
                    raise  # not a write into the store (e.g. a model file the build reads): as it is
                raise OSError(e.errno, f"cannot write artifact {kind}/{key[:12]} into the store {self.root} "
                                       f"({e.strerror}); {fix} or set store_dir to another disk") from e
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(self.root / "partial" / kind / key, ignore_errors=True)
            self._count_computed(kind, key)
            return final

    def sweep_tmp(self) -> None:
        """Remove build folders in tmp/ that no live process owns (no live holder holds their key's lock):
        those of killed builders of other keys, e.g. a finetune killed for memory whose config is never rerun.
        A builder makes its folder after taking the lock and removes it before releasing it, so a folder
        listed here whose lock is then free (or held by a dead holder) is a killed build's."""
        for folder in sorted((self.root / "tmp").glob("*-*-*-*")):
            if not folder.is_dir():
                continue
            prefix = folder.name.rsplit("-", 2)[0]  # "<kind>-<key[:16]>"
            if any(StoreLock(p).is_held() for p in (self.root / "locks").glob(f"{prefix}*.lock")):
                continue  # a live build (in this process or another)
            log.info("removing %s, left by a killed build", folder)
            shutil.rmtree(folder, ignore_errors=True)

    @staticmethod
    def _write_manifest(folder: Path, kind: str, key: str, info: dict, seconds: float) -> None:
        files = manifest_files(folder, MANIFEST)
        manifest = {"kind": kind, "key": key, "files": files, "info": info, "seconds": round(seconds, 3),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
        write_json_atomic(folder / MANIFEST, manifest)

    def info(self, kind: str, key: str) -> dict:
        return json.loads((self.path(kind, key) / MANIFEST).read_text())["info"]

    @contextmanager
    def locked(self, kind: str, key: str, timeout: float = -1):
        """Hold the key's lock (what a build holds); timeout=0 raises locks.LockTimeout at once if it is held."""
        lock = self._lock(kind, key)
        lock.acquire(timeout)
        try:
            yield
        finally:
            lock.release()


def verify_store(root: Path) -> list[str]:
    """Re-hash every artifact and sealed cache folder under root; remove those that fail (so their next
    use rebuilds them, even when a damaged file kept its size and mtime) and return their paths."""
    root = Path(root)
    bad = [f for f in sorted((root / "artifacts").glob("*/*")) if f.is_dir() and not Store._verify(f)]
    bad += [m.parent for m in sorted(root.glob(f"*/*/{SEALED_MANIFEST}")) if not sealed_folder_ok(m.parent, quick=False)]
    for folder in bad:
        shutil.rmtree(folder, ignore_errors=True)
    return [str(f) for f in bad]


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m introspection.core.store",
                                     description="Check every file of a store against its manifest (full sha256).")
    parser.add_argument("command", choices=["verify"])
    parser.add_argument("store", nargs="?", default=None, help="the store folder (default: the default store_dir)")
    args = parser.parse_args(argv)
    from introspection.core.config import default_cache_dir

    root = Path(args.store).expanduser() if args.store else default_cache_dir()
    if not root.is_dir():
        print(f"error: store folder {root} does not exist", file=sys.stderr)
        return 2
    bad = verify_store(root)
    for folder in bad:
        print(f"damaged, removed (rebuilt on its next use): {folder}")
    print(f"{root}: {'all files match their manifests' if not bad else f'{len(bad)} damaged folder(s)'}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
