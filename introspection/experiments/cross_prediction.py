"""Self- vs cross-prediction (the paper's main experiment; introspection/main.py tells it in words).

For targets T and predictors P (the two models of `model=`), each step numbered as in main.py's docstring:
  1. each base model answers the train tasks' object-level prompts (and, for the untrained baseline, the
     held-out object-level and hypothetical prompts);
  2. each model is finetuned on its own behaviour: hypothetical prompt -> property of its answer (T_self);
  3. each T_self answers the object-level prompts (train and held-out) and the held-out hypotheticals;
  4. every other model P is finetuned on T_self's train behaviour (P trained on T_self = cross);
  5. each cross-predictor answers the held-out hypotheticals;
  6. scoring on held-out items: T_self's self-prediction vs P's cross-prediction, on identical items.
"""

from __future__ import annotations

import logging

from introspection.experiments import Experiment, ExperimentResult, NoOptions
from introspection.pipeline.steps import (
    Prompts,
    RunContext,
    answer,
    build_items,
    other_slot,
    resolve_models,
    run_per_side,
    schedule_sides,
    score,
    score_self_vs_cross,
    train_cross,
    train_self,
    weights_of,
)

log = logging.getLogger("introspection")


def run_cross_prediction(ctx: RunContext, options: NoOptions) -> ExperimentResult:
    cfg = ctx.cfg
    plan = build_items(cfg.tasks, ctx.store, profile=ctx.profile)
    n_items = {"train": len(plan.train_items), "test": len(plan.test_items)}
    log.info("items: %d train, %d held-out; properties: %s", n_items["train"], n_items["test"], plan.properties)
    if cfg.experiment.stop_after == "build":
        return ExperimentResult(n_items=n_items, items_per_task={
            t: sum(1 for it in plan.train_items + plan.test_items if it.task == t) for t in plan.properties})
    models = resolve_models(ctx, plan)
    prompts = Prompts.of(plan)
    untrained_baseline = bool(cfg.experiment.untrained_baseline)
    # The two models' steps 1-3 are independent: at once on disjoint GPU sets when the job has them, else in turn.
    schedule = schedule_sides(cfg)
    log.info("steps 1-3 and 4-5 of the two models: %s (%s)", "at once" if schedule.concurrent else "in turn",
             schedule.why)
    base_answers, selfs, self_answers, cross_answers = {}, {}, {}, {}

    def base_behaviour(slot: str) -> None:  # 1. the self-training data, and the untrained baseline
        jobs = {"object/train": (prompts.train_obj, False)}
        if untrained_baseline:
            jobs |= {"object/test": (prompts.test_obj, False), "hypothetical/test": (prompts.test_hyp, True)}
        base_answers[slot] = answer(ctx, models[slot], jobs)

    def self_training(slot: str) -> None:  # 2. each model learns to predict its own behaviour
        selfs[slot] = train_self(ctx, plan, models[slot], base_answers[slot]["object/train"])

    def self_behaviour(slot: str) -> None:  # 3. ground truth and cross-training data, and the self-predictions
        self_answers[slot] = answer(ctx, selfs[slot], {"object/train": (prompts.train_obj, False),
                                                       "object/test": (prompts.test_obj, False),
                                                       "hypothetical/test": (prompts.test_hyp, True)})

    run_per_side(ctx, [base_behaviour, self_training, self_behaviour])

    def cross_prediction(t_slot: str) -> None:  # 4-5. the other model learns T_self's behaviour, then predicts it
        p_slot = other_slot(t_slot)
        cross = train_cross(ctx, plan, models[p_slot], selfs[t_slot], self_answers[t_slot]["object/train"],
                            predictor_train_answers=base_answers[p_slot]["object/train"])
        cross_answers[t_slot] = {p_slot: answer(ctx, cross, {"hypothetical/test": (prompts.test_hyp, True)})}

    run_per_side(ctx, [cross_prediction], device_slot=other_slot)  # on the predictor's devices

    # 6. Scoring on held-out items.
    scored = score(ctx, score_self_vs_cross, cfg.experiment, plan, models, self_answers, cross_answers,
                   base_answers if untrained_baseline else None)
    return ExperimentResult(**scored, models={slot: m.label for slot, m in models.items()}, n_items=n_items,
                            weights=weights_of(models))


EXPERIMENT = Experiment("cross_prediction", run_cross_prediction,
                        summary="self- vs cross-prediction of each model's behaviour (the paper's main experiment)")
