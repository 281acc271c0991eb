"""The demo through its real entry point, twice on one store that starts EMPTY.

The first run starts from nothing: the product's cache (INTROSPECTION_CACHE) and store_dir point to a
new folder, so the embedded models are converted, and every answer and adapter computed, as on a fresh
clone. It gives the wall time, the peak memory of all its processes together (summed RSS and PSS of the
whole process tree), the run's own stage profile (results.json "profile", when the run writes one) and
the bench's view stage by stage: a stage starts at the line `introspection.stages.answers` or
`introspection.stages.adapters` logs when it hands
work to a worker ("X: answering N prompts", "finetuning X on ROWS") and ends when that worker process
exits. The second run, on the same store, is the rerun of a finished experiment: it must start no model
worker (results.json: store.worker_runs == 0).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import BENCH_ENV_DEFAULTS, MIB, ROOT, TreeSampler, load1, peak_mib, settle, unique_dir

# Hydra's console format: [2026-11-26 21:40:45,853][introspection.stages.answers][INFO] - message
STAGE_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})\]\[introspection\.stages\.(?:answers|adapters)\]\[INFO\] - (.*)$")
ANSWERING = re.compile(r"^(?P<model>.+): answering (?P<n>\d+) prompts \((?P<jobs>.*)\)$")
FINETUNING = re.compile(r"^finetuning (?P<model>.+) on (?P<rows>\S+)$")


def stage_starts(log_text: str) -> list[dict]:
    """Every model-bound stage the main process started: {"name", "start" (epoch seconds), ...}."""
    stages = []
    for line in log_text.splitlines():
        m = STAGE_LINE.match(line.strip())
        if not m:
            continue
        start = time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + int(m.group(2)) / 1000
        message = m.group(3)
        if a := ANSWERING.match(message):
            stages.append({"name": f"answer {a['model']}", "kind": "answer", "model": a["model"],
                           "prompts": int(a["n"]), "jobs": a["jobs"], "start": start})
        elif f := FINETUNING.match(message):
            name = f"finetune {f['model']}"
            rows = Path(f["rows"])
            manifest = rows.parent / "_manifest.json"
            if manifest.is_file():  # the rows artifact names whose behaviour the predictor learns
                info = json.loads(manifest.read_text())["info"]
                if info.get("predictor") == f["model"]:  # (rows are shared by content: else unknown here)
                    name = f"finetune {f['model']} on {info.get('target')}"
            stages.append({"name": name, "kind": "finetune", "model": f["model"], "start": start})
    return stages


def stage_table(stages: list[dict], samples: list[tuple[float, int, list[int], int | None]], run_start: float,
                run_end: float) -> list[dict]:
    """Each stage's wall seconds and the tree's peak RSS / PSS while it ran, plus the main-process spans between."""
    lifetimes: dict[int, list[float]] = {}  # worker pid -> [first seen, last seen]
    for t, _, workers, *_ in samples:
        for pid in workers:
            lifetimes.setdefault(pid, [t, t])[1] = t
    out, cursor = [], run_start
    for i, stage in enumerate(stages):
        nxt = stages[i + 1]["start"] if i + 1 < len(stages) else run_end
        worker = next((span for span in sorted(lifetimes.values()) if stage["start"] - 1.0 <= span[0] < nxt), None)
        end = min(max(worker[1], stage["start"]), nxt) if worker else nxt
        if stage["start"] - cursor > 0.05:
            out.append(_span("main process (plan, data, scoring)" if out else "start-up (imports, plan, models)",
                             cursor, stage["start"]))
        out.append({**{k: v for k, v in stage.items() if k != "start"},
                    **_span(stage["name"], stage["start"], end)})
        cursor = end
    if run_end - cursor > 0.05:
        out.append(_span("scoring and outputs" if stages else "whole run", cursor, run_end))
    for row in out:
        start, end = row.pop("_start"), row.pop("_end")
        row["peak_rss_mib"] = peak_mib(samples, start, end)
        row["peak_pss_mib"] = peak_mib(samples, start, end, pss=True)
        row["offset_seconds"] = round(start - run_start, 2)
    return out


def _span(name: str, start: float, end: float) -> dict:
    return {"name": name, "seconds": round(end - start, 2), "_start": start, "_end": end}


TARGET_WALL_SECONDS = 15 * 60  # the demo from an empty store on 2 CPU cores
TARGET_PEAK_GIB = 8.0  # all its processes together
MISSING_PROFILE = "results.json has no 'profile' section (a version of the pipeline that does not record one)"


def demo_env(cache: Path, environ: dict | None = None) -> dict:
    """The demo's environment: the user's, with the product's cache in `cache` and without the variables
    the bench itself set for its other sections (a fresh clone has none of them)."""
    env = dict(os.environ if environ is None else environ)
    for name in BENCH_ENV_DEFAULTS:
        env.pop(name, None)
    env["INTROSPECTION_CACHE"] = str(cache)
    return env


def run_profile(results: dict) -> tuple[object, str | None]:
    """(the run's stage profile from its results.json, None) or (None, why there is none)."""
    profile = results.get("profile")
    return (profile, None) if profile else (None, MISSING_PROFILE)


def run_main(overrides: list[str], store_root: Path, run_dir: Path, log_path: Path, interval: float,
             env: dict | None = None) -> dict:
    """One `python -m introspection.main` run; its wall time, the process tree's peak memory, stages, profile
    and store counts."""
    cmd = [sys.executable, "-m", "introspection.main", f"hydra.run.dir={run_dir}", f"store_dir={store_root}",
           "logger=none", *overrides]
    quiet, before = settle(), load1()
    with open(log_path, "w") as log_file:
        started = time.time()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT, env=env)
        with TreeSampler(proc.pid, include_root=True, interval=interval) as rss:
            code = proc.wait()
        ended = time.time()
    text = log_path.read_text(errors="replace")
    if code != 0:
        raise RuntimeError(f"introspection.main exited with {code}; last lines:\n" + "\n".join(text.splitlines()[-15:]))
    results = json.loads((run_dir / "results.json").read_text())
    stages = stage_table(stage_starts(text), rss.samples, started, ended)
    counts = results.get("store") or {}
    profile, missing = run_profile(results)
    return {"command": " ".join(["python -m introspection.main", *cmd[3:]]), "seconds": round(ended - started, 2),
            **rss.report(), "worker_runs": counts.get("worker_runs"),
            "computed": len(counts.get("computed", [])), "reused": len(counts.get("reused", [])),
            "profile": profile, **({"profile_missing": missing} if missing else {}),
            "stages": stages, "load1_before": before, "settle": quiet, "load1_after": load1()}


def demo_summary(overrides: list[str], first: dict, second: dict) -> dict:
    """The section's JSON: the first run from an empty store and the rerun on the same store, with targets."""
    profile, missing = first.get("profile"), first.get("profile_missing")
    first = {k: v for k, v in first.items() if k not in ("profile", "profile_missing")}  # once, at the top
    second = {k: v for k, v in second.items() if k != "stages"}
    rss, pss = first.get("peak_rss_mib"), first.get("peak_pss_mib")
    return {
        "overrides": overrides, "from_empty_store": True,
        "wall_seconds": first["seconds"], "target_wall_seconds": TARGET_WALL_SECONDS,
        "meets_wall_target": first["seconds"] <= TARGET_WALL_SECONDS,
        # Summed RSS counts each shared library once per process (an upper bound); summed PSS divides
        # shared pages among their processes but is sampled less often (a lower bound of its peak).
        "peak_rss_gib": None if rss is None else round(rss * MIB / 2**30, 2),
        "peak_pss_gib": None if pss is None else round(pss * MIB / 2**30, 2),
        "target_peak_gib": TARGET_PEAK_GIB,
        "meets_memory_target": None if rss is None else rss * MIB / 2**30 <= TARGET_PEAK_GIB,
        "profile": profile, **({"profile_missing": missing} if missing else {}),
        "first": first, "rerun": second,
        "rerun_model_calls": second["worker_runs"], "target_model_calls": 0,
        "meets_target": second["worker_runs"] == 0,
    }


def measure(work: Path, overrides: list[str], interval: float) -> dict:
    """The demo twice on one store that starts empty: the first run computes everything (model conversion
    included), the second none of it."""
    cache = unique_dir(work, "demo-cache")  # the product's cache and artifact store, empty
    env = demo_env(cache)
    first = run_main(overrides, cache, work / "demo-run-1", work / "demo-run-1.log", interval, env)
    second = run_main(overrides, cache, work / "demo-run-2", work / "demo-run-2.log", interval, env)
    summary = demo_summary(overrides, first, second)
    try:  # the plan's rate model against this run (benchmarks/plan_check.py); the demo's numbers stand without it
        from benchmarks.plan_check import for_demo

        summary["plan_check"] = for_demo(work, overrides, cache, env, summary["profile"])
    except Exception as e:  # noqa: BLE001
        summary["plan_check"] = {"error": f"{type(e).__name__}: {e}"}
    return summary
