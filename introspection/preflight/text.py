"""The pre-flight plan as text (introspection/preflight/plan.py makes it; this module only prints it): the steps with
their tokens, GPU-hours for open models and dollars for server models, then the totals and the assumptions."""

from __future__ import annotations

from introspection.preflight.rates import PRICE_KEYS as PRICES


def _n(value: float) -> str:
    """Counts with thousands separators; large ones in k/M/G."""
    for unit, size in (("G", 1e9), ("M", 1e6)):
        if value >= 10 * size:
            return f"{value / size:,.1f}{unit}"
    return f"{value:,.0f}"


def _dollars(step: dict) -> str:
    """A server model's step in dollars ("?" when a price is unknown); "-" for an open model's GPU step."""
    if not step.get("priced_as"):
        return "-"
    return "?" if step.get("dollars") is None else f"{step['dollars']:,.2f}"


def format_plan(result: dict) -> str:
    est, conf = result["estimate"], result["config"]
    names = ", ".join(f"{m['name']} ({m['path']}, a server model)" if m["params_b"] is None else
                      f"{m['name']} ({m['params_b']:g}B, {m['size_class']})" for m in result["models"].values())
    lines = [f"pre-flight plan: model={conf['model']} tasks={conf['tasks']} finetune={conf['finetune']}: {names}",
             f"items: {result['items']['train']} train, {result['items']['test']} held-out, "
             f"{len(result['items']['tasks'])} tasks, <= {result['items']['rows_per_property']} training rows per "
             f"(task, property)"]
    lines.append("items per task (docs/method.md §2.1 has the paper's): " + ", ".join(
        f"{task} {n}" for task, n in result["items"]["tasks"].items()))
    lines += [f"fewer items than the paper: {line}" for line in result["items"].get("short_of_paper", [])]
    lines += [f"tokens of {m['name']}: {m['tokens']}" for m in result["models"].values()]
    lines += [f"{key.replace('_', ' ')}: {text}" for key, text in result["bounds"].items()]
    header = (f"{'#':>2}  {'step':<40} {'after':>5} {'requests':>9} {'prompt tok':>10} {'gen tok':>9} {'<=':>8} "
              f"{'rows<=':>7} {'train tok':>9} {'engine':>6} {'GPUs':>4} {'hours':>6} {'<=':>6} {'GPU-h':>7} {'$':>9}")
    lines += ["", header]
    index = {s["id"]: i for i, s in enumerate(result["steps"], start=1)}
    for i, s in enumerate(result["steps"], start=1):
        after = ",".join(str(index[d]) for d in s["depends_on"]) or "-"
        lines.append(f"{i:>2}  {s['id'][:40]:<40} {after:>5} {_n(s['requests']):>9} {_n(s['prompt_tokens']):>10} "
                     f"{_n(s['generated_tokens']):>9} {_n(s['generated_tokens_max']):>8} {_n(s['training_rows']):>7} "
                     f"{_n(s['training_tokens']):>9} {s['engine_starts']:>6} {s['gpus']:>4} "
                     f"{s['hours']:>6.2f} {s['hours_max']:>6.2f} {s['gpu_hours']:>7.2f} {_dollars(s):>9}")
    lines.append("")
    for stage, t in result["stages"].items():
        lines.append(f"    {stage:<15} {t['steps']} step(s): {_n(t['requests'])} requests, {_n(t['prompt_tokens'])} "
                     f"prompt + {_n(t['generated_tokens'])} (<= {_n(t['generated_tokens_max'])}) generated tokens, "
                     f"{t['engine_starts']} engine start(s), {t['finetunes']} finetune(s) on <= {_n(t['training_rows'])} "
                     f"rows / {_n(t['training_tokens'])} tokens; {t['hours']:.2f} h (<= {t['hours_max']:.2f}), "
                     f"{t['gpu_hours']:.2f} GPU-h")
    api = result.get("api") or {}
    if api.get("steps"):
        lines += ["", f"server models (no GPU; hours not modelled: the endpoint's rate limits set them): "
                      f"{_n(api['prompt_tokens'])} input + {_n(api['generated_tokens'])} (<= "
                      f"{_n(api['generated_tokens_max'])}) output tokens, {_n(api['training_tokens'])} training tokens "
                      f"per epoch: ${api['dollars']:,.2f} (<= ${api['dollars_max']:,.2f})"
                      + (f", without {len(api['unpriced_steps'])} unpriced step(s)" if api["unpriced_steps"] else "")]
        for m in result["models"].values():
            if m["params_b"] is None and m.get("prices"):
                p = m["prices"]
                lines.append(f"    prices of {m['path']} ($ per 1M tokens, as of {p.get('as_of')}; {p.get('source')}): "
                             + ", ".join(f"{k} {'unknown' if p[k] is None else p[k]}" for k in PRICES if k in p))
        lines += [f"    {s['id']}: {s['priced_as']}" for s in result["steps"] if s.get("priced_as")]
    lines += [f"note: {note}" for note in result.get("notes", [])]
    rates = "; ".join(f"{size}: " + ", ".join(f"{k} {v:g}" for k, v in r.items())
                      for size, r in est["assumptions"]["rates_per_gpu"].items())
    order = (f"both sides at once ({result['schedule']['sides']})" if result["schedule"].get("concurrent_sides")
             else "steps one after another")
    lines += ["",
              f"makespan, {order} in one job: {est['makespan_hours']:.1f} h on {est['job_gpus']} x "
              f"{est['gpu']} = {est['job_gpu_hours']:.1f} GPU-hours held ({est['step_gpu_hours']:.1f} GPU-hours used "
              f"by the steps); critical path if independent steps ran at once: {est['critical_path_hours']:.1f} h",
              f"upper bound, every answer at its cap: {est['makespan_hours_max']:.1f} h = "
              f"{est['job_gpu_hours_max']:.1f} GPU-hours held",
              f"assumed per {est['gpu']} GPU (conf/preflight/default.yaml, sources there; linear in GPUs): {rates}"]
    return "\n".join(lines)
