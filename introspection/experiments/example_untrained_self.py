"""Example experiment (docs/adding_an_experiment.md): how well does each base model, untrained, predict
properties of its own behaviour, property by property?

No finetuning: each chosen base model answers the held-out object-level prompts (its behaviour) and the
held-out hypothetical prompts (its predictions of that behaviour); every prediction is scored against
the property of its own answer, with a 95% CI, the mode baseline and compliance. The answers are the same
artifacts as the main experiment's untrained baseline, so after a cross_prediction run on the same store
this experiment loads no model.

    python -m introspection.main experiment=untrained_self
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from introspection.analysis import scoring
from introspection.experiments import Experiment, ExperimentResult, model_slot
from introspection.pipeline.steps import (
    Prompts,
    RunContext,
    answer,
    build_items,
    object_values,
    resolve_models,
    run_per_side,
    score,
)


@dataclass
class UntrainedSelfOptions:
    """experiment.options of experiment=untrained_self (conf/experiment/untrained_self.yaml)."""

    models: list[str] = field(default_factory=lambda: ["m1", "m2"])  # the model slots to score

    def check(self) -> None:
        if not self.models:
            raise ValueError("experiment.options.models is empty; valid: a list of m1 and/or m2")
        for slot in self.models:
            model_slot(slot, "experiment.options.models")


def run_untrained_self(ctx: RunContext, opts: UntrainedSelfOptions) -> ExperimentResult:
    plan = build_items(ctx.cfg.tasks, ctx.store, profile=ctx.profile)
    models = resolve_models(ctx, plan)
    prompts = Prompts.of(plan)
    answers: dict[str, dict] = {}

    def base_behaviour_and_predictions(slot: str) -> None:
        answers[slot] = answer(ctx, models[slot], {"object/test": (prompts.test_obj, False),
                                                   "hypothetical/test": (prompts.test_hyp, True)})

    slots = tuple(dict.fromkeys(opts.models))  # in the order given, each once
    run_per_side(ctx, [base_behaviour_and_predictions], slots=slots)  # both at once when the GPUs allow
    cells, pairs = score(ctx, untrained_scores, ctx.cfg, plan, models, answers, slots)
    by_property = [{k: c[k] for k in ("predictor", "property", "accuracy", "ci_low", "ci_high", "n", "mode_baseline",
                                      "compliance")}
                   for c in cells if c["task"] == "all" and c["property"] != "all"]
    return ExperimentResult(cells=cells, pairs=pairs, models={s: models[s].label for s in slots},
                            n_items={"train": 0, "test": len(plan.test_items)},
                            sections={"untrained_self": by_property})


def untrained_scores(cfg, plan, models: dict, answers: dict, slots: tuple[str, ...]) -> tuple[list, list]:
    """Each model's predictions scored against the property of its own answer: cells and scored rows."""
    cells, pairs = [], []
    for slot in slots:
        name = models[slot].label
        truth = object_values(plan, plan.test_items, answers[slot]["object/test"])
        rows = scoring.score_pairs(plan.test_items, plan.properties, truth, answers[slot]["hypothetical/test"],
                                   predictor=name, target=name, kind="untrained", compliance=plan.compliance)
        cells += scoring.score_untrained(rows, cfg.experiment.noncompliant)
        pairs += rows
    return cells, pairs


def render_untrained_self(result: ExperimentResult, run_dir: Path) -> list[str]:
    """Its report.md section: per property, each model's accuracy beside the mode baseline."""
    lines = ["## Untrained self-prediction by property", "",
             "Each base model, before any training, predicting a property of its own held-out answer. Above the mode "
             "baseline means its predictions carry information beyond always naming its most common value.", "",
             "| property | model | accuracy | 95% CI | n | mode baseline | above baseline |", "|---|---|---|---|---|---|---|"]
    for row in sorted(result.sections["untrained_self"], key=lambda r: (r["property"], r["predictor"])):
        above = "yes" if row["ci_low"] > row["mode_baseline"] else "no"
        lines.append(f"| {row['property']} | {row['predictor']} | {row['accuracy']:.1%} | "
                     f"[{row['ci_low']:.1%}, {row['ci_high']:.1%}] | {row['n']} | {row['mode_baseline']:.1%} | {above} |")
    return lines + [""]


EXPERIMENT = Experiment("untrained_self", run_untrained_self, UntrainedSelfOptions, render=render_untrained_self,
                        finetunes=lambda options: (),  # it answers only
                        summary="each base model's self-prediction accuracy per property, without training")
