"""The pre-flight plan's rate model against a measured run (the bench's demo section).

The plan prices work with five rates per machine kind and model size class (introspection/preflight/rates.py):
an engine start, prompt and generated tokens per second, a finetune start, trained tokens per second. A
run's profile (results.json "profile") records, per stage, the same work it actually did: requests, prompt and
generated tokens, engine start seconds, trained tokens, and the wall. This module

  * fits the five rates to the run's stages (answers: wall - start = prompt x a + generated x b, least
    squares with a, b >= 0; finetunes: wall = start + trained x c; an engine start costs its engine_start_s
    plus the worker's spawn and exit, process_s): the machine's MEASURED rates;
  * prices every stage with the plan's rates for this machine kind (conf/preflight/default.yaml, `cpu`) and
    with the measured ones, beside the measured wall;
  * sets the plan itself (`experiment.stop_after=plan` on the same config and store) beside the run: its
    tokens at the expected answer lengths against the tokens the run generated, its hours against the walls.

How to read it honestly: the plan's `cpu` rates were fitted once, from a tasks=smoke demo (docs/measurements.md
§7); on the full demo they are out of sample, so "plan / measured" is the plan's error on new work. The fitted
rates are in sample: their residuals only say how well five linear rates can describe this machine at all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.common import ROOT, unique_dir
from introspection.preflight.rates import inference_seconds, training_seconds


def _stages(profile) -> list[dict]:
    if isinstance(profile, dict):
        profile = profile.get("stages", [])
    return [s for s in profile or [] if isinstance(s, dict) and not s.get("reused")]


def _least_squares(rows: list[tuple[float, float, float]]) -> tuple[float, float]:
    """(a, b) >= 0 minimising sum (a x + b y - z)^2 over rows (x, y, z); a coefficient that would be negative is 0
    and the other refitted alone."""
    def alone(pairs: list[tuple[float, float]]) -> float:
        den = sum(x * x for x, _ in pairs)
        return max(0.0, sum(x * z for x, z in pairs) / den) if den else 0.0

    sxx = sum(x * x for x, _, _ in rows)
    syy = sum(y * y for _, y, _ in rows)
    sxy = sum(x * y for x, y, _ in rows)
    sxz = sum(x * z for x, _, z in rows)
    syz = sum(y * z for _, y, z in rows)
    det = sxx * syy - sxy * sxy
    if det > 1e-9 * max(sxx * syy, 1e-30):
        a, b = (sxz * syy - syz * sxy) / det, (syz * sxx - sxz * sxy) / det
        if a >= 0 and b >= 0:
            return a, b
    a_only, b_only = alone([(x, z) for x, _, z in rows]), alone([(y, z) for _, y, z in rows])
    err_a = sum((a_only * x - z) ** 2 for x, _, z in rows)
    err_b = sum((b_only * y - z) ** 2 for _, y, z in rows)
    return (a_only, 0.0) if err_a <= err_b else (0.0, b_only)


def _start_cost(stage: dict) -> float:
    return float(stage.get("engine_start_s") or 0.0) + float(stage.get("process_s") or 0.0)


def fit_rates(profile) -> dict:
    """The five rates of the plan's model fitted to a run's stages, with how many stages each rests on."""
    stages = _stages(profile)
    answers = [s for s in stages if s.get("kind") == "answers" and s.get("requests")]
    finetunes = [s for s in stages if s.get("kind") == "finetune" and s.get("trained_tokens")]
    starts = sum(1 for s in answers if s.get("engine_start_s") is not None)
    a, b = _least_squares([(float(s["prompt_tokens"]), float(s["generated_tokens"]),
                            max(0.0, float(s["wall_s"]) - _start_cost(s))) for s in answers])
    rates = {"prompt_tokens_per_s": 1 / a if a > 0 else None, "generated_tokens_per_s": 1 / b if b > 0 else None,
             "engine_start_s": sum(_start_cost(s) for s in answers) / starts if starts else None}
    points = [(float(s["trained_tokens"]), float(s["wall_s"])) for s in finetunes]
    if len({t for t, _ in points}) >= 2:  # wall = start + tokens / rate, a line through the finetunes
        n = len(points)
        mt, mw = sum(t for t, _ in points) / n, sum(w for _, w in points) / n
        slope = sum((t - mt) * (w - mw) for t, w in points) / sum((t - mt) ** 2 for t, _ in points)
        start = mw - slope * mt
        if slope <= 0 or start < 0:  # noise larger than the spread of sizes: no start, the mean rate
            slope, start = sum(w for _, w in points) / sum(t for t, _ in points), 0.0
    elif points:
        slope, start = sum(w for _, w in points) / sum(t for t, _ in points), 0.0
    else:
        slope, start = 0.0, None
    rates |= {"train_tokens_per_s": 1 / slope if slope > 0 else None, "finetune_start_s": start}
    return {"rates": {k: None if v is None else round(v, 3) for k, v in rates.items()},
            "n_answer_stages": len(answers), "n_engine_starts": starts, "n_finetunes": len(finetunes)}


def stage_seconds(stage: dict, rates: dict) -> float | None:
    """The plan model's seconds for the work one measured stage did, at `rates` (None: a rate is missing)."""
    if any(v is None for v in rates.values()):
        return None
    if stage.get("kind") == "answers":
        starts = 1 if stage.get("engine_start_s") is not None else 0
        return inference_seconds(stage.get("prompt_tokens", 0), stage.get("generated_tokens", 0), starts, 1, rates)
    if stage.get("kind") == "finetune":
        return training_seconds(stage.get("trained_tokens") or 0, 1.0, 1, 1, rates)
    return None


def compare(profile, plan_rates: dict, plan: dict | None = None) -> dict:
    """The plan's rates and the fitted ones beside the measured walls, per stage and in all; with `plan` (the
    plan.json of the same config), its token counts and hours beside the run's."""
    fitted = fit_rates(profile)
    rows, totals = [], {"measured_s": 0.0, "plan_s": 0.0, "fitted_s": 0.0}
    for s in _stages(profile):
        if s.get("kind") not in ("answers", "finetune"):
            continue
        plan_s, fitted_s = stage_seconds(s, plan_rates), stage_seconds(s, fitted["rates"])
        rows.append({"stage": s.get("stage") or s.get("name"), "kind": s["kind"], "measured_s": s["wall_s"],
                     "plan_s": None if plan_s is None else round(plan_s, 2),
                     "fitted_s": None if fitted_s is None else round(fitted_s, 2)})
        totals["measured_s"] += float(s["wall_s"])
        totals["plan_s"] = None if plan_s is None or totals["plan_s"] is None else totals["plan_s"] + plan_s
        totals["fitted_s"] = None if fitted_s is None or totals["fitted_s"] is None else totals["fitted_s"] + fitted_s
    totals = {k: None if v is None else round(v, 1) for k, v in totals.items()}
    totals["plan_over_measured"] = (round(totals["plan_s"] / totals["measured_s"], 3)
                                    if totals["plan_s"] and totals["measured_s"] else None)
    out = {"plan_rates": plan_rates, "measured": fitted, "stages": rows, "total": totals}
    if plan is not None:
        out["plan"] = plan_beside_run(plan, profile)
    return out


def plan_beside_run(plan: dict, profile) -> dict:
    """The plan's counts and hours for the whole run against what the run measured."""
    stages = _stages(profile)
    measured = {"prompt_tokens": sum(s.get("prompt_tokens") or 0 for s in stages),
                "generated_tokens": sum(s.get("generated_tokens") or 0 for s in stages),
                "seconds": round(sum(float(s["wall_s"]) for s in stages if s.get("kind") in ("answers", "finetune")), 1)}
    steps = plan.get("steps", [])
    planned = {"prompt_tokens": sum(s["prompt_tokens"] for s in steps),
               "generated_tokens": sum(s["generated_tokens"] for s in steps),
               "generated_tokens_max": sum(s["generated_tokens_max"] for s in steps),
               "seconds": round(3600 * plan["estimate"]["makespan_hours"], 1)}
    ratio = {k: round(planned[k] / measured[k], 3) if measured[k] else None
             for k in ("prompt_tokens", "generated_tokens", "seconds")}
    return {"planned": planned, "measured": measured, "plan_over_measured": ratio,
            "tokens": [m.get("tokens") for m in plan.get("models", {}).values()]}


def table_rows(check: dict) -> list[tuple[str, str, str]]:
    """The bench table's rows for a plan check."""
    def fmt(x, digits=1):
        return "n/a" if x is None else f"{x:,.{digits}f}"

    fitted = check["measured"]["rates"]
    rows = [("plan model vs this run: rate (plan's cpu / measured here)", "", "")]
    for key, planned in check["plan_rates"].items():
        rows.append((f"  {key}", f"{fmt(planned)} / {fmt(fitted.get(key))}", ""))
    t = check["total"]
    rows.append(("  answer + finetune stages: measured / plan / fitted s",
                 f"{fmt(t['measured_s'])} / {fmt(t['plan_s'])} / {fmt(t['fitted_s'])}",
                 f"plan/measured {fmt(t['plan_over_measured'], 3)}"))
    for r in check["stages"]:
        rows.append((f"    {r['stage']}", f"{fmt(r['measured_s'])} / {fmt(r['plan_s'])} / {fmt(r['fitted_s'])}", ""))
    p = check.get("plan")
    if p:
        pl, me, ra = p["planned"], p["measured"], p["plan_over_measured"]
        rows.append(("  the plan (stop_after=plan) vs the run: prompt tokens", f"{pl['prompt_tokens']:,} / "
                     f"{me['prompt_tokens']:,}", f"plan/measured {fmt(ra['prompt_tokens'], 3)}"))
        rows.append(("    generated tokens: expected (cap) / measured",
                     f"{pl['generated_tokens']:,} ({pl['generated_tokens_max']:,}) / {me['generated_tokens']:,}",
                     f"plan/measured {fmt(ra['generated_tokens'], 3)}"))
        rows.append(("    seconds: plan makespan / measured stages", f"{fmt(pl['seconds'])} / {fmt(me['seconds'])}",
                     f"plan/measured {fmt(ra['seconds'], 3)}"))
    return rows


def for_demo(work: Path, overrides: list[str], store_root: Path, env: dict, profile) -> dict:
    """The plan of the demo's own config on the demo's store (its models converted: the plan counts tokens with
    their tokenizers), priced at the `cpu` rates, compared with the demo run's profile."""
    run_dir = unique_dir(work, "demo-plan")
    cmd = [sys.executable, "-m", "introspection.main", f"hydra.run.dir={run_dir}", f"store_dir={store_root}",
           "logger=none", *overrides, "experiment.stop_after=plan", "preflight.gpu=cpu"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"the plan exited with {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}")
    plan = json.loads((run_dir / "plan.json").read_text())
    per_class = plan["estimate"]["assumptions"]["rates_per_gpu"]
    if len(per_class) != 1:
        raise ValueError(f"the plan check compares one size class; the demo's models are in {sorted(per_class)}")
    return compare(profile, next(iter(per_class.values())), plan)
