"""Start a model process and wait for it: a fresh spawned process with exactly its CUDA devices (on a CPU
machine, a fork of a parent that imported the model libraries once: introspection/core/preloaded_start.py), in a
process group of its own, bounded by the time limits of introspection/core/child_process.py; its failure comes back here as
one line when it reported one (introspection/core/errors.py: `reported` in the worker, `worker_failure` here)."""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path

from introspection.core.errors import worker_failure


def spawn_and_wait(store_root: str | Path, target, payload: dict, what: str, gpus: int = 1) -> None:
    """Run `target(payload)` in a fresh spawned process (or a preloaded fork, module docstring) and wait; its failure is raised here (one line
    when the worker reported one under `store_root`).

    The process sees exactly `gpus` CUDA devices (the first of its side's, introspection/core/devices.py; 1 for
    a model worker on one device) and runs in a process group of its own, stopped with everything it
    started when it outlives its time limits (introspection/core/child_process.py; payload["result_path"],
    when given, is the file that says its work is done)."""
    import multiprocessing as mp

    from introspection.core.child_process import limits, run_groups_environment, run_in_own_group, wait_bounded
    from introspection.core.devices import child_environment, visible_devices
    from introspection.core.preloaded_start import ChildSetup, run_preloaded, start_method, worker_ended

    bounds = limits()  # before the start: a bad setting leaves nothing running
    variables = {**child_environment(gpus, what), **run_groups_environment()}
    with _SPAWN_LOCK:  # one start at a time: two threads may start workers with different device sets
        env = {**os.environ, **variables}
        method = start_method(env, visible_devices())
        if method == "forkserver":
            proc = mp.get_context("forkserver").Process(target=run_preloaded, args=(target, payload, ChildSetup(env)),
                                                        name=what)
        else:
            proc = mp.get_context("spawn").Process(target=run_in_own_group, args=(target, payload), name=what)
        try:
            with _environment_for_child(variables if method == "spawn" else {}):
                proc.start()
        except BaseException:
            if method == "forkserver":
                worker_ended()
            raise

    def wait(seconds: float) -> int | None:
        proc.join(seconds)
        return proc.exitcode

    result = payload.get("result_path")
    try:
        code = wait_bounded(wait, proc.pid, what, Path(result) if result else None, bounds)
    finally:
        if method == "forkserver":
            worker_ended()
    if code != 0:
        raise worker_failure(store_root, proc.pid, what, code)


_SPAWN_LOCK = threading.Lock()  # held for each start; nothing inside takes it again


@contextmanager
def _environment_for_child(variables: dict[str, str]):
    """A spawned process copies this process's environment when it starts: set `variables` for that moment
    only (the caller holds _SPAWN_LOCK)."""
    if not variables:
        yield
        return
    saved = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
