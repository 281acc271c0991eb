"""Outputs of a run: results.json, matrix.csv, scored items, the heatmap, the printed table, and W&B."""

from __future__ import annotations

import csv
import io
import logging
import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from introspection.report import render as render_report
from introspection.store import write_json_atomic, write_jsonl_atomic, write_text_atomic
from introspection.sweep import job_overrides

log = logging.getLogger(__name__)

MATRIX_COLUMNS = ["predictor", "target", "kind", "task", "property", "accuracy", "ci_low", "ci_high", "se", "n",
                  "mode_baseline", "compliance"]
SECRET_PATTERNS = ("key", "token", "secret", "password")


def headline(results: dict) -> list[dict]:
    """The micro-averaged cells: one per (predictor, target, kind)."""
    return [c for c in results["cells"] if c["task"] == "all" and c["property"] == "all"]


def write_results(results: dict, cfg: DictConfig, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    summary = {
        "experiment": cfg.experiment.name,
        "noncompliant": cfg.experiment.noncompliant,
        "models": results.get("models"),
        "n_items": results.get("n_items"),
        "items_per_task": results.get("tasks"),
        "matrix": headline(results),
        "cells": results["cells"],
        "paired_tests": results.get("paired_tests", []),
        "alternative_treatment": results.get("alternative_treatment", []),
        **{k: results[k] for k in ("calibration", "scaling", "shift") if k in results},  # experiment-specific
        "store": results.get("store"),
        "config": redact(OmegaConf.to_container(cfg, resolve=True)),
    }
    write_json_atomic(run_dir / "results.json", summary)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MATRIX_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(results["cells"])
    write_text_atomic(run_dir / "matrix.csv", buf.getvalue())
    write_jsonl_atomic(run_dir / "items.jsonl", results.get("pairs", []))
    render_report(run_dir)


def redact(obj):
    """Drop values whose key names a secret, so tokens never reach saved configs or W&B."""
    if isinstance(obj, dict):
        return {k: ("<redacted>" if any(p in str(k).lower() for p in SECRET_PATTERNS) and isinstance(v, str) else redact(v))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    return obj


def format_table(results: dict) -> str:
    cells = sorted(headline(results), key=lambda c: (c["target"], c["kind"] != "self", c["kind"]))
    pw = max([22] + [len(c["predictor"]) + 2 for c in cells])  # long labels (finetuned models) widen the column
    tw = max([22] + [len(c["target"]) + 2 for c in cells])
    kw = max([11] + [len(c["kind"]) + 2 for c in cells])
    lines = [f"{'predictor':<{pw}}{'target':<{tw}}{'kind':<{kw}}{'accuracy':>9}  {'95% CI':<17}{'n':>6}{'baseline':>10}"
             f"{'compliance':>12}"]
    for c in cells:
        ci = f"[{c['ci_low']:.1%}, {c['ci_high']:.1%}]"
        lines.append(f"{c['predictor']:<{pw}}{c['target']:<{tw}}{c['kind']:<{kw}}{c['accuracy']:>9.1%}  {ci:<17}"
                     f"{c['n']:>6}{c['mode_baseline']:>10.1%}{c['compliance']:>12.1%}")
    for t in [t for t in results.get("paired_tests", []) if t.get("task", "all") == "all"]:
        what = t.get("label") or f"self vs cross for target {t['target']}"
        lines.append(
            f"{what}: {t['self_accuracy']:.1%} vs {t['cross_accuracy']:.1%} "
            f"({t['cross_predictor']}), difference {t['delta']:+.1%} [{t['ci_low']:+.1%}, {t['ci_high']:+.1%}], "
            f"n={t['n']}, exact McNemar p={t['mcnemar_p']:.3g}"
        )
    return "\n".join(lines)


def print_summary(results: dict, run_dir: Path) -> None:
    store = results.get("store", {})
    if results.get("tasks"):
        print("\nitems per task: " + ", ".join(f"{t} {n}" for t, n in results["tasks"].items()))
    print("\n" + format_table(results))
    print(f"\nmodel worker processes started: {store.get('worker_runs', 0)}; artifacts computed "
          f"{len(store.get('computed', []))}, reused {len(store.get('reused', []))}")
    print(f"results written to {run_dir}/ (report.md, results.json, matrix.csv, items.jsonl, plots/)")


def wandb_mode(cfg_mode: str) -> str:
    """auto: online when credentials exist (env key or a netrc entry), offline otherwise."""
    if cfg_mode != "auto":
        return cfg_mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "online" if "api.wandb.ai" in netrc.read_text() else "offline"
    except OSError:
        return "offline"


def log_results(results: dict, cfg: DictConfig, run_dir: Path) -> None:
    """One W&B run per Hydra job: resolved config, the matrix as a table, the heatmap, the summary."""
    if cfg.logger.backend == "none":
        return
    if cfg.logger.backend != "wandb":
        raise ValueError(f"unknown logger.backend '{cfg.logger.backend}'; valid: wandb, none")
    import wandb

    mode = wandb_mode(cfg.logger.mode)
    config = redact(OmegaConf.to_container(cfg, resolve=True))
    config["overrides"] = job_overrides()  # this job's command-line overrides: sweep dashboards slice by them
    with wandb.init(project=cfg.logger.project, entity=cfg.logger.entity, group=cfg.logger.group,
                    tags=list(cfg.logger.tags), config=config, dir=str(run_dir), mode=mode, job_type="experiment",
                    settings=wandb.Settings(silent=True)) as run:
        table = wandb.Table(columns=MATRIX_COLUMNS, data=[[c.get(k) for k in MATRIX_COLUMNS] for c in results["cells"]])
        payload = {"matrix": table}
        for png in sorted((run_dir / "plots").glob("*.png")):  # the report's figures: matrix, properties, ...
            payload[f"plots/{png.stem}"] = wandb.Image(str(png))
        for key in ("calibration", "scaling", "alternative_treatment"):
            rows = [{k: v for k, v in r.items() if not isinstance(v, list | dict)} for r in results.get(key) or []]
            if rows:
                cols = sorted({k for r in rows for k in r})
                payload[key] = wandb.Table(columns=cols, data=[[r.get(k) for k in cols] for r in rows])
        if results.get("paired_tests"):
            cols = sorted({k for t in results["paired_tests"] for k in t})
            payload["paired_tests"] = wandb.Table(columns=cols, data=[[t.get(k) for k in cols] for t in results["paired_tests"]])
        run.log(payload)
        for c in headline(results):
            prefix = f"{c['kind']}/{c['predictor']}->{c['target']}"
            run.summary[f"{prefix}/accuracy"] = c["accuracy"]
            run.summary[f"{prefix}/ci_low"] = c["ci_low"]
            run.summary[f"{prefix}/ci_high"] = c["ci_high"]
            run.summary[f"{prefix}/n"] = c["n"]
        log.info("W&B run logged (%s mode) under %s", mode, run_dir)
