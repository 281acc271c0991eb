"""Calibration (METHOD.md section 6): does the predicted distribution over a property match the
distribution of the model's actual behaviour?

For each held-out string, the object-level prompt (single-animal variant) and the hypothetical
second_character question are each sampled n times at temperature 1. Points (p_obj(c), p_hyp(c)) for
the top-3 behaviours c are pooled, binned into 10 equal-count bins, and summarised by the mean
absolute deviation (MAD, percentage points). Setups, for target T (default M1):
  self       object T_self,  hypothetical T_self
  cross      object T_self,  hypothetical P trained on T_self's behaviour
  untrained  object T,       hypothetical T
plus, for each setup, the logprob variant: the hypothetical's first-token distribution at temperature 0.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from introspection import prompts
from introspection.analysis.calibration import (
    binned_curve,
    calibration_points,
    hypothetical_distribution,
    logprob_distribution,
    mad,
    object_distribution,
)
from introspection.compliance import hypothetical_groups, is_compliant
from introspection.properties import get_property
from introspection.store import Store
from introspection.tasks import get_task, load_items
from introspection.types import ChatRequest, Sampling

log = logging.getLogger(__name__)

DEFAULTS = {"task": "animals_single", "property": "second_character", "n_strings": 60, "n_samples": 20,
            "temperature": 1.0, "max_tokens": 3, "target": "m1", "n_bins": 10, "n_bootstrap": 200}


def options(cfg: DictConfig) -> dict:
    opts = {**DEFAULTS, **dict(cfg.experiment.options)}
    unknown = set(opts) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown experiment.options {sorted(unknown)} for calibration; valid: {', '.join(DEFAULTS)}")
    if opts["target"] not in ("m1", "m2"):
        raise ValueError(f"experiment.options.target '{opts['target']}' is not a model slot; valid: m1, m2")
    return opts


def requests(opts: dict, seed: int) -> tuple[list[ChatRequest], list[ChatRequest]]:
    """Object and hypothetical requests without the system message (as the paper's calibration runs)."""
    task, prop = get_task(opts["task"]), get_property(opts["property"])
    items = load_items(task, "val", opts["n_strings"], seed)
    strip = lambda msgs: [m for m in msgs if m["role"] != "system"]  # noqa: E731
    obj = [ChatRequest(f"cal-obj|{it.item_id}", strip(prompts.object_messages(task, it.string))) for it in items]
    hyp = [ChatRequest(f"cal-hyp|{it.item_id}", strip(prompts.hypothetical_messages(task, prop, it.string))) for it in items]
    return obj, hyp


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


def run_calibration(cfg: DictConfig, store: Store, run_dir: Path) -> dict:
    from introspection.main import answer, build_plan, resolve_models, train_cross, train_self

    opts = options(cfg)
    plan = build_plan(cfg.tasks, store)
    models = resolve_models(cfg, store)
    t_slot = opts["target"]
    p_slot = "m2" if t_slot == "m1" else "m1"
    target, predictor = models[t_slot], models[p_slot]
    obj_req, hyp_req = requests(opts, cfg.tasks.seed)
    sampled = Sampling(temperature=opts["temperature"], top_p=1.0, max_tokens=opts["max_tokens"],
                       n_samples=opts["n_samples"], seed=cfg.inference.seed, top_logprobs=0)
    greedy = Sampling(temperature=0.0, max_tokens=opts["max_tokens"], n_samples=1, seed=cfg.inference.seed,
                      top_logprobs=max(5, cfg.inference.top_logprobs))
    train_obj = plan.object_requests(plan.train_items)

    # The models of the three setups: T, T_self, and P trained on T_self's behaviour.
    base = answer(store, cfg, target, {"object/train": (train_obj, False), "cal/object": (obj_req, sampled),
                                       "cal/hyp": (hyp_req, sampled), "cal/hyp_greedy": (hyp_req, greedy)})
    target_self = train_self(cfg, store, plan, target, base["object/train"])
    selfs = answer(store, cfg, target_self, {"object/train": (train_obj, False), "cal/object": (obj_req, sampled),
                                             "cal/hyp": (hyp_req, sampled), "cal/hyp_greedy": (hyp_req, greedy)})
    cross = train_cross(cfg, store, plan, predictor, target_self, selfs["object/train"])
    crosses = answer(store, cfg, cross, {"cal/hyp": (hyp_req, sampled), "cal/hyp_greedy": (hyp_req, greedy)})

    setups = {"self": (selfs, selfs), "cross": (selfs, crosses), "untrained": (base, base)}
    groups = hypothetical_groups(get_property(opts["property"]))
    curves = []
    for name, (obj_src, hyp_src) in setups.items():
        ids = [r.request_id.split("|", 1)[1] for r in obj_req]
        # A predictor that never answers in the format puts p_hyp = 0 everywhere, and its MAD then only
        # mirrors the object-level probabilities: report how often its samples were answers at all.
        hyp_samples = [s for i in ids for s in hyp_src["cal/hyp"][f"cal-hyp|{i}"].samples]
        compliance = sum(s is not None and is_compliant(s, groups) for s in hyp_samples) / max(1, len(hyp_samples))
        obj_dists = [object_distribution(obj_src["cal/object"][f"cal-obj|{i}"].samples) for i in ids]
        sampled_hyp = [hypothetical_distribution(hyp_src["cal/hyp"][f"cal-hyp|{i}"].samples) for i in ids]
        logprob_hyp = [logprob_distribution(hyp_src["cal/hyp_greedy"][f"cal-hyp|{i}"].first_token_logprobs) for i in ids]
        for variant, hyp_dists in (("sampled", sampled_hyp), ("logprob", logprob_hyp)):
            stats = mad_with_ci(obj_dists, hyp_dists, opts["n_bins"], opts["n_bootstrap"])
            curves.append({"setup": f"{name} ({variant})", "kind": name, "variant": variant,
                           "hypothetical_compliance": compliance, **stats})
            log.info("calibration %s (%s): MAD %.1f [%.1f, %.1f], %d points, hypothetical compliance %.0f%%", name,
                     variant, stats["mad"], stats["ci_low"], stats["ci_high"], stats["n_points"], 100 * compliance)
    return {"cells": [], "pairs": [], "calibration": curves, "models": {slot: m.label for slot, m in models.items()},
            "n_items": {"train": len(plan.train_items), "test": len(obj_req)}}
