"""Model-bound stages run in a fresh spawned process (spawn.spawn_and_wait), after waiting for any other job
that builds the same artifacts; the worker's counts join the store's, its stage records the run's profile."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

from introspection.core.profile import Profile
from introspection.core.spawn import spawn_and_wait
from introspection.core.store import Store

log = logging.getLogger(__name__)


def wait_for_live_builders(store: Store, kind: str, keys: list[str]) -> bool:
    """Wait until no other process builds any of these artifacts (each build holds its key's lock), so a
    run that needs what another live job is computing reuses it instead of starting a worker for it.
    True when it waited for at least one."""
    from introspection.core.locks import LockTimeout

    waited = False
    for key in keys:
        try:
            with store.locked(kind, key, timeout=0):
                continue
        except LockTimeout:
            log.info("waiting for %s/%s: another job is computing it", kind, key[:12])
            waited = True
        with store.locked(kind, key):
            pass
    return waited


def run_in_subprocess(store: Store, target, payload: dict, what: str, gpus: int = 1, *,
                      profile: Profile | None = None) -> None:
    """Run one model-bound stage in a fresh spawned process so its memory is returned when it ends; it sees
    `gpus` CUDA devices of its side (spawn.spawn_and_wait).

    A worker that builds store artifacts writes what it computed and what it found sealed by another job
    into payload["result_path"] (worker.write_result); those counts are added to this store's, and the
    worker's stage records (time, requests, tokens, memory) to the run's profile (introspection/core/profile.py)."""
    store.count_worker_run()
    with tempfile.TemporaryDirectory(prefix="introspection-worker-") as scratch:
        result_path = Path(scratch) / "result.json"
        started = time.time()
        spawn_and_wait(store.root, target, {**payload, "result_path": str(result_path)}, what, gpus=gpus)
        ended = time.time()
        if result_path.is_file():
            result = json.loads(result_path.read_text(encoding="utf-8"))
            store.add_counts(result)
            if profile is not None:
                profile.add_worker_records(result.get("stages", []), started, ended)

