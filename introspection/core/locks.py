"""Locks that hold across the nodes of a cluster, for the artifact store (introspection.core.store).

Why not flock: sweep jobs on several nodes share one store on a network file system, and flock/fcntl locks
are only as good as that file system's lock service. Lustre mounted with `localflock` (a common setting)
grants them per node, NFS without a lock daemon grants or refuses them all, so two jobs on two nodes would
build the same artifact at once. These locks use only operations that are atomic on the server itself.

How a lock works:
- Taking it: the holder writes a small JSON record (host, machine id, pid, process start time, a unique
  token) to a temporary file beside the lock and hard-links it to the lock's name. link(2) fails when the
  name exists, atomically on a local disk, NFSv2+, Lustre, GPFS, BeeGFS and CephFS, and the lock never
  exists half-written. (Where hard links are refused, an exclusive create, O_CREAT|O_EXCL, is used:
  atomic on NFSv3+.) The lock file exists exactly while the lock is held; releasing it removes it.
- Heartbeat: while it is held, a thread of the holder touches the lock file's mtime every `heartbeat_s`
  (a sixth of the stale timeout, at most 5 s), after checking that the file is still its own.
- Stale locks: a waiter breaks a lock whose holder ran on its own machine (same host, boot and pid
  namespace) and whose process is gone (or is another process under the same pid), at once; and any lock
  whose heartbeat is older than the stale timeout (INTROSPECTION_LOCK_STALE_S, default 120 s), which is how
  a holder on another node that was killed (OOM, scancel, a node failure) is recovered. A live holder's
  heartbeat never gets that old, so its lock is never broken, however long its build takes.
- Breaking is atomic: one waiter wins an exclusive `<lock>.breaking-<token>` file for that holder's token,
  checks that the lock still carries the token, renames the lock away and checks the renamed file is the
  one it judged (else puts it back). Two waiters cannot both break one lock and both take it.
- Waiters poll with backoff (0.05 s up to 2 s) and log who holds the lock after 10 s, then every minute.

What it assumes of the file system: atomic link(2) (or O_EXCL create) and rename(2) within a folder, and
close-to-open consistency (a waiter reads the lock's record and mtime through a fresh open, which makes an
NFS client ask the server). Clocks: a heartbeat's age is read against the file system's own clock (the
mtime of a file the waiter creates), so a node whose clock is off does not break a live lock.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path

from introspection.core.env_seconds import seconds_from_environment

log = logging.getLogger(__name__)

STALE_ENV = "INTROSPECTION_LOCK_STALE_S"
DEFAULT_STALE_S = 120.0
WAIT_LOG_S = 10.0  # a waiter says whom it waits for after this long, then every minute
_HELD: set[str] = set()  # tokens of the locks this process holds now (any thread)
_HELD_GUARD = threading.Lock()


class LockTimeout(TimeoutError):
    """The lock is held by a live holder and the caller asked not to wait (longer)."""


def stale_after_s() -> float:
    """The stale timeout in seconds: INTROSPECTION_LOCK_STALE_S, or 120."""
    return seconds_from_environment(STALE_ENV, DEFAULT_STALE_S, "the age of a store lock's heartbeat after which "
                                    f"its holder counts as dead; default {DEFAULT_STALE_S:g}")


@functools.cache
def this_machine() -> str:
    """Host name, boot and pid namespace: where a recorded pid can be checked by this process."""
    parts = [socket.gethostname()]
    for read in (lambda: Path("/proc/sys/kernel/random/boot_id").read_text().strip(),
                 lambda: os.readlink("/proc/self/ns/pid")):
        try:
            parts.append(read())
        except OSError:
            pass
    return "|".join(parts)


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), "" for a zombie, None without /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return "" if Path("/proc/self/stat").exists() else None
    except (OSError, IndexError):
        return None
    return "" if fields[0] in ("Z", "X") else fields[19]


def _pid_alive(pid: int, started: str) -> bool:
    now = _process_start(pid)
    if now is not None:
        return now != "" and (not started or now == started)  # same pid, other start: the pid was reused
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _read(path: Path) -> tuple[dict, str, float] | None:
    """(record, token, mtime) of a lock file, read through a fresh open; None when there is none.

    A record that is empty or not JSON (being written by an exclusive create, or left by a version that
    used flock) gets a token made of its mtime, the same for every reader."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        st = os.fstat(fd)
        raw = os.read(fd, 4096)
    finally:
        os.close(fd)
    try:
        record = json.loads(raw)
        token = str(record["token"])
    except (ValueError, KeyError, TypeError):
        record, token = {}, f"unwritten-{st.st_mtime_ns}"
    return record, token, st.st_mtime


def _fs_now(folder: Path) -> float:
    """The file system's clock: the mtime of a file created now (on NFS the server sets it)."""
    probe = folder / f".clock-{uuid.uuid4().hex}"
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except OSError:
        return time.time()
    try:
        return os.fstat(fd).st_mtime
    finally:
        os.close(fd)
        probe.unlink(missing_ok=True)


def _create(path: Path, text: str) -> bool:
    """Create path holding text, atomically; False when it exists."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.new")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:  # a full disk fails the write, which names no file: name the lock's
        tmp.unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror, str(path)) from e
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        # NFS: a retried link whose first reply was lost answers EEXIST although it was made.
        return os.stat(tmp).st_nlink == 2
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK):
            raise
    finally:
        tmp.unlink(missing_ok=True)
    try:  # no hard links on this file system: an exclusive create, then the record
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    except OSError as e:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror, str(path)) from e
    os.close(fd)
    return True


def _remove_if(path: Path, token: str) -> bool:
    """Remove the lock file if it carries token. It is renamed away first (one rename wins), then checked:
    a file that is not the one judged (replaced in between) is put back."""
    moved = path.with_name(f".{path.name}.{uuid.uuid4().hex}.gone")
    try:
        os.rename(path, moved)
    except FileNotFoundError:
        return False
    found = _read(moved)
    if found is None or found[1] == token:
        moved.unlink(missing_ok=True)
        return True
    try:
        os.link(moved, path)
    except OSError as e:  # a third process took the free name in between: both think they hold it
        log.error("lock %s of %s was displaced while a stale lock was removed (%s); two processes may build it",
                  path.name, _who(found[0]), e.strerror)
    moved.unlink(missing_ok=True)
    return False


def _who(record: dict) -> str:
    return f"{record.get('host', 'an unknown host')} pid {record.get('pid', '?')}"


class StoreLock:
    """One lock file; `with StoreLock(path, label):` holds it (see the module docstring)."""

    def __init__(self, path: str | Path, label: str | None = None, stale_s: float | None = None):
        self.path = Path(path)
        self.label = label or self.path.name
        self.stale_s = stale_after_s() if stale_s is None else stale_s
        self.heartbeat_s = max(0.05, min(5.0, self.stale_s / 6))
        self.token = ""
        self.lost = False  # set when the heartbeat found the lock broken or gone while held
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    # --- judging a holder -------------------------------------------------------------------
    def dead_reason(self, record: dict, token: str, mtime: float) -> str | None:
        """Why the holder of this lock counts as dead, or None while it is alive."""
        if record.get("machine") == this_machine():
            if record.get("pid") == os.getpid():
                with _HELD_GUARD:
                    alive = token in _HELD
                if alive:
                    return None  # held by another thread of this process
                return "its holder is this process, which no longer holds it"
            if not _pid_alive(int(record.get("pid", -1)), str(record.get("started", ""))):
                return f"its holder ({_who(record)}) is dead"
        limit = self.stale_s if record else self.heartbeat_s  # an unwritten record is written at once
        if time.time() - mtime > limit:
            age = _fs_now(self.path.parent) - mtime
            if age > limit:
                return f"its heartbeat stopped {age:.0f} s ago (stale after {limit:g} s)"
        return None

    def is_held(self) -> bool:
        """True when a live holder (this process included) holds the lock now."""
        found = _read(self.path)
        return found is not None and self.dead_reason(*found) is None

    # --- taking and releasing ---------------------------------------------------------------
    def acquire(self, timeout: float = -1) -> None:
        """Take the lock, waiting for a live holder; timeout >= 0 raises LockTimeout after that many seconds."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex
        record = json.dumps({"token": token, "host": socket.gethostname(), "machine": this_machine(),
                             "pid": os.getpid(), "started": _process_start(os.getpid()) or "",
                             "since": time.strftime("%Y-%m-%dT%H:%M:%S")})
        with _HELD_GUARD:  # before the lock exists: another thread of this process must see it as held
            _HELD.add(token)
        try:
            self._wait_and_take(token, record, timeout)
        except BaseException:
            with _HELD_GUARD:
                _HELD.discard(token)
            raise

    def _wait_and_take(self, token: str, record: str, timeout: float) -> None:
        start = time.monotonic()
        delay, next_log = 0.05, start + WAIT_LOG_S
        while True:
            if _create(self.path, record):
                self._hold(token)
                return
            found = _read(self.path)
            if found is not None:
                reason = self.dead_reason(*found)
                if reason is not None and self._break(found, reason):
                    continue
            waited = time.monotonic() - start
            holder = _who(found[0]) if found else "a holder that just released it"
            if timeout >= 0 and waited >= timeout:
                raise LockTimeout(f"{self.label} is locked by {holder} ({self.path})")
            if time.monotonic() >= next_log:
                age = time.time() - found[2] if found else 0.0
                log.info("waiting for %s: held by %s, heartbeat %.0f s ago (waited %.0f s)",
                         self.label, holder, age, waited)
                next_log += 60.0
            pause = delay if timeout < 0 else max(0.0, min(delay, timeout - waited))
            time.sleep(pause)
            delay = min(delay * 1.5, 2.0)

    def _break(self, found: tuple[dict, str, float], reason: str) -> bool:
        """Remove a dead holder's lock; True when it is gone (by this waiter or another)."""
        record, token, _ = found
        guard = self.path.with_name(f"{self.path.name}.breaking-{token}")
        if not _create(guard, json.dumps({"host": socket.gethostname(), "pid": os.getpid()})):
            guarded = _read(guard)  # another waiter breaks it; a guard its killed breaker left goes when stale
            if guarded is not None and time.time() - guarded[2] > self.stale_s:
                guard.unlink(missing_ok=True)
            return False
        try:
            now = _read(self.path)
            if now is None or now[1] != token:
                return True  # released, or broken and taken already
            log.warning("breaking the lock of %s (%s): %s", self.label, self.path, reason)
            return _remove_if(self.path, token)
        finally:
            guard.unlink(missing_ok=True)

    def _hold(self, token: str) -> None:
        self.token, self.lost = token, False
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, name=f"lock-heartbeat {self.label}", daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            found = _read(self.path)
            if found is None or found[1] != self.token:
                self.lost = True
                log.error("the lock of %s was broken while this process held it (its heartbeat was late); "
                          "another process may be building it too", self.label)
                return
            try:
                os.utime(self.path)
            except OSError as e:
                log.warning("could not refresh the lock of %s: %s", self.label, e)

    def release(self) -> None:
        if not self.token:
            return
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        with _HELD_GUARD:
            _HELD.discard(self.token)
        if not _remove_if(self.path, self.token) and not self.lost:
            log.warning("the lock of %s was no longer this process's when it was released", self.label)
        self.token = ""

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
