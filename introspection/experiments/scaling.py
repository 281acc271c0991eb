"""Cross-training size (docs/method.md §8.2): does more data let another model catch up with self-prediction?

The cross-predictor P is finetuned on T_self's behaviour capped at each size in
`experiment.options.sizes`; each is scored against T_self's held-out behaviour on the same items as
T_self's own self-prediction, which is drawn as a horizontal line.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from introspection.analysis import scoring
from introspection.experiments import Experiment, ExperimentResult, model_slot
from introspection.outputs.report import pct, pyplot, savefig
from introspection.pipeline.steps import (
    RunContext,
    answer,
    build_items,
    object_values,
    resolve_models,
    score,
    train_cross,
    train_self,
    weights_of,
)

log = logging.getLogger(__name__)


@dataclass
class ScalingOptions:
    """experiment.options of experiment=scaling (conf/experiment/scaling.yaml)."""

    sizes: list[int] = field(default_factory=lambda: [32, 64, 128])  # cross-training rows, one finetune each
    target: str = "m1"

    def check(self) -> None:
        model_slot(self.target, "experiment.options.target")
        if not self.sizes or min(self.sizes) < 1:
            raise ValueError(f"experiment.options.sizes {self.sizes} must be positive integers")


def run_scaling(ctx: RunContext, opts: ScalingOptions) -> ExperimentResult:
    cfg = ctx.cfg
    sizes = sorted(opts.sizes)
    plan = build_items(cfg.tasks, ctx.store, profile=ctx.profile)
    models = resolve_models(ctx)
    t_slot = opts.target
    target, predictor = models[t_slot], models["m2" if t_slot == "m1" else "m1"]
    train_obj, test_obj = plan.object_requests(plan.train_items), plan.object_requests(plan.test_items)
    test_hyp = plan.hypothetical_requests(plan.test_items)

    base = answer(ctx, target, {"object/train": (train_obj, False)})
    target_self = train_self(ctx, plan, target, base["object/train"])
    selfs = answer(ctx, target_self, {"object/train": (train_obj, False), "object/test": (test_obj, False),
                                      "hypothetical/test": (test_hyp, True)})
    predictions = {}  # size -> the cross-predictor's held-out hypothetical answers
    for size in sizes:
        ft = OmegaConf.merge(cfg.finetune, {"max_examples": size})
        cross = train_cross(ctx, plan, predictor, target_self, selfs["object/train"], finetune_cfg=ft)
        predictions[size] = answer(ctx, cross, {"hypothetical/test": (test_hyp, True)})["hypothetical/test"]
    cells, tests, points, pairs = score(ctx, scaling_scores, cfg, plan, selfs, predictions, target.label,
                                        predictor.label)
    plot_scaling(points, target.label, predictor.label, ctx.run_dir / "plots" / "scaling.png")
    return ExperimentResult(cells=cells, paired_tests=tests, pairs=pairs, sections={"scaling": points},
                            weights=weights_of(models),
                            models={slot: m.label for slot, m in models.items()},
                            n_items={"train": len(plan.train_items), "test": len(plan.test_items)})


def scaling_scores(cfg, plan, selfs: dict, predictions: dict, target: str, predictor: str) -> tuple[list, list, list, list]:
    """Per size: the cross cells and paired test against T_self's self-prediction on the same items, and the
    curve's point."""
    truth = object_values(plan, plan.test_items, selfs["object/test"])
    self_rows = scoring.score_pairs(plan.test_items, plan.properties, truth, selfs["hypothetical/test"],
                                    predictor=target, target=target, kind="self", compliance=plan.compliance)
    cells, tests, points, pairs = [], [], [], list(self_rows)
    first = min(predictions)
    for size, hyp in predictions.items():
        name = f"{predictor}@{size}"
        rows = scoring.score_pairs(plan.test_items, plan.properties, truth, hyp, predictor=name, target=target,
                                   kind="cross", compliance=plan.compliance)
        scored = scoring.score_target(self_rows, {name: rows}, cfg.experiment.noncompliant)
        cells += [c for c in scored["cells"] if c["kind"] == "cross" or size == first]
        tests += scored["paired_tests"]
        pairs += rows
        t = scored["paired_tests"][0]
        micro = next(c for c in scored["cells"] if c["kind"] == "cross" and c["task"] == "all" and c["property"] == "all")
        points.append({"n_examples": size, "accuracy": micro["accuracy"], "ci_low": micro["ci_low"],
                       "ci_high": micro["ci_high"], "n": micro["n"], "self_accuracy": t["self_accuracy"]})
    return cells, tests, points, pairs


def plot_scaling(points: list[dict], target: str, predictor: str, path: Path) -> None:
    if not points:
        return
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 3.6))
    xs = [p["n_examples"] for p in points]
    ys = [p["accuracy"] for p in points]
    err = [[max(0.0, p["accuracy"] - p["ci_low"]) if not math.isnan(p["ci_low"]) else 0 for p in points],
           [max(0.0, p["ci_high"] - p["accuracy"]) if not math.isnan(p["ci_high"]) else 0 for p in points]]
    ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=f"cross: {predictor} trained on {target}_self")
    ax.axhline(points[-1]["self_accuracy"], color="green", linestyle="--", label=f"self: {target}_self")
    ax.set_xscale("log")
    ax.set_xlabel("cross-training examples")
    ax.set_ylabel("held-out accuracy")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    savefig(fig, path)


def render_scaling(result: ExperimentResult, run_dir: Path) -> list[str]:
    """Its report.md section: cross accuracy per number of cross-training examples, self beside it."""
    points = result.sections.get("scaling") or []
    if not points:
        return []
    md = ["## Cross-training size", "", "| cross-training examples | cross accuracy | 95% CI | n | self accuracy |",
          "|---|---|---|---|---|"]
    md += [f"| {s['n_examples']} | {pct(s['accuracy'])} | [{pct(s['ci_low'])}, {pct(s['ci_high'])}] | {s['n']} | "
           f"{pct(s['self_accuracy'])} |" for s in points] + [""]
    if (run_dir / "plots" / "scaling.png").is_file():
        md += ["![scaling](plots/scaling.png)", ""]
    return md


EXPERIMENT = Experiment("scaling", run_scaling, ScalingOptions, render=render_scaling,
                        summary="cross accuracy against the number of cross-training examples, self as reference")
