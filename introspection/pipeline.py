"""The building blocks every experiment composes: locate the models, answer prompts, finetune a model on its
own behaviour (self) or on another model's (cross), score self- against cross-prediction, and run the two
models' independent steps side by side when the job has a GPU set for each.

The entry point (introspection/main.py) tells the main experiment with these steps; each module under
introspection/experiments/ tells its own. Nothing here imports an experiment or the entry point.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from omegaconf import DictConfig, OmegaConf

from introspection import devices
from introspection.analysis import scoring
from introspection.profile import Profile
from introspection.stages.adapters import finetune_model
from introspection.stages.answers import AnswerJob, run_answer_jobs, sampling_for
from introspection.stages.model_ref import ModelRef
from introspection.stages.plan import Plan, build_plan, object_values
from introspection.stages.rows import prepare_rows
from introspection.start_checks import check_models_fit
from introspection.store import Store
from introspection.types import ChatRequest, Sampling

__all__ = ["ModelRef", "Plan", "Prompts", "SideSchedule", "answer", "build_plan", "object_values", "plan_sides",
           "resolve_models", "run_per_side", "score_self_vs_cross", "train_cross", "train_self"]

log = logging.getLogger("introspection")

SLOTS = ("m1", "m2")


def other_slot(slot: str) -> str:
    return "m2" if slot == "m1" else "m1"


# --- models -------------------------------------------------------------------------------------
def resolve_models(cfg: DictConfig, store: Store, plan: Plan | None = None) -> dict[str, ModelRef]:
    """Locate (or materialise) the weights of M1 and M2, then check that they fit the run (LoRA rank; with
    the plan, the longest prompts against max_model_len) before any inference."""
    from introspection.config import ModelEntry
    from introspection.models import resolve_model

    def resolve(slot: str) -> ModelRef:
        entry = OmegaConf.to_container(cfg.model[slot], resolve=True)
        resolved = resolve_model(ModelEntry(**entry), store.root, where=f"model.{slot}")
        return ModelRef(entry["name"], entry, asdict(resolved))

    # Both at once: converting the embedded pair's GGUF files is mostly single-threaded (44 s together
    # instead of 64 s one after the other on 2 cores, docs/measurements.md); a first failure is raised
    # once both have ended, in slot order.
    with ThreadPoolExecutor(max_workers=len(SLOTS)) as pool:
        futures = {slot: pool.submit(resolve, slot) for slot in SLOTS}
    refs = {slot: future.result() for slot, future in futures.items()}
    if refs["m1"].label == refs["m2"].label:
        raise ValueError(f"model.m1.name and model.m2.name are both '{refs['m1'].label}'; give the two models distinct names")
    check_models_fit(cfg, refs, plan)
    return refs


def weights_of(models: dict[str, ModelRef]) -> dict[str, dict]:
    """Per slot, what results.json records about the weights it loaded (a hub model's commit included)."""
    from introspection.models import weights_record

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
    def of(cls, plan: Plan) -> Prompts:
        return cls(plan.object_requests(plan.train_items), plan.object_requests(plan.test_items),
                   plan.hypothetical_requests(plan.test_items))


def answer(store: Store, cfg: DictConfig, model: ModelRef, jobs: dict[str, tuple], *,
           profile: Profile | None = None) -> dict[str, dict]:
    """Run named answer jobs {name: (requests, hypothetical? or a Sampling)} for one model in one worker process."""
    built = [AnswerJob(name, requests, how if isinstance(how, Sampling) else sampling_for(cfg.inference, how))
             for name, (requests, how) in jobs.items()]
    run_answer_jobs(store, model, built, cfg.inference, profile=profile)
    return {job.name: job.answers for job in built}


def train_self(cfg: DictConfig, store: Store, plan: Plan, model: ModelRef, base_train_answers: dict, *,
               profile: Profile | None = None) -> ModelRef:
    """M -> M_self: finetuned on hypothetical prompts answered with its own behaviour's properties."""
    rows, rows_key = prepare_rows(store, plan, model, model, base_train_answers, cfg.tasks, cfg.finetune,
                                  predictor_answers=base_train_answers)
    return finetune_model(store, model, rows, rows_key, cfg.finetune, f"{model.label}[self]", profile=profile)


def train_cross(cfg: DictConfig, store: Store, plan: Plan, predictor: ModelRef, target_self: ModelRef,
                target_train_answers: dict, finetune_cfg=None, predictor_train_answers: dict | None = None, *,
                profile: Profile | None = None) -> ModelRef:
    """P -> P trained on T_self's behaviour (the cross-predictor of T_self)."""
    finetune_cfg = finetune_cfg if finetune_cfg is not None else cfg.finetune
    if finetune_cfg.object_anchor_ratio > 0 and predictor_train_answers is None:  # P's own behaviour, for anchoring
        predictor_train_answers = answer(store, cfg, predictor, {"object/train": (plan.object_requests(plan.train_items),
                                                                                  False)},
                                         profile=profile)["object/train"]
    rows, rows_key = prepare_rows(store, plan, predictor, target_self, target_train_answers, cfg.tasks, finetune_cfg,
                                  predictor_answers=predictor_train_answers)
    return finetune_model(store, predictor, rows, rows_key, finetune_cfg,
                          f"{predictor.label}[cross:{target_self.label.removesuffix('[self]')}]", profile=profile)


# --- scoring ------------------------------------------------------------------------------------
def score_self_vs_cross(experiment_cfg, plan: Plan, models: dict[str, ModelRef], self_answers: dict[str, dict],
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


# --- both sides of the pair at once ---------------------------------------------------------------
@dataclass(frozen=True)
class SideSchedule:
    """Where each model's steps run: None for one after the other in this process's devices (as on a CPU or
    one GPU), else a device set per model slot (CUDA device ids, disjoint) for running the sides at once."""

    device_sets: dict[str, list[str]] | None = None
    why: str = ""

    @property
    def concurrent(self) -> bool:
        return self.device_sets is not None


def plan_sides(cfg: DictConfig, visible: list[str] | None = None) -> SideSchedule:
    """experiment.concurrent_sides=auto: both sides at once when the job's visible CUDA devices hold a disjoint
    set of model.m1.gpus and model.m2.gpus devices (M1 takes the first ones); off, or too few devices: sequential."""
    if cfg.experiment.concurrent_sides == "off":  # its valid values are checked at start (config.CHOICES)
        return SideSchedule(None, "experiment.concurrent_sides=off")
    visible = devices.visible_devices() if visible is None else visible
    need = {slot: int(cfg.model[slot].gpus) for slot in SLOTS}
    if len(visible) < 2 or len(visible) < sum(need.values()):
        return SideSchedule(None, f"{len(visible)} visible CUDA device(s); both sides at once need "
                                  f"{need['m1']} + {need['m2']}")
    sets = {"m1": visible[: need["m1"]], "m2": visible[need["m1"]: need["m1"] + need["m2"]]}
    return SideSchedule(sets, f"M1 on CUDA devices {','.join(sets['m1'])}, M2 on {','.join(sets['m2'])}")


def run_per_side(schedule: SideSchedule, steps: list[Callable[[str], None]], slots: tuple[str, ...] = SLOTS,
                 device_slot: Callable[[str], str] = lambda slot: slot) -> None:
    """Run each step once per slot. Sequential (no device sets): step by step, each for every slot in turn.
    Concurrent: one thread per slot runs that slot's steps in order, its workers confined to the device set of
    device_slot(slot) (the model that runs there). A step reads only what its own slot's earlier steps wrote,
    so the two orders compute the same artifacts; the first failure is raised once both threads end."""
    if not schedule.concurrent:
        for step in steps:
            for slot in slots:
                step(slot)
        return

    def one_side(slot: str) -> None:
        threading.current_thread().name = f"side-{slot}"
        with devices.confined_to(schedule.device_sets[device_slot(slot)]):
            for step in steps:
                step(slot)

    with ThreadPoolExecutor(max_workers=len(slots)) as pool:
        futures = [pool.submit(one_side, slot) for slot in slots]
    for future in futures:
        future.result()  # re-raises a side's failure here, in the main thread
