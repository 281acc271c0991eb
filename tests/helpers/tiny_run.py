"""The session's tiny pipeline run (tests/conftest.py `tiny_run`), in a process of its own.

It starts as soon as collection shows that a test needs it, and runs beside the tests that do not: its model
workers use one thread each, so on a 2-core machine it takes the core that single-threaded tests leave idle
(docs/testing.md). The fixture waits for it when its first user comes.

`python -m tests.helpers.tiny_run RECORD ARGS...` runs `python -m introspection.main ARGS` and appends one JSON
line per model worker to RECORD: what it did, its CUDA_VISIBLE_DEVICES, start and end (time.monotonic, one
clock for every process of the machine).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import ROOT, tiny_overrides

TIMEOUT_S = 1800  # ~150 s on an idle 2-core machine; generous for a loaded one


@dataclass(frozen=True)
class TinyRun:
    """The whole experiment on tiny_pair at tests/helpers TINY_SIZES, from an empty store."""

    store: Path  # never written after the run: copy it first (the warm_store fixture)
    run_dir: Path
    results: dict  # run_dir/results.json
    stdout: str  # what the entry point printed (its logging and its workers' output included)
    workers: list[dict]  # each model worker: what it did, its CUDA_VISIBLE_DEVICES, start and end (monotonic s)


class BackgroundTinyRun:
    """The run's process, started now; `result()` waits for it."""

    def __init__(self, tiny_pair: tuple[Path, Path], base: Path) -> None:
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "INTROSPECTION_FAULT",
                                                                "PYTEST_CURRENT_TEST")}
        # One thread per worker: the same bytes as a run of the same config elsewhere on one thread
        # (tests/test_concurrent_sides.py), and the other core stays free for the tests running meanwhile.
        # No devices: the two sides in turn.
        env |= {"OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))}
        args = [f"hydra.run.dir={base / 'run'}", *tiny_overrides(tiny_pair, base / "store")]
        self._log = open(base / "output.txt", "w")  # noqa: SIM115  (closed in result)
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.helpers.tiny_run", str(base / "workers.jsonl"), *args],
                                     cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self._result: TinyRun | None = None

    def result(self) -> TinyRun:
        if self._result is None:
            try:
                code = self.proc.wait(timeout=TIMEOUT_S)
            finally:
                self.stop()
            output = (self.base / "output.txt").read_text()
            assert code == 0, f"the session's tiny run failed (exit {code}):\n{output[-4000:]}"
            workers = [json.loads(line) for line in (self.base / "workers.jsonl").read_text().splitlines()]
            results = json.loads((self.base / "run" / "results.json").read_text())
            self._result = TinyRun(self.base / "store", self.base / "run", results, output, workers)
        return self._result

    def stop(self) -> None:
        """Kill the run and everything it started if it is still going (the session ended or was interrupted)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self._log.close()


def main(record: str, args: list[str]) -> None:
    import runpy

    from introspection import devices, stages

    spawn_and_wait = stages.spawn_and_wait

    def recorded(store_root, target, payload, what, *rest, **kwargs):
        row = {"what": what, "devices": devices.environment().get("CUDA_VISIBLE_DEVICES"), "start": time.monotonic()}
        try:
            spawn_and_wait(store_root, target, payload, what, *rest, **kwargs)
        finally:
            with open(record, "a") as f:
                f.write(json.dumps(row | {"end": time.monotonic()}) + "\n")

    stages.spawn_and_wait = recorded
    Path(record).touch()
    sys.argv = ["introspection/main.py", *args]
    runpy.run_module("introspection.main", run_name="__main__", alter_sys=True)  # as `python -m` runs it


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
