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
from omegaconf import DictConfig

from introspection import config as _config  # noqa: F401  (registers the structured configs)
from introspection.cli import rewrite_model_sides, validate_cli
from introspection.errors import one_line_errors
from introspection.experiments import Experiment, ExperimentResult, NoOptions, parse_options, registry
from introspection.pipeline import (
    Plan,
    Prompts,
    answer,
    build_plan,
    other_slot,
    plan_sides,
    resolve_models,
    run_per_side,
    score_self_vs_cross,
    train_cross,
    train_self,
    weights_of,
)
from introspection.profile import Profile
from introspection.start_checks import run_start_checks
from introspection.store import Store
from introspection.tracking import log_results, print_summary, training_logging, write_results

log = logging.getLogger("introspection")


def run_cross_prediction(cfg: DictConfig, options: NoOptions, store: Store, run_dir: Path,
                         profile: Profile | None = None) -> ExperimentResult:
    plan: Plan = build_plan(cfg.tasks, store, profile=profile)
    n_items = {"train": len(plan.train_items), "test": len(plan.test_items)}
    log.info("items: %d train, %d held-out; properties: %s", n_items["train"], n_items["test"], plan.properties)
    if cfg.experiment.stop_after == "build":
        return ExperimentResult(n_items=n_items, items_per_task={
            t: sum(1 for it in plan.train_items + plan.test_items if it.task == t) for t in plan.properties})
    models = resolve_models(cfg, store, plan)
    prompts = Prompts.of(plan)
    untrained_baseline = bool(cfg.experiment.untrained_baseline)
    # The two models' steps 1-3 are independent: at once on disjoint GPU sets when the job has them, else in turn.
    schedule = plan_sides(cfg)
    log.info("steps 1-3 and 4-5 of the two models: %s (%s)", "at once" if schedule.concurrent else "in turn",
             schedule.why)
    base_answers, selfs, self_answers, cross_answers = {}, {}, {}, {}

    def base_behaviour(slot: str) -> None:  # 1. the self-training data, and the untrained baseline
        jobs = {"object/train": (prompts.train_obj, False)}
        if untrained_baseline:
            jobs |= {"object/test": (prompts.test_obj, False), "hypothetical/test": (prompts.test_hyp, True)}
        base_answers[slot] = answer(store, cfg, models[slot], jobs, profile=profile)

    def self_training(slot: str) -> None:  # 2. each model learns to predict its own behaviour
        selfs[slot] = train_self(cfg, store, plan, models[slot], base_answers[slot]["object/train"], profile=profile)

    def self_behaviour(slot: str) -> None:  # 3. ground truth and cross-training data, and the self-predictions
        self_answers[slot] = answer(store, cfg, selfs[slot], {"object/train": (prompts.train_obj, False),
                                                              "object/test": (prompts.test_obj, False),
                                                              "hypothetical/test": (prompts.test_hyp, True)}, profile=profile)

    run_per_side(schedule, [base_behaviour, self_training, self_behaviour])

    def cross_prediction(t_slot: str) -> None:  # 4-5. the other model learns T_self's behaviour, then predicts it
        p_slot = other_slot(t_slot)
        cross = train_cross(cfg, store, plan, models[p_slot], selfs[t_slot], self_answers[t_slot]["object/train"],
                            predictor_train_answers=base_answers[p_slot]["object/train"], profile=profile)
        cross_answers[t_slot] = {p_slot: answer(store, cfg, cross, {"hypothetical/test": (prompts.test_hyp, True)},
                                                profile=profile)}

    run_per_side(schedule, [cross_prediction], device_slot=other_slot)  # on the predictor's devices

    # 6. Scoring on held-out items.
    scored = score_self_vs_cross(cfg.experiment, plan, models, self_answers, cross_answers,
                                 base_answers if untrained_baseline else None)
    return ExperimentResult(**scored, models={slot: m.label for slot, m in models.items()}, n_items=n_items,
                            weights=weights_of(models))


CROSS_PREDICTION = Experiment("cross_prediction", run_cross_prediction,
                              summary="self- vs cross-prediction of each model's behaviour (the paper's main experiment)")


def experiments() -> dict[str, Experiment]:
    """experiment.name -> Experiment: this module's main experiment and every module of introspection/experiments."""
    return {CROSS_PREDICTION.name: CROSS_PREDICTION, **registry()}


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
    experiment = known[name]
    options = parse_options(experiment, cfg.experiment.options)  # typed; a bad option fails before any model work
    store = Store(cfg.store_dir)
    run_profile = Profile()  # each stage it is given to adds its wall, tokens and memory: results.json "profile"
    log.info("run folder %s; artifact store %s", run_dir, store.root)
    unused = set(cfg.finetune.learning_rate_by_model) - {cfg.model.m1.name, cfg.model.m2.name}
    if unused:  # allowed (one finetune config may serve several pairs), but never silent
        log.warning("finetune.learning_rate_by_model names %s, neither of this pair's models (%s, %s): ignored",
                    sorted(unused), cfg.model.m1.name, cfg.model.m2.name)
    with training_logging(cfg, run_dir):  # logger.log_training: finetune curves to this run's W&B project and group
        result = experiment.run(cfg, options, store, run_dir, run_profile)
    if experiment.render is not None:  # the experiment's own section of report.md
        result.report = experiment.render(result, run_dir)
    results = result.as_dict()
    results["store"] = store.counts()
    results["profile"] = run_profile.summary()
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
