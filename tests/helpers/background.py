"""Expensive session fixtures computed in processes of their own, started when collection ends (tests/conftest.py):
the session's tiny pipeline run (`tiny_run`), the conversion of the embedded models (`embedded_models`),
`tasks=smoke` on the embedded models (`embedded_smoke_run`), and two sweeps of the tiny run's config on copies of
its store (`seed_sweep`, `lora_rank_sweep`), each started when the one before it has ended.

Each starts as soon as collection shows that a test needs it, and runs beside the tests that do not: the tiny run's
model workers use one thread each, so on a 2-core machine it takes the core that single-threaded tests leave idle
(docs/testing.md). The fixture waits for it when its first user comes.

`python -m tests.helpers.background RECORD ARGS...` runs `python -m introspection.main ARGS` and appends one JSON
line per model worker to RECORD: what it did, its CUDA_VISIBLE_DEVICES, start and end (time.monotonic, one
clock for every process of the machine).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import ROOT, tiny_overrides

TIMEOUT_S = 1800  # the tiny run: ~150 s on an idle 2-core machine; generous for a loaded one
SMOKE_TIMEOUT_S = 3600  # the smoke run: ~5 min alone on 2 cores (2026-12-06), longer beside the rest of the suite


@dataclass(frozen=True)
class TinyRun:
    """The whole experiment on tiny_pair at tests/helpers TINY_SIZES, from an empty store."""

    store: Path  # never written after the run: copy it first (the warm_store fixture)
    run_dir: Path
    results: dict  # run_dir/results.json
    stdout: str  # what the entry point printed (its logging and its workers' output included)
    workers: list[dict]  # each model worker: what it did, its CUDA_VISIBLE_DEVICES, start and end (monotonic s)


class Background:
    """A command started now, in a process group of its own, its output to a file; `wait` waits for it."""

    def __init__(self, what: str, command: list[str], log: Path, env: dict[str, str], timeout: float = TIMEOUT_S) -> None:
        self.what, self.log_path, self.timeout, self.env = what, log, timeout, env
        self._log = open(log, "w")  # noqa: SIM115  (closed in stop)
        self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.output: str | None = None

    def wait(self) -> str:
        """Its output, once it ended; a failure names it and shows the output's end."""
        if self.output is None:
            try:
                code = self.proc.wait(timeout=self.timeout)
            finally:
                self.stop()
            output = self.log_path.read_text()
            assert code == 0, f"{self.what} failed (exit {code}):\n{output[-4000:]}"
            self.output = output
        return self.output

    def wait_ended(self) -> int:
        """Its exit code, once it ended (for a background started after it)."""
        return self.proc.wait()

    def stop(self) -> None:
        """Kill it and everything it started if it is still going (the session ended or was interrupted)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self._log.close()


def session_environment() -> dict[str, str]:
    """The environment of a background process: the session's (its cache folders), with this checkout importable."""
    env = {k: v for k, v in os.environ.items() if k not in ("INTROSPECTION_FAULT", "PYTEST_CURRENT_TEST")}
    return env | {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))}


class BackgroundTinyRun(Background):
    """The run's process, started now; `result()` waits for it."""

    def __init__(self, tiny_pair: tuple[Path, Path], base: Path) -> None:
        self.base, self.tiny_pair = base, tiny_pair
        base.mkdir(parents=True, exist_ok=True)
        # One thread per worker: the same bytes as a run of the same config elsewhere on one thread
        # (tests/test_concurrent_sides.py), and the other core stays free for the tests running meanwhile.
        # No devices: the two sides in turn.
        env = {k: v for k, v in session_environment().items() if k != "CUDA_VISIBLE_DEVICES"} | {"OMP_NUM_THREADS": "1"}
        args = [f"hydra.run.dir={base / 'run'}", *tiny_overrides(tiny_pair, base / "store")]
        super().__init__("the session's tiny run", [sys.executable, "-m", "tests.helpers.background",
                                                    str(base / "workers.jsonl"), *args], base / "output.txt", env)
        self._result: TinyRun | None = None

    def result(self) -> TinyRun:
        if self._result is None:
            output = self.wait()
            workers = [json.loads(line) for line in (self.base / "workers.jsonl").read_text().splitlines()]
            results = json.loads((self.base / "run" / "results.json").read_text())
            self._result = TinyRun(self.base / "store", self.base / "run", results, output, workers)
        return self._result


# Converts both embedded models into the session's cache (introspection/weights/resolve.py resolve_model, under its lock).
EMBEDDED_CONVERSION = """
from introspection.core.config import ModelEntry, default_cache_dir
from introspection.weights.embedded import EMBEDDED
from introspection.weights.resolve import resolve_model

for key in EMBEDDED:
    resolve_model(ModelEntry(name=key, source="embedded", path=key), default_cache_dir())
    print("converted", key, flush=True)
"""


def background_embedded_conversion(log: Path) -> Background:
    return Background("converting the embedded models", [sys.executable, "-c", EMBEDDED_CONVERSION], log,
                      session_environment())


# The smoke run's settings: 18 optimizer steps is what the Gemma base model needs to end its turn: 3 epochs of 24
# rows (8 per property and 8 object-level anchors) in batches of 4, half the tokens of 48 rows in batches of 8 with
# the same steps (every finetuned cell 100% compliant either way, 2026-12-06). The demo's per-model rates are tuned
# for 24 steps over 192 distinct rows; on smoke's few rows repeated 3 times Gemma at 2e-3 answers 5 of 24 with a word.
SMOKE_OVERRIDES = ["tasks=smoke", "tasks.n_finetune_per_property=8", "finetune.batch_size=4", "finetune.epochs=3",
                   "finetune.learning_rate_by_model.smollm2_135m=1e-3",
                   "finetune.learning_rate_by_model.gemma3_270m=1e-3", "logger=wandb"]


@dataclass(frozen=True)
class SmokeRun:
    """`python -m introspection.main tasks=smoke` on the embedded models (the default pair), from an empty store."""

    run_dir: Path
    results: dict  # run_dir/results.json
    output: str


class BackgroundSmokeRun(Background):
    """The smoke run's process, started now; `result()` waits for it. Its store is new, so every stage runs, but
    its models folder is the session cache's: the run finds the embedded models that the conversion beside it
    makes (one conversion per model, under its lock: introspection/weights/embedded.py), instead of its own."""

    def __init__(self, base: Path) -> None:
        from introspection.core.config import default_cache_dir

        # One thread per process: beside the suite's other work on 2 cores, torch's two OpenMP threads wait on each
        # other whenever one is descheduled; each finetune then took 230-290 s instead of 22-31 s alone (2026-12-06).
        env = session_environment() | {"WANDB_MODE": "offline", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        models = default_cache_dir() / "models"  # the session's cache (tests/helpers/session.py), as the conversion's
        models.mkdir(parents=True, exist_ok=True)
        (base / "store").mkdir(parents=True)
        (base / "store" / "models").symlink_to(models, target_is_directory=True)
        self.run_dir = base / "run"
        command = [sys.executable, "-m", "introspection.main", f"hydra.run.dir={self.run_dir}", *SMOKE_OVERRIDES,
                   f"store_dir={base / 'store'}"]
        super().__init__("the smoke run on the embedded models", command, base / "output.txt", env, SMOKE_TIMEOUT_S)

    def result(self) -> SmokeRun:
        output = self.wait()
        return SmokeRun(self.run_dir, json.loads((self.run_dir / "results.json").read_text()), output)


@dataclass(frozen=True)
class SweepRun:
    """`python -m introspection.main -m hydra/launcher=local` of tiny_run's config with sweep overrides."""

    sweep_dir: Path  # hydra.sweep.dir: a folder per job and the sweep table
    store: Path  # a copy of tiny_run's store, made before the sweep and written by it; read it, never write
    output: str


# Sweeps of the tiny run's config, each job 0 that config (it reuses every artifact), each job 1 computing its own:
# tests/test_seed.py and tests/test_pipeline.py check what they leave.
SEED_SWEEP = ["experiment.untrained_baseline=false", "seed=0,1"]
LORA_RANK_SWEEP = ["finetune.lora.r=4,8"]


class BackgroundSweep:
    """A sweep on a copy of the tiny run's store, in a process of its own, started from a thread as soon as `after`
    (the tiny run, or the sweep before this one) has ended, so that it computes beside the tests meanwhile instead of
    in the test that reads it. One sweep at a time: on 2 cores the suite's own tests keep one core busy.

    Its jobs hold no device (hydra.launcher.gpus_per_node=0): their model workers fork from the job's preloaded
    parent, as a CPU run's do. The spawned workers of a job holding GPUs are tests/test_launchers.py's and
    tests/test_concurrent_sides.py's."""

    def __init__(self, what: str, tiny: BackgroundTinyRun, after: Background | BackgroundSweep, base: Path,
                 sweep_args: list[str]) -> None:
        self.what, self.tiny, self.after, self.base = what, tiny, after, base
        self.command = [sys.executable, "-m", "introspection.main", "-m", "hydra/launcher=local",
                        "hydra.launcher.gpus_per_node=0", f"hydra.sweep.dir={base / 'sweep'}",
                        *tiny_overrides(tiny.tiny_pair, base / "store"), *sweep_args]
        self._lock = threading.Lock()
        self._stopped = False
        self._process: Background | None = None
        self._thread = threading.Thread(target=self._start_after, name=what, daemon=True)
        self._thread.start()

    def _start_after(self) -> None:
        self.after.wait_ended()
        if self.tiny.wait_ended() != 0:
            return  # result() says so
        with self._lock:
            if self._stopped:
                return
            shutil.copytree(self.tiny.base / "store", self.base / "store", symlinks=True)
            # tiny_run's environment (no devices, one thread per worker), as its config is tiny_run's
            self._process = Background(self.what, self.command, self.base / "output.txt", self.tiny.env)

    def wait_ended(self) -> int | None:
        self._thread.join()
        return None if self._process is None else self._process.wait_ended()

    def result(self) -> SweepRun:
        self._thread.join(timeout=TIMEOUT_S)
        assert self._process is not None, f"{self.what} did not start: the session's tiny run failed or hung"
        return SweepRun(self.base / "sweep", self.base / "store", self._process.wait())

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._process is not None:
                self._process.stop()


def main(record: str, args: list[str]) -> None:
    import runpy

    from introspection.core import devices
    from introspection.stages import worker_runs

    spawn_and_wait = worker_runs.spawn_and_wait

    def recorded(store_root, target, payload, what, *rest, **kwargs):
        row = {"what": what, "devices": devices.environment().get("CUDA_VISIBLE_DEVICES"), "start": time.monotonic()}
        try:
            spawn_and_wait(store_root, target, payload, what, *rest, **kwargs)
        finally:
            with open(record, "a") as f:
                f.write(json.dumps(row | {"end": time.monotonic()}) + "\n")

    worker_runs.spawn_and_wait = recorded
    Path(record).touch()
    sys.argv = ["introspection/main.py", *args]
    runpy.run_module("introspection.main", run_name="__main__", alter_sys=True)  # as `python -m` runs it


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
