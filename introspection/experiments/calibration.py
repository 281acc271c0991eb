"""Calibration (docs/method.md#6-calibration): does the predicted distribution over a property match the
distribution of the model's actual behaviour?

For each held-out string, the object-level prompt (single-animal variant by default) and the
hypothetical question about `experiment.options.property` are each sampled n times at temperature 1.
Both sides read that one property: the object side through `property_value` (as scoring's ground
truth), the hypothetical side through `normalize` (as scoring reads a prediction). Points
(p_obj(c), p_hyp(c)) for the top-3 behaviours c are pooled, binned into 10 equal-count bins, and
summarised by the mean absolute deviation (MAD, percentage points). Setups, for target T (default M1):
  self       object T_self,  hypothetical T_self
  cross      object T_self,  hypothetical P trained on T_self's behaviour
  untrained  object T,       hypothetical T
plus, for each setup, the logprob variant: the hypothetical's first-token distribution at temperature 0.

Accepted properties: those whose value is one character or a label from a fixed small set (their
hypothetical compliance group is single_character, true_false or even_odd). Their values form a
small categorical set per item, and one first token carries the whole value, which the logprob
variant needs. Words, character pairs and whole responses are refused at start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from introspection.analysis.calibration import (
    binned_curve,
    calibration_points,
    hypothetical_distribution,
    logprob_distribution,
    mad,
    object_distribution,
    property_key,
)
from introspection.core.types import Answer, ChatRequest, Item, Sampling
from introspection.experiments import Experiment, ExperimentResult, model_slot, parse_options
from introspection.outputs.report import pct, pyplot, savefig
from introspection.paper import prompts
from introspection.paper.compliance import hypothetical_groups, is_compliant
from introspection.paper.properties import PROPERTIES, Property, get_property
from introspection.paper.tasks import get_task, load_items, properties_for
from introspection.pipeline.steps import (
    RunContext,
    answer,
    build_items,
    resolve_models,
    score,
    train_cross,
    train_self,
    weights_of,
)

log = logging.getLogger(__name__)


@dataclass
class CalibrationOptions:
    """experiment.options of experiment=calibration (conf/experiment/calibration.yaml)."""

    task: str = "animals_single"
    property: str = "second_character"
    n_strings: int = 60
    n_samples: int = 20
    temperature: float = 1.0
    max_tokens: int = 3
    target: str = "m1"
    n_bins: int = 10
    n_bootstrap: int = 200

    def check(self) -> None:
        model_slot(self.target, "experiment.options.target")
        check_property(self.task, self.property)


# A property can be calibrated when its value is one character or one of a few labels (see the module docstring).
CALIBRATION_GROUPS = ("single_character", "true_false", "even_odd")


def accepted_properties() -> list[str]:
    """Every registered property calibration accepts, by the rule above."""
    return sorted(name for name, prop in PROPERTIES.items() if prop.compliance_group in CALIBRATION_GROUPS)


def check_property(task_name: str, prop_name: str) -> Property:
    """The property to calibrate on `task_name`, or a one-line ValueError naming the valid ones."""
    task = get_task(task_name, where="experiment.options.task")
    prop = get_property(prop_name, where="experiment.options.property")
    valid = [p for p in task.properties if p in accepted_properties()]
    if prop.name not in valid:
        why = ("its values are not one character or a label from a small set"
               if prop.name not in accepted_properties() else f"task {task.name!r} is not asked about it")
        raise ValueError(f"experiment.options.property {prop.name!r} cannot be calibrated on task {task.name!r} ({why}); "
                         f"valid for this task: {', '.join(valid) or 'none'}")
    return properties_for(task, [prop.name], where="experiment.options.property")[0]


def options(cfg: DictConfig) -> CalibrationOptions:
    """experiment.options read into CalibrationOptions (a one-line ValueError for a bad one)."""
    return parse_options(EXPERIMENT, cfg.experiment.options)


def calibration_items(opts: CalibrationOptions, seed: int, data_dir: str | None = None) -> list[Item]:
    return load_items(get_task(opts.task), "val", opts.n_strings, seed, data_dir)


def requests(opts: CalibrationOptions, items: list[Item]) -> tuple[list[ChatRequest], list[ChatRequest]]:
    """Object and hypothetical requests without the system message (as the paper's calibration runs)."""
    task, prop = get_task(opts.task), get_property(opts.property)
    strip = lambda msgs: [m for m in msgs if m["role"] != "system"]  # noqa: E731
    obj = [ChatRequest(f"cal-obj|{it.item_id}", strip(prompts.object_messages(task, it.string)),
                       kind="object", task=it.task, item_id=it.item_id) for it in items]
    hyp = [ChatRequest(f"cal-hyp|{it.item_id}", strip(prompts.hypothetical_messages(task, prop, it.string)),
                       kind="hypothetical", task=it.task, item_id=it.item_id, property=prop.name) for it in items]
    return obj, hyp


def setup_distributions(prop: Property, items: list[Item], objects: dict[str, Answer], hypotheticals: dict[str, Answer],
                        greedy: dict[str, Answer], mode: str = "authors") -> dict:
    """One setup's per-item distributions, all over values of `prop`, and its hypothetical compliance.

    objects / hypotheticals / greedy map request ids (cal-obj|<item>, cal-hyp|<item>) to the sampled
    object answers, the sampled hypothetical answers and the greedy hypothetical with its first-token
    log-probs.
    """
    hyp_samples = [s for it in items for s in hypotheticals[f"cal-hyp|{it.item_id}"].samples]
    # A predictor that never answers in the format puts p_hyp = 0 everywhere, and its MAD then only
    # mirrors the object-level probabilities: report how often its samples were answers at all.
    groups = hypothetical_groups(prop, mode)
    compliance = sum(s is not None and is_compliant(s, groups, mode) for s in hyp_samples) / max(1, len(hyp_samples))
    return {
        "object": [object_distribution(objects[f"cal-obj|{it.item_id}"].samples, key=property_key(prop, it.target, mode))
                   for it in items],
        "sampled": [hypothetical_distribution(hypotheticals[f"cal-hyp|{it.item_id}"].samples, key=prompts.normalize)
                    for it in items],
        "logprob": [logprob_distribution(greedy[f"cal-hyp|{it.item_id}"].first_token_logprobs, key=prompts.normalize)
                    for it in items],
        "hypothetical_compliance": compliance,
    }


def mad_with_ci(object_dists: list[dict], hyp_dists: list[dict], n_bins: int, n_bootstrap: int, seed: int = 42) -> dict:
    """MAD and a percentile bootstrap CI over strings (points of one string move together)."""
    points = calibration_points(object_dists, hyp_dists)
    value = mad(points, n_bins)
    rng = np.random.default_rng(seed)
    n = len(object_dists)
    boots = []
    for _ in range(n_bootstrap if n > 1 else 0):
        idx = rng.integers(0, n, n)
        boots.append(mad(calibration_points([object_dists[i] for i in idx], [hyp_dists[i] for i in idx]), n_bins))
    boots = [b for b in boots if not np.isnan(b)]
    low, high = (float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))) if boots else (float("nan"),) * 2
    return {"mad": value, "ci_low": low, "ci_high": high, "n_points": len(points), "n_strings": n,
            "bins": binned_curve(points, n_bins)}


def run_calibration(ctx: RunContext, opts: CalibrationOptions) -> ExperimentResult:
    cfg = ctx.cfg
    plan = build_items(cfg.tasks, ctx.store, profile=ctx.profile)
    models = resolve_models(ctx)
    t_slot = opts.target
    p_slot = "m2" if t_slot == "m1" else "m1"
    target, predictor = models[t_slot], models[p_slot]
    items = calibration_items(opts, cfg.tasks.seed, cfg.tasks.get("data_dir"))
    obj_req, hyp_req = requests(opts, items)
    prop, mode = get_property(opts.property), cfg.tasks.get("compliance", "authors")
    sampled = Sampling(temperature=opts.temperature, top_p=1.0, max_tokens=opts.max_tokens,
                       n_samples=opts.n_samples, seed=cfg.inference.seed, top_logprobs=0)
    # The logprob variant reads only the first token's distribution: one greedy token, so vLLM computes
    # logprobs at that position alone (start_checks requires inference.top_logprobs >= 1 here).
    greedy = Sampling(temperature=0.0, max_tokens=1, n_samples=1, seed=cfg.inference.seed,
                      top_logprobs=cfg.inference.top_logprobs)
    train_obj = plan.object_requests(plan.train_items)

    # The models of the three setups: T, T_self, and P trained on T_self's behaviour.
    base = answer(ctx, target, {"object/train": (train_obj, False), "cal/object": (obj_req, sampled),
                                       "cal/hyp": (hyp_req, sampled), "cal/hyp_greedy": (hyp_req, greedy)})
    target_self = train_self(ctx, plan, target, base["object/train"])
    selfs = answer(ctx, target_self, {"object/train": (train_obj, False), "cal/object": (obj_req, sampled),
                                             "cal/hyp": (hyp_req, sampled), "cal/hyp_greedy": (hyp_req, greedy)})
    cross = train_cross(ctx, plan, predictor, target_self, selfs["object/train"])
    crosses = answer(ctx, cross, {"cal/hyp": (hyp_req, sampled), "cal/hyp_greedy": (hyp_req, greedy)})

    setups = {"self": (selfs, selfs), "cross": (selfs, crosses), "untrained": (base, base)}
    curves = score(ctx, calibration_curves, opts, prop, items, setups, mode)
    return ExperimentResult(models={slot: m.label for slot, m in models.items()}, weights=weights_of(models),
                            n_items={"train": len(plan.train_items), "test": len(obj_req)},
                            sections={"calibration": curves})


def calibration_curves(opts: CalibrationOptions, prop: Property, items: list[Item], setups: dict, mode: str) -> list[dict]:
    """MAD with its CI and binned curve per setup and variant (sampled, logprob)."""
    curves = []
    for name, (obj_src, hyp_src) in setups.items():
        dists = setup_distributions(prop, items, obj_src["cal/object"], hyp_src["cal/hyp"], hyp_src["cal/hyp_greedy"], mode)
        compliance = dists["hypothetical_compliance"]
        for variant in ("sampled", "logprob"):
            stats = mad_with_ci(dists["object"], dists[variant], opts.n_bins, opts.n_bootstrap)
            curves.append({"setup": f"{name} ({variant})", "kind": name, "variant": variant, "property": prop.name,
                           "hypothetical_compliance": compliance, **stats})
            log.info("calibration %s (%s), %s: MAD %.1f [%.1f, %.1f], %d points, hypothetical compliance %.0f%%", name,
                     variant, prop.name, stats["mad"], stats["ci_low"], stats["ci_high"], stats["n_points"], 100 * compliance)
    return curves


def check_logprobs(cfg: DictConfig, opts: CalibrationOptions) -> None:
    """Its start check: inference.top_logprobs is the top-k of the first generated token that the logprob variant
    reads (no other experiment asks for logprobs), so it must ask for at least one."""
    k = cfg.inference.top_logprobs
    if k < 1:
        raise ValueError(f"inference.top_logprobs={k!r} is not valid for experiment=calibration: its logprob variant "
                         "reads the first token's top-k log-probabilities; valid: an integer >= 1 (default 5)")


def render_calibration(result: ExperimentResult, run_dir: Path) -> list[str]:
    """Its report.md section: MAD per setup with its CI, and the binned curves (plots/calibration.png)."""
    curves = result.sections.get("calibration") or []
    if not curves:
        return []
    md = ["## Calibration", "", "Mean absolute deviation (MAD, percentage points) between object-level and "
          "hypothetical probabilities over 10 equal-count bins; lower is better calibrated. A setup whose "
          "hypothetical samples are rarely in the property's format (compliance) has p_hyp near 0 everywhere; "
          "its MAD then only mirrors the object-level probabilities.", "",
          "| setup | MAD | 95% CI (bootstrap over strings) | points | strings | hypothetical compliance |",
          "|---|---|---|---|---|---|"]
    md += [f"| {c['setup']} | {c['mad']:.1f} | [{c['ci_low']:.1f}, {c['ci_high']:.1f}] | {c['n_points']} | "
           f"{c['n_strings']} | {pct(c['hypothetical_compliance']) if 'hypothetical_compliance' in c else 'n/a'} |"
           for c in curves] + [""]
    plot_calibration(curves, run_dir / "plots" / "calibration.png")
    return md + ["![calibration](plots/calibration.png)", ""]


def plot_calibration(curves: list[dict], path: Path) -> None:
    """Object-level probability vs hypothetical probability, binned, one line per setup."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    for curve in curves:
        xs = [b["x_mean"] for b in curve["bins"]]
        ys = [b["y_mean"] for b in curve["bins"]]
        ax.plot(xs, ys, marker="o", label=f"{curve['setup']} (MAD {curve['mad']:.1f})")
    ax.set_xlabel("object-level probability of the behaviour")
    ax.set_ylabel("hypothetical probability")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    ax.set_title("Calibration (10 equal-count bins)")
    savefig(fig, path)


EXPERIMENT = Experiment("calibration", run_calibration, CalibrationOptions, render=render_calibration,
                        check=check_logprobs,
                        summary="sampled object-level vs hypothetical distributions: MAD for self, cross, untrained")
