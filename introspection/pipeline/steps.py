"""The building blocks every experiment composes: locate the models, answer prompts, finetune a model on its
own behaviour (self) or on another model's (cross), run the two models' independent steps side by side, and
score. Each model step goes through the executor of the run's context (introspection/pipeline/run_context.py): the
local one does the work (introspection/pipeline/executor.py); the pre-flight plan's records the step and answers with
placeholders (introspection/preflight/recorder.py), so `experiment.stop_after=plan` is the experiment's own steps.
An experiment scores through `score(ctx, ...)`, which the plan's executor stops at: placeholders are not scored.

Each module under introspection/experiments/ tells its experiment with these steps. Nothing here imports an
experiment or the entry point.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from introspection.analysis import scoring
from introspection.core.types import ChatRequest
from introspection.pipeline.executor import SLOTS, SideSchedule, schedule_sides
from introspection.pipeline.run_context import RunContext
from introspection.stages.items import ItemSet, build_items, object_values
from introspection.stages.model_ref import ModelRef

__all__ = ["SLOTS", "ModelRef", "ItemSet", "Prompts", "RunContext", "SideSchedule", "answer", "build_items", "merge",
           "object_values", "other_slot", "schedule_sides", "resolve_models", "run_per_side", "score",
           "score_self_vs_cross", "train_cross", "train_on_rows", "train_self", "weights_of"]

log = logging.getLogger("introspection")


def other_slot(slot: str) -> str:
    return "m2" if slot == "m1" else "m1"


# --- models -------------------------------------------------------------------------------------
def resolve_models(ctx: RunContext, plan: ItemSet | None = None) -> dict[str, ModelRef]:
    """M1 and M2 located (or converted), checked against the run (LoRA rank; with the plan, the longest prompts
    against max_model_len) before any inference."""
    return ctx.executor.resolve_models(ctx, plan)


def weights_of(models: dict[str, ModelRef]) -> dict[str, dict]:
    """Per slot, what results.json records about the weights it loaded (a hub model's commit included)."""
    from introspection.weights.resolve import weights_record

    return {slot: weights_record(model.resolved) for slot, model in models.items()}


# --- answering and finetuning -------------------------------------------------------------------
@dataclass(frozen=True)
class Prompts:
    """The requests of the main experiment: object-level prompts of the train and held-out items, and the
    hypothetical prompts (one per item and property) of the held-out items."""

    train_obj: list[ChatRequest]
    test_obj: list[ChatRequest]
    test_hyp: list[ChatRequest]

    @classmethod
    def of(cls, plan: ItemSet) -> Prompts:
        return cls(plan.object_requests(plan.train_items), plan.object_requests(plan.test_items),
                   plan.hypothetical_requests(plan.test_items))


def answer(ctx: RunContext, model: ModelRef, jobs: dict[str, tuple]) -> dict[str, dict]:
    """Run named answer jobs {name: (requests, hypothetical? or a Sampling)} for one model in one worker process."""
    return ctx.executor.answer(ctx, model, jobs)


def train_self(ctx: RunContext, plan: ItemSet, model: ModelRef, base_train_answers: dict) -> ModelRef:
    """M -> M_self: finetuned on hypothetical prompts answered with its own behaviour's properties."""
    return ctx.executor.train(ctx, plan, model, model, base_train_answers, ctx.cfg.finetune, base_train_answers,
                              f"{model.label}[self]", "self")


def train_cross(ctx: RunContext, plan: ItemSet, predictor: ModelRef, target_self: ModelRef, target_train_answers: dict,
                finetune_cfg=None, predictor_train_answers: dict | None = None) -> ModelRef:
    """P -> P trained on T_self's behaviour (the cross-predictor of T_self)."""
    finetune_cfg = finetune_cfg if finetune_cfg is not None else ctx.cfg.finetune
    if finetune_cfg.object_anchor_ratio > 0 and predictor_train_answers is None:  # P's own behaviour, for anchoring
        predictor_train_answers = answer(ctx, predictor, {"object/train": (plan.object_requests(plan.train_items),
                                                                           False)})["object/train"]
    return ctx.executor.train(ctx, plan, predictor, target_self, target_train_answers, finetune_cfg,
                              predictor_train_answers,
                              f"{predictor.label}[cross:{target_self.label.removesuffix('[self]')}]", "cross")


def train_on_rows(ctx: RunContext, base: ModelRef, rows: list[dict], rows_kind: str, info: dict, label: str,
                  kind: str, after: tuple = ()) -> ModelRef:
    """`base` finetuned on rows the experiment built (finetune.data.sft_rows); `rows_kind` enters their key,
    `kind` names the finetune in the plan, `after` holds the answers the rows came from."""
    return ctx.executor.train_on_rows(ctx, base, rows, rows_kind, info, label, kind, after)


def merge(ctx: RunContext, model: ModelRef) -> ModelRef:
    """A finetuned model as a new base: its adapter merged into its weights."""
    return ctx.executor.merge(ctx, model)


def run_per_side(ctx: RunContext, steps: list[Callable[[str], None]], slots: tuple[str, ...] = SLOTS,
                 device_slot: Callable[[str], str] = lambda slot: slot) -> None:
    """Run each step once per slot: both sides at once on disjoint GPU sets when the job has them
    (schedule_sides, experiment.concurrent_sides), else step by step, each for every slot in turn. device_slot(slot):
    the model whose devices that slot's steps run on. A step reads only what its own slot's earlier steps wrote."""
    ctx.executor.run_per_side(ctx, steps, slots, device_slot)


def score(ctx: RunContext, fn: Callable, *args, **kwargs):
    """fn(*args, **kwargs): an experiment's scoring of its answers. The plan's executor stops the experiment here
    (every model step is recorded by then; placeholder answers are not scored)."""
    return ctx.executor.score(fn, *args, **kwargs)


# --- scoring ------------------------------------------------------------------------------------
def score_self_vs_cross(experiment_cfg, plan: ItemSet, models: dict[str, ModelRef], self_answers: dict[str, dict],
                        cross_answers: dict[str, dict[str, dict]], base_answers: dict[str, dict] | None = None) -> dict:
    """Held-out scoring of every target T: T_self's self-prediction vs each P's cross-prediction of T_self's
    behaviour on identical items, with the other treatment of non-compliant answers beside it and, given the
    base models' answers, the untrained baseline (and its distribution-matched variant with
    experiment.adjusted). Returns cells, paired_tests, alternative_treatment and pairs (the scored items).

    self_answers[t] and base_answers[t] hold "object/test" and "hypothetical/test"; cross_answers[t][p] holds
    P's "hypothetical/test" answers after training on T_self's behaviour."""
    noncompliant = experiment_cfg.noncompliant
    pairs, cells, tests, alternative = [], [], [], []
    for t_slot in models:
        if t_slot not in self_answers:
            continue
        name = models[t_slot].label
        truth = object_values(plan, plan.test_items, self_answers[t_slot]["object/test"])
        self_rows = scoring.score_pairs(plan.test_items, plan.properties, truth, self_answers[t_slot]["hypothetical/test"],
                                        predictor=name, target=name, kind="self", compliance=plan.compliance)
        cross_rows = {models[p].label: scoring.score_pairs(plan.test_items, plan.properties, truth, ans["hypothetical/test"],
                                                           predictor=models[p].label, target=name, kind="cross",
                                                           compliance=plan.compliance)
                      for p, ans in cross_answers[t_slot].items()}
        scored = scoring.score_target(self_rows, cross_rows, noncompliant)
        cells += scored["cells"]
        tests += scored["paired_tests"]
        # The other treatment of non-compliant predictions, reported beside the chosen one.
        other = scoring.score_target(self_rows, cross_rows, scoring.other_treatment(noncompliant))
        alternative += [c | {"noncompliant": other["paired_tests"][0]["noncompliant"]} for c in other["cells"]
                        if c["task"] == c["property"] == "all"]
        pairs += self_rows + [r for rows in cross_rows.values() for r in rows]
        if base_answers is not None:
            base_truth = object_values(plan, plan.test_items, base_answers[t_slot]["object/test"])
            untrained = scoring.score_pairs(plan.test_items, plan.properties, base_truth,
                                            base_answers[t_slot]["hypothetical/test"], predictor=name, target=name,
                                            kind="untrained", compliance=plan.compliance)
            cells += scoring.score_untrained(untrained, noncompliant)
            pairs += untrained
            if experiment_cfg.adjusted:  # untrained vs self-trained with equal behaviour distributions (docs/method.md §4.4)
                cells += scoring.distribution_matched(untrained, self_rows, noncompliant)
    return {"cells": cells, "paired_tests": tests, "alternative_treatment": alternative, "pairs": pairs}
