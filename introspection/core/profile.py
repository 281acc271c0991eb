"""Where a run's time and memory went: one record per stage, and the run's total.

A run makes one Profile and hands it to every stage it runs (the stages' `profile=` argument; the entry
point creates it and experiments pass it on); every stage that takes time adds a record to it: the answer
and finetune workers measure theirs in their own process and hand them back through their result file
(worker.write_result -> stages/worker_runs.run_in_subprocess), stages that run in this process (build,
lookups of reused artifacts) time themselves with `timed_stage`. A stage given no profile (a test, a
benchmark) records nothing. The two sides of a pair may run in two threads at once, so records are added
under a lock.

results.json carries `summary()` under "profile"; docs/measurements.md describes every field.
"""

from __future__ import annotations

import resource
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields

GIB = 2**30


@dataclass
class StageRecord:
    """One stage of a run. Counters measure the work done in this run: a stage whose artifacts all came
    from the store (reused) sent no requests and trained nothing, and its wall is just the lookup."""

    stage: str  # "answers tiny_a object/train", "finetune tiny_a[self]", "build"
    kind: str  # answers | finetune | build
    model: str | None  # the model's label; None for stages without a model
    started: float  # wall clock (Unix seconds)
    ended: float
    wall_s: float  # ended - started
    reused: bool = False  # everything came from the store
    engine_start_s: float | None = None  # model load and engine start in the worker (None: none started)
    process_s: float = 0.0  # worker process start-up (spawn, imports) or exit (engine shutdown) charged here
    requests: int = 0  # requests answered by the engine in this run
    prompt_tokens: int = 0  # their prompt tokens (once per request)
    generated_tokens: int = 0  # tokens generated, every sample (greedy copies of one sample count once)
    rows: int | None = None  # finetune: training rows
    trained_tokens: int | None = None  # finetune: non-padding tokens trained on, all epochs
    peak_rss_gib: float | None = None  # peak resident memory of the process that ran the stage, so far
    peak_gpu_gib: float | None = None  # its GPU memory (peak_gpu_bytes); None without CUDA

    @staticmethod
    def from_dict(d: dict) -> StageRecord:
        known = {f.name for f in fields(StageRecord)}
        return StageRecord(**{k: v for k, v in d.items() if k in known})


def make_record(stage: str, kind: str, model: str | None, started: float, ended: float, device_wide: bool = False,
                **counts) -> StageRecord:
    """A record of a stage that ran from `started` to `ended` in this process, with this process's peaks
    (device_wide: see peak_gpu_bytes)."""
    peaks = {"peak_rss_gib": peak_rss_gib(), "peak_gpu_gib": peak_gpu_gib(device_wide)}
    return StageRecord(stage, kind, model, started, ended, round(ended - started, 3), **(peaks | counts))


def finetune_work(info: dict) -> dict:
    """A finetune record's counters from its adapter's info (worker.train_from_payload); {} when reused."""
    if not info:
        return {}
    trained = info.get("tokens_per_second", 0) * info.get("seconds", 0)  # the trainer reports a rate
    return {"rows": info.get("n_examples"), "trained_tokens": round(trained)}


def peak_rss_gib() -> float:
    """This process's peak resident set size so far, in GiB (child processes not included)."""
    unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is in KiB on Linux, in bytes on macOS
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit / GIB, 3)


def peak_gpu_gib(device_wide: bool = False) -> float | None:
    """GPU memory of this stage in GiB; None without CUDA. See peak_gpu_bytes."""
    used = peak_gpu_bytes(device_wide)
    return None if used is None else round(used / GIB, 3)


def peak_gpu_bytes(device_wide: bool = False) -> int | None:
    """This process's peak torch allocation over its GPUs, when it holds a model itself (the hf backend,
    finetuning, vLLM in-process). vLLM's GPU engine runs in a child process, which that count does not see:
    with device_wide (the vLLM answer worker), the memory in use on the visible GPUs at the stage's end
    (vLLM reserves inference.gpu_memory_utilization of each), read from NVML without starting CUDA here.
    None without CUDA, or when nothing is readable."""
    torch = sys.modules.get("torch")  # a process that never imported torch used no GPU
    if torch is None or not torch.cuda.is_available():
        return None
    devices = range(torch.cuda.device_count())
    if torch.cuda.is_initialized():
        allocated = sum(torch.cuda.max_memory_allocated(d) for d in devices)
        if allocated or not device_wide:
            return int(allocated)
    if not device_wide:
        return None
    try:
        return int(sum(torch.cuda.device_memory_used(d) for d in devices))
    except Exception:  # noqa: BLE001 - no NVML (pynvml) here: the figure is unknown, not an error
        return None


class Profile:
    """The stage records of one run, safe to add to from several threads."""

    def __init__(self) -> None:
        self.started = time.time()
        self._lock = threading.Lock()
        self._records: list[StageRecord] = []

    def add(self, record: StageRecord) -> None:
        with self._lock:
            self._records.append(record)

    def add_worker_records(self, records: list[dict], started: float, ended: float) -> None:
        """Records a worker process wrote, for a process that ran from `started` to `ended`: its start-up
        (spawn, imports) is charged to its first stage and its exit (engine shutdown) to its last."""
        stages = [StageRecord.from_dict(r) for r in records]
        if not stages:
            return
        first, last = stages[0], stages[-1]
        startup, exit_ = max(0.0, first.started - started), max(0.0, ended - last.ended)
        first.started, last.ended = started, ended
        first.process_s = round(first.process_s + startup, 3)
        last.process_s = round(last.process_s + exit_, 3)
        for s in (first, last) if first is not last else (first,):
            s.wall_s = round(s.ended - s.started, 3)
        for s in stages:
            self.add(s)

    def records(self) -> list[StageRecord]:
        """Every record in run order (by start; equal starts in the order they were added)."""
        with self._lock:
            return sorted(self._records, key=lambda r: r.started)

    def summary(self, ended: float | None = None) -> dict:
        """The "profile" section of results.json: the run's totals, flat, then one dict per stage."""
        ended = time.time() if ended is None else ended
        stages = self.records()
        rss = [s.peak_rss_gib for s in stages if s.peak_rss_gib is not None] + [peak_rss_gib()]  # + this process
        gpu = [s.peak_gpu_gib for s in stages if s.peak_gpu_gib is not None]
        own_gpu = peak_gpu_gib()
        gpu += [own_gpu] if own_gpu is not None else []
        biggest = max(stages, key=lambda s: s.wall_s, default=None)
        engine = [s.engine_start_s for s in stages if s.engine_start_s is not None]
        return {
            "started": round(self.started, 3),
            "ended": round(ended, 3),
            "wall_s": round(ended - self.started, 3),
            "stages_wall_s": round(sum(s.wall_s for s in stages), 3),
            "n_stages": len(stages),
            "n_reused": sum(s.reused for s in stages),
            "engine_start_s": round(sum(engine), 3),
            "requests": sum(s.requests for s in stages),
            "prompt_tokens": sum(s.prompt_tokens for s in stages),
            "generated_tokens": sum(s.generated_tokens for s in stages),
            "peak_rss_gib": max(rss),
            "peak_gpu_gib": max(gpu) if gpu else None,
            "biggest_stage": biggest.stage if biggest else None,
            "biggest_stage_wall_s": biggest.wall_s if biggest else None,
            "stages": [asdict(s) for s in stages],
        }


@contextmanager
def timed_stage(profile: Profile | None, stage: str, kind: str, model: str | None = None):
    """Time a stage that runs in this process; the block may set counters on the yielded dict
    (e.g. reused=True). Recorded into `profile` only when the block completes and a profile is given."""
    counts: dict = {}
    started = time.time()
    yield counts
    if profile is not None:
        profile.add(make_record(stage, kind, model, started, time.time(), **counts))
