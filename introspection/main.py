"""The experiment, top to bottom: does a model predict its own behaviour better than another model
trained on that same behaviour?  (Binder et al., 2024, "Looking Inward")

    python -m introspection.main                                   # embedded demo models on CPU
    python -m introspection.main model=llama3_70b tasks=all -m     # a sweep

For targets T and predictors P (the two models of `model=`):
  1. each base model answers the object-level prompts of the train tasks (and, for the untrained
     baseline, the held-out object and hypothetical prompts);
  2. each model is finetuned on its own behaviour: hypothetical prompt -> property of its answer (T_self);
  3. each T_self answers the object-level prompts (train and held-out) and the held-out hypotheticals;
  4. every other model P is finetuned on T_self's train behaviour (P trained on T_self = cross);
  5. each cross-predictor answers the held-out hypotheticals;
  6. scoring: on held-out items, T_self's self-prediction vs P's cross-prediction of T_self's behaviour,
     on identical items, with CIs, mode baselines and a paired test.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from introspection import config as _config  # noqa: F401  (registers the structured configs)
from introspection.analysis import scoring
from introspection.cli import rewrite_model_sides, validate_cli
from introspection.errors import one_line_errors
from introspection.stages import (
    AnswerJob,
    ModelRef,
    Plan,
    build_plan,
    finetune_model,
    object_values,
    prepare_rows,
    run_answer_jobs,
    sampling_for,
)
from introspection.start_checks import check_models_fit, run_start_checks
from introspection.store import Store
from introspection.tracking import log_results, print_summary, training_logging, write_results
from introspection.types import Sampling

log = logging.getLogger("introspection")


def resolve_models(cfg: DictConfig, store: Store, plan: Plan | None = None) -> dict[str, ModelRef]:
    """Locate (or materialise) the weights of M1 and M2, then check that they fit the run (LoRA rank; with
    the plan, the longest prompts against max_model_len) before any inference."""
    from dataclasses import asdict

    from introspection.config import ModelEntry
    from introspection.models import resolve_model

    refs = {}
    for slot in ("m1", "m2"):
        entry = OmegaConf.to_container(cfg.model[slot], resolve=True)
        resolved = resolve_model(ModelEntry(**entry), store.root, where=f"model.{slot}")
        refs[slot] = ModelRef(entry["name"], entry, asdict(resolved))
    if refs["m1"].label == refs["m2"].label:
        raise ValueError(f"model.m1.name and model.m2.name are both '{refs['m1'].label}'; give the two models distinct names")
    check_models_fit(cfg, refs, plan)
    return refs


def answer(store: Store, cfg: DictConfig, model: ModelRef, jobs: dict[str, tuple]) -> dict[str, dict]:
    """Run named answer jobs {name: (requests, hypothetical? or a Sampling)} for one model in one worker process."""
    built = [AnswerJob(name, requests, how if isinstance(how, Sampling) else sampling_for(cfg.inference, how))
             for name, (requests, how) in jobs.items()]
    run_answer_jobs(store, model, built, cfg.inference)
    return {job.name: job.answers for job in built}


def train_self(cfg: DictConfig, store: Store, plan: Plan, model: ModelRef, base_train_answers: dict) -> ModelRef:
    """M -> M_self: finetuned on hypothetical prompts answered with its own behaviour's properties."""
    rows, rows_key = prepare_rows(store, plan, model, model, base_train_answers, cfg.tasks, cfg.finetune,
                                  predictor_answers=base_train_answers)
    return finetune_model(store, model, rows, rows_key, cfg.finetune, f"{model.label}[self]")


def train_cross(cfg: DictConfig, store: Store, plan: Plan, predictor: ModelRef, target_self: ModelRef,
                target_train_answers: dict, finetune_cfg=None, predictor_train_answers: dict | None = None) -> ModelRef:
    """P -> P trained on T_self's behaviour (the cross-predictor of T_self)."""
    finetune_cfg = finetune_cfg if finetune_cfg is not None else cfg.finetune
    if finetune_cfg.object_anchor_ratio > 0 and predictor_train_answers is None:  # P's own behaviour, for anchoring
        predictor_train_answers = answer(store, cfg, predictor, {"object/train": (plan.object_requests(plan.train_items),
                                                                                  False)})["object/train"]
    rows, rows_key = prepare_rows(store, plan, predictor, target_self, target_train_answers, cfg.tasks, finetune_cfg,
                                  predictor_answers=predictor_train_answers)
    return finetune_model(store, predictor, rows, rows_key, finetune_cfg,
                          f"{predictor.label}[cross:{target_self.label.removesuffix('[self]')}]")


def run_cross_prediction(cfg: DictConfig, store: Store, run_dir: Path) -> dict:
    plan: Plan = build_plan(cfg.tasks, store)
    log.info("items: %d train, %d held-out; properties: %s", len(plan.train_items), len(plan.test_items), plan.properties)
    if cfg.experiment.stop_after == "build":
        return {"cells": [], "pairs": [], "n_items": {"train": len(plan.train_items), "test": len(plan.test_items)},
                "tasks": {t: sum(1 for it in plan.train_items + plan.test_items if it.task == t) for t in plan.properties}}
    models = resolve_models(cfg, store, plan)
    train_obj = plan.object_requests(plan.train_items)
    test_obj = plan.object_requests(plan.test_items)
    test_hyp = plan.hypothetical_requests(plan.test_items)

    # 1. Base behaviour: the self-training data, and the untrained baseline.
    base_answers = {}
    for slot, model in models.items():
        jobs = {"object/train": (train_obj, False)}
        if cfg.experiment.untrained_baseline:
            jobs |= {"object/test": (test_obj, False), "hypothetical/test": (test_hyp, True)}
        base_answers[slot] = answer(store, cfg, model, jobs)

    # 2. Self-training: each model learns to predict its own behaviour.
    selfs = {slot: train_self(cfg, store, plan, m, base_answers[slot]["object/train"]) for slot, m in models.items()}

    # 3. The self-trained models' behaviour (ground truth and cross-training data) and self-predictions.
    self_answers = {slot: answer(store, cfg, m, {"object/train": (train_obj, False), "object/test": (test_obj, False),
                                                 "hypothetical/test": (test_hyp, True)}) for slot, m in selfs.items()}

    # 4-5. Cross-training: every other model learns T_self's behaviour, then predicts it.
    cross_answers: dict[str, dict[str, dict]] = {}  # target slot -> predictor slot -> answers
    for t_slot, target in selfs.items():
        for p_slot, predictor in models.items():
            if p_slot != t_slot:
                cross = train_cross(cfg, store, plan, predictor, target, self_answers[t_slot]["object/train"],
                                    predictor_train_answers=base_answers[p_slot]["object/train"])
                cross_answers.setdefault(t_slot, {})[p_slot] = answer(store, cfg, cross, {"hypothetical/test": (test_hyp, True)})

    # 6. Scoring on held-out items.
    pairs, cells, tests, alternative = [], [], [], []
    for t_slot in selfs:
        name = models[t_slot].label
        truth = object_values(plan, plan.test_items, self_answers[t_slot]["object/test"])
        self_rows = scoring.score_pairs(plan.test_items, plan.properties, truth, self_answers[t_slot]["hypothetical/test"],
                                        predictor=name, target=name, kind="self", compliance=plan.compliance)
        cross_rows = {models[p].label: scoring.score_pairs(plan.test_items, plan.properties, truth, ans["hypothetical/test"],
                                                           predictor=models[p].label, target=name, kind="cross",
                                                           compliance=plan.compliance)
                      for p, ans in cross_answers[t_slot].items()}
        scored = scoring.score_target(self_rows, cross_rows, cfg.experiment.noncompliant)
        cells += scored["cells"]
        tests += scored["paired_tests"]
        # The other treatment of non-compliant predictions, reported beside the chosen one.
        other = scoring.score_target(self_rows, cross_rows, scoring.other_treatment(cfg.experiment.noncompliant))
        alternative += [c | {"noncompliant": other["paired_tests"][0]["noncompliant"]} for c in other["cells"]
                        if c["task"] == c["property"] == "all"]
        pairs += self_rows + [r for rows in cross_rows.values() for r in rows]
        if cfg.experiment.untrained_baseline:
            base_truth = object_values(plan, plan.test_items, base_answers[t_slot]["object/test"])
            untrained = scoring.score_pairs(plan.test_items, plan.properties, base_truth,
                                            base_answers[t_slot]["hypothetical/test"], predictor=name, target=name,
                                            kind="untrained", compliance=plan.compliance)
            cells += scoring.score_untrained(untrained, cfg.experiment.noncompliant)
            pairs += untrained
            if cfg.experiment.adjusted:  # untrained vs self-trained with equal behaviour distributions (docs/method.md §4.4)
                cells += scoring.distribution_matched(untrained, self_rows, cfg.experiment.noncompliant)
    return {"cells": cells, "paired_tests": tests, "pairs": pairs, "alternative_treatment": alternative,
            "models": {slot: m.label for slot, m in models.items()},
            "n_items": {"train": len(plan.train_items), "test": len(plan.test_items)}}


def experiments() -> dict:
    """experiment.name -> the function that runs it (the others reuse this module's steps)."""
    from introspection.experiments.behavior_shift import run_behavior_shift
    from introspection.experiments.calibration import run_calibration
    from introspection.experiments.scaling import run_scaling

    return {"cross_prediction": run_cross_prediction, "calibration": run_calibration,
            "behavior_shift": run_behavior_shift, "scaling": run_scaling}


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
@one_line_errors  # bad input, missing files, a full disk: `error: <one line>` and exit code 2
def main(cfg: DictConfig) -> float | None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    run_start_checks(cfg)  # config, task data, GPUs and weights: one line in seconds, before any model or data work
    _config.apply_seed(cfg)  # top-level `seed` offsets tasks/inference/finetune seeds (0: every key as before)
    if cfg.experiment.stop_after == "plan":  # the pre-flight plan: counts and GPU-hours, no model loads
        from introspection.preflight import run_plan

        return run_plan(cfg, run_dir)
    name, known = cfg.experiment.name, experiments()
    if name not in known:
        raise ValueError(f"unknown experiment.name '{name}'; valid: {', '.join(known)}")
    store = Store(cfg.store_dir)
    log.info("run folder %s; artifact store %s", run_dir, store.root)
    unused = set(cfg.finetune.learning_rate_by_model) - {cfg.model.m1.name, cfg.model.m2.name}
    if unused:  # allowed (one finetune config may serve several pairs), but never silent
        log.warning("finetune.learning_rate_by_model names %s, neither of this pair's models (%s, %s): ignored",
                    sorted(unused), cfg.model.m1.name, cfg.model.m2.name)
    with training_logging(cfg, run_dir):  # logger.log_training: finetune curves to this run's W&B project and group
        results = known[name](cfg, store, run_dir)
    results["store"] = {"computed": store.computed, "reused": store.reused, "worker_runs": store.worker_runs}
    write_results(results, cfg, run_dir)
    print_summary(results, run_dir)
    log_results(results, cfg, run_dir)
    self_cells = [c for c in results["cells"] if c["kind"] == "self" and c["task"] == c["property"] == "all"]
    return float(sum(c["accuracy"] for c in self_cells) / len(self_cells)) if self_cells else None


def entry() -> None:
    sys.argv[1:] = rewrite_model_sides(sys.argv[1:])  # model.m1=NAME -> model/llm@model.m1=NAME
    validate_cli(sys.argv[1:])  # one-line errors for bad group options, keys and values
    main()


if __name__ == "__main__":
    entry()
