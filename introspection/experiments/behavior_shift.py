"""Behaviour shift (docs/method.md §7): after its behaviour is changed, does a model's self-report
follow its new behaviour or the old one it was trained to predict?

    M   = the target after self-prediction training (T_self)
    M_c = M finetuned further on object-level prompts answered by a shift source (default: the other
          model's answers; any model slot or a JSONL of answers can be named), with no hypotheticals.

Scored on held-out items whose property value changed (both M and M_c compliant, values differ):
  old_behavior  M_c's hypothetical answers vs the property of M's object-level answer
  new_behavior  M_c's hypothetical answers vs the property of M_c's object-level answer
Both on the same items; the paired test is new minus old. Introspection predicts new >> old.
"""

from __future__ import annotations

import hashlib
import logging
import random
from dataclasses import dataclass, replace
from pathlib import Path

from introspection.analysis import scoring
from introspection.analysis.baselines import distribution_matched_indices
from introspection.analysis.stats import paired_comparison
from introspection.core.store import read_jsonl
from introspection.core.types import Answer, ChatRequest
from introspection.experiments import Experiment, ExperimentResult, model_slot
from introspection.finetune.data import sft_rows
from introspection.outputs.report import KIND_ORDER, cell_table, pyplot, savefig
from introspection.outputs.results import Cell
from introspection.paper.tasks import get_task, load_items
from introspection.pipeline.steps import (
    RunContext,
    answer,
    build_items,
    merge,
    object_values,
    resolve_models,
    score,
    train_on_rows,
    train_self,
    weights_of,
)

log = logging.getLogger(__name__)


@dataclass
class ShiftOptions:
    """experiment.options of experiment=behavior_shift (conf/experiment/behavior_shift.yaml)."""

    source: str = "m2"  # m1 | m2 (that model's base answers) | input_words | a JSONL of {"string", "answer"}
    target: str = "m1"
    n_shift_items: int = 80  # per held-out task, from its train split

    def check(self) -> None:
        model_slot(self.target, "experiment.options.target")


def input_words_answer(string: str, n_words: int = 5) -> str:
    """A synthetic, always well-formed behaviour: n words drawn (seeded by the string) from the string itself."""
    words = string.split()
    rng = random.Random(hashlib.sha256(string.encode("utf-8")).hexdigest())
    return " ".join(rng.choice(words) for _ in range(n_words))


def shift_answers(opts: ShiftOptions, ctx: RunContext, models: dict, requests: list[ChatRequest],
                  strings: dict[str, str]) -> dict[str, Answer]:
    """request id -> the shift source's object-level answer: a model slot's (its answers as answered), a JSONL
    file of answers, or "input_words" (a synthetic source for models whose partner's answers are unusable, e.g.
    a base model that only echoes the prompt: five words drawn from each item's own sequence). `strings`:
    request id -> its item's string."""
    source = opts.source
    if source in models:
        return answer(ctx, models[source], {"shift/object": (requests, False)})["shift/object"]
    if source == "input_words":
        return {r.request_id: Answer(r.request_id, input_words_answer(strings[r.request_id])) for r in requests}
    path = Path(source)
    if not path.is_file():
        raise ValueError(f"experiment.options.source '{source}' is neither a model slot (m1, m2), input_words, "
                         "nor a JSONL file")
    by_string = {}
    for row in read_jsonl(path):
        if "string" not in row or "answer" not in row:
            raise ValueError(f"{path}: every line needs 'string' and 'answer' keys, got {sorted(row)}")
        by_string[row["string"]] = row["answer"]
    out = {}
    for r in requests:
        string = strings[r.request_id]
        if string in by_string:
            out[r.request_id] = Answer(r.request_id, by_string[string])
    if not out:
        raise ValueError(f"{path}: none of its strings matches a shift item; answers are matched on 'string'")
    return out


def run_behavior_shift(ctx: RunContext, opts: ShiftOptions) -> ExperimentResult:
    cfg = ctx.cfg
    plan = build_items(cfg.tasks, ctx.store, profile=ctx.profile)
    models = resolve_models(ctx)
    target = models[opts.target]
    train_obj = plan.object_requests(plan.train_items)
    test_obj = plan.object_requests(plan.test_items)
    test_hyp = plan.hypothetical_requests(plan.test_items)

    # M: the self-trained target, and its held-out behaviour (the "old" behaviour).
    base = answer(ctx, target, {"object/train": (train_obj, False)})
    m_self = train_self(ctx, plan, target, base["object/train"])
    old = answer(ctx, m_self, {"object/test": (test_obj, False)})["object/test"]

    # The shift data: object-level prompts of the held-out tasks' TRAIN split, answered by the source.
    shift_items = [it for t in cfg.tasks.test_tasks for it in load_items(get_task(t), "train", opts.n_shift_items, cfg.tasks.seed)]
    # The string is part of the id (as it always was: the id enters the answers' key and the rows' "item_id").
    shift_requests = [replace(r, request_id=f"{r.request_id}|{it.string}")
                      for r, it in zip(plan.object_requests(shift_items), shift_items, strict=True)]
    strings = {r.request_id: it.string for r, it in zip(shift_requests, shift_items, strict=True)}
    source_answers = shift_answers(opts, ctx, models, shift_requests, strings)
    texts = {rid: (a.text or "").strip() for rid, a in source_answers.items()}
    examples = [{"prompt": r.messages, "completion": texts[r.request_id], "item_id": r.request_id,
                 "task": r.task, "property": "object"}
                for r in shift_requests if texts.get(r.request_id)]
    rows = sft_rows(examples, max_examples=cfg.finetune.max_examples, seed=cfg.finetune.seed)

    # M_c: M finetuned further on the source's behaviour; its new behaviour and its self-reports.
    m_shifted = train_on_rows(ctx, merge(ctx, m_self), rows, "shift", {"shift_source": opts.source},
                              f"{target.label}[self+shift:{opts.source}]", "shift", after=(source_answers,))
    new = answer(ctx, m_shifted, {"object/test": (test_obj, False), "hypothetical/test": (test_hyp, True)})
    cells, tests, pairs, shifted = score(ctx, shift_scores, cfg, plan, old, new, m_self.label, m_shifted.label)
    return ExperimentResult(cells=cells, paired_tests=tests, pairs=pairs, weights=weights_of(models),
                            models={slot: m.label for slot, m in models.items()} | {"shifted": m_shifted.label},
                            n_items={"train": len(plan.train_items), "test": len(plan.test_items),
                                     "shift_rows": len(rows), "shifted_keys": shifted},
                            sections={"shift": {"source": opts.source, "m_self": m_self.label}})


def shift_scores(cfg, plan, old: dict, new: dict, m_label: str, predictor: str) -> tuple[list, list, list, int]:
    """Cells, the paired test (new minus old) and the scored rows on the items whose behaviour changed, and how
    many (item, property) keys changed."""
    old_values = object_values(plan, plan.test_items, old)
    new_values = object_values(plan, plan.test_items, new["object/test"])
    shifted = {k for k, v in new_values.items() if v is not None and old_values.get(k) is not None and old_values[k] != v}
    log.info("behaviour changed on %d of %d (item, property) keys", len(shifted), len(new_values))
    keep = lambda values: {k: (v if k in shifted else None) for k, v in values.items()}  # noqa: E731
    old_rows = scoring.score_pairs(plan.test_items, plan.properties, keep(old_values), new["hypothetical/test"],
                                   predictor=predictor, target=f"{m_label} (old)", kind="old_behavior",
                                   compliance=plan.compliance)
    new_rows = scoring.score_pairs(plan.test_items, plan.properties, keep(new_values), new["hypothetical/test"],
                                   predictor=predictor, target=f"{predictor} (new)", kind="new_behavior",
                                   compliance=plan.compliance)
    new_rows, old_rows = scoring.aligned(new_rows, old_rows, cfg.experiment.noncompliant)
    cells = [scoring.cell(old_rows, old_rows, predictor=predictor, target=f"{m_label} (old)", kind="old_behavior"),
             scoring.cell(new_rows, new_rows, predictor=predictor, target=f"{predictor} (new)", kind="new_behavior")]
    test = paired_comparison([r["correct"] for r in new_rows], [r["correct"] for r in old_rows],
                             clusters=[r["item_id"] for r in new_rows])
    tests = [{"target": "new vs old behaviour", "label": f"{predictor} predicting its new vs its old behaviour",
              "self_predictor": predictor, "cross_predictor": "old behaviour",
              "noncompliant": cfg.experiment.noncompliant, **test}]
    if cfg.experiment.adjusted:
        cells += adjusted_cells(old_rows, new_rows, predictor, m_label)
    return cells, tests, old_rows + new_rows, len(shifted)


def adjusted_cells(old_rows: list[dict], new_rows: list[dict], predictor: str, m_label: str) -> list[dict]:
    """Distribution-matched variant (docs/method.md §4.4): equal marginals of object answers on both sides."""
    a_idx, b_idx = distribution_matched_indices([r["truth"] for r in old_rows], [r["truth"] for r in new_rows])
    old_m, new_m = [old_rows[i] for i in a_idx], [new_rows[i] for i in b_idx]
    return [scoring.cell(old_m, old_m, predictor=predictor, target=f"{m_label} (old, adjusted)", kind="old_behavior",
                         task="adjusted"),
            scoring.cell(new_m, new_m, predictor=predictor, target=f"{predictor} (new, adjusted)", kind="new_behavior",
                         task="adjusted")]


def render_shift(result: ExperimentResult, run_dir: Path) -> list[str]:
    """Its report.md section: accuracy against the old and the new behaviour on the same items (plots/shift.png)."""
    cells = [Cell.from_dict(c) for c in result.cells]
    rows = sorted((c for c in cells if c.is_headline and c.kind in ("old_behavior", "new_behavior")),
                  key=lambda c: KIND_ORDER[c.kind])
    if not rows:
        return []
    plot_shift(rows, run_dir / "plots" / "shift.png")
    return ["## Behaviour shift", "", "On items whose behaviour changed: does the shifted model's self-report "
            "follow its new behaviour or its old one?", "", *cell_table(rows), "", "![shift](plots/shift.png)", ""]


def plot_shift(rows: list[Cell], path: Path) -> None:
    """Accuracy against the old vs the new behaviour, on the same shifted items; the mode baseline as a tick."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    ys = [c.accuracy for c in rows]
    err = [[max(0.0, c.accuracy - c.ci_low) for c in rows], [max(0.0, c.ci_high - c.accuracy) for c in rows]]
    ax.bar(range(len(rows)), ys, yerr=err, capsize=3, color=["#999999", "#2a9d3a"][: len(rows)])
    ax.scatter(range(len(rows)), [c.mode_baseline for c in rows], marker="_", s=300, color="black", zorder=3)
    ax.set_xticks(range(len(rows)), [f"{c.kind.replace('_', ' ')}\nn={c.n}" for c in rows])
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy (black tick: mode baseline)")
    ax.set_title("Predicting old vs new behaviour")
    savefig(fig, path)


def check_target_trains_here(cfg, opts: ShiftOptions) -> None:
    """Its start check: the target trains further from its self-trained adapter merged into its weights, which a
    served model's server cannot load as a LoRA adapter (docs/api_models.md), so a served target needs the
    fine-tuning API of its endpoint (finetune=openai)."""
    entry, where = cfg.model[opts.target], f"model.{opts.target}"
    if entry.source == "server" and cfg.finetune.get("api") != "openai":
        raise ValueError(f"experiment=behavior_shift trains {where} ({entry.name}) further from its self-trained "
                         "adapter merged into its weights, which its server cannot load as a LoRA adapter; set "
                         f"experiment.options.target={opts.source} experiment.options.source={opts.target}, use "
                         f"finetune=openai, or serve the model in-process ({where}.source=local|hub|embedded)")


EXPERIMENT = Experiment("behavior_shift", run_behavior_shift, ShiftOptions, render=render_shift,
                        check=check_target_trains_here,
                        finetunes=lambda options: (options.target,),  # the source side only answers
                        summary="after a behaviour change, does the self-report follow the new or the old behaviour?")
