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
from functools import partial
from pathlib import Path

from omegaconf import DictConfig

from introspection import prompts
from introspection.analysis import scoring
from introspection.analysis.baselines import distribution_matched_indices
from introspection.analysis.stats import paired_comparison
from introspection.experiments import Experiment, ExperimentResult, model_slot
from introspection.finetune.data import sft_rows, write_rows
from introspection.inference.lora import merge_dtype, merged_folder_ready
from introspection.pipeline import answer, build_plan, resolve_models, train_self, weights_of
from introspection.profile import Profile
from introspection.stages.adapters import finetune_model
from introspection.stages.model_ref import ModelRef
from introspection.stages.plan import object_values
from introspection.stages.worker_runs import run_in_subprocess
from introspection.store import Store, digest, read_jsonl
from introspection.tasks import get_task, load_items
from introspection.types import ChatRequest

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


def shift_answers(opts: ShiftOptions, store: Store, cfg: DictConfig, models: dict, requests: list[ChatRequest],
                  strings: dict[str, str], answer) -> dict[str, str]:
    """request id -> the shift source's object-level answer: a model slot, a JSONL file of answers, or
    "input_words" (a synthetic source for models whose partner's answers are unusable, e.g. a base model
    that only echoes the prompt: five words drawn from each item's own sequence). `strings`: request id ->
    its item's string."""
    source = opts.source
    if source in models:
        got = answer(store, cfg, models[source], {"shift/object": (requests, False)})["shift/object"]
        return {rid: a.text for rid, a in got.items() if a.text}
    if source == "input_words":
        return {r.request_id: input_words_answer(strings[r.request_id]) for r in requests}
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
            out[r.request_id] = by_string[string]
    if not out:
        raise ValueError(f"{path}: none of its strings matches a shift item; answers are matched on 'string'")
    return out


def continue_from(store: Store, model: ModelRef) -> ModelRef:
    """A finetuned model as a new base: its adapter merged into the weights (in a worker process), in the
    model entry's dtype on the side's GPUs where it has them (lora.merge_adapter), float32 on a CPU."""
    from introspection.devices import visible_devices
    from introspection.worker import merge_worker

    out_dir = store.root / "merged" / model.fingerprint[:24]
    revision = model.resolved.get("revision")  # a hub base: the commit its key names
    dtype = merge_dtype(model.entry.get("dtype", "auto"), on_gpu=bool(visible_devices()))
    if not merged_folder_ready(model.resolved["path"], model.adapter_dir, out_dir, dtype=dtype, revision=revision):
        run_in_subprocess(store, merge_worker, {"base_path": model.resolved["path"], "adapter_dir": model.adapter_dir,
                                                "out_dir": str(out_dir), "dtype": dtype, "revision": revision},
                          f"merging {model.label}")
    # A local folder now: no hub revision to load it at (its fingerprint still names the commit it came from).
    resolved = {**model.resolved, "path": str(out_dir), "fingerprint": model.fingerprint, "revision": None}
    return ModelRef(model.label, model.entry, resolved)


def run_behavior_shift(cfg: DictConfig, opts: ShiftOptions, store: Store, run_dir: Path,
                       profile: Profile | None = None) -> ExperimentResult:
    plan = build_plan(cfg.tasks, store, profile=profile)
    models = resolve_models(cfg, store)
    target = models[opts.target]
    train_obj = plan.object_requests(plan.train_items)
    test_obj = plan.object_requests(plan.test_items)
    test_hyp = plan.hypothetical_requests(plan.test_items)

    # M: the self-trained target, and its held-out behaviour (the "old" behaviour).
    base = answer(store, cfg, target, {"object/train": (train_obj, False)}, profile=profile)
    m_self = train_self(cfg, store, plan, target, base["object/train"], profile=profile)
    old = answer(store, cfg, m_self, {"object/test": (test_obj, False)}, profile=profile)["object/test"]

    # The shift data: object-level prompts of the held-out tasks' TRAIN split, answered by the source.
    shift_items = [it for t in cfg.tasks.test_tasks for it in load_items(get_task(t), "train", opts.n_shift_items, cfg.tasks.seed)]
    # The string is part of the id (as it always was: the id enters the answers' key and the rows' "item_id").
    shift_requests = [replace(r, request_id=f"{r.request_id}|{it.string}")
                      for r, it in zip(plan.object_requests(shift_items), shift_items, strict=True)]
    strings = {r.request_id: it.string for r, it in zip(shift_requests, shift_items, strict=True)}
    source_answers = shift_answers(opts, store, cfg, models, shift_requests, strings, partial(answer, profile=profile))
    examples = [{"prompt": r.messages, "completion": source_answers[r.request_id].strip(), "item_id": r.request_id,
                 "task": r.task, "property": "object"}
                for r in shift_requests if source_answers.get(r.request_id, "").strip()]
    rows = sft_rows(examples, max_examples=cfg.finetune.max_examples, seed=cfg.finetune.seed)
    rows_key = digest({"kind": "shift", "normalizer": prompts.NORMALIZER_VERSION, "rows": rows})
    folder = store.get_or_build("sft_rows", rows_key, lambda d: write_rows(rows, d / "rows.jsonl") and None,
                                {"shift_source": opts.source, "n_rows": len(rows)})

    # M_c: M finetuned further on the source's behaviour; its new behaviour and its self-reports.
    m_shifted = finetune_model(store, continue_from(store, m_self), folder / "rows.jsonl", rows_key, cfg.finetune,
                               f"{target.label}[self+shift:{opts.source}]", profile=profile)
    new = answer(store, cfg, m_shifted, {"object/test": (test_obj, False), "hypothetical/test": (test_hyp, True)}, profile=profile)

    old_values = object_values(plan, plan.test_items, old)
    new_values = object_values(plan, plan.test_items, new["object/test"])
    shifted = {k for k, v in new_values.items() if v is not None and old_values.get(k) is not None and old_values[k] != v}
    log.info("behaviour changed on %d of %d (item, property) keys", len(shifted), len(new_values))
    keep = lambda values: {k: (v if k in shifted else None) for k, v in values.items()}  # noqa: E731
    predictor = m_shifted.label
    old_rows = scoring.score_pairs(plan.test_items, plan.properties, keep(old_values), new["hypothetical/test"],
                                   predictor=predictor, target=f"{m_self.label} (old)", kind="old_behavior",
                                   compliance=plan.compliance)
    new_rows = scoring.score_pairs(plan.test_items, plan.properties, keep(new_values), new["hypothetical/test"],
                                   predictor=predictor, target=f"{predictor} (new)", kind="new_behavior",
                                   compliance=plan.compliance)
    new_rows, old_rows = scoring.aligned(new_rows, old_rows, cfg.experiment.noncompliant)
    cells = [scoring.cell(old_rows, old_rows, predictor=predictor, target=f"{m_self.label} (old)", kind="old_behavior"),
             scoring.cell(new_rows, new_rows, predictor=predictor, target=f"{predictor} (new)", kind="new_behavior")]
    test = paired_comparison([r["correct"] for r in new_rows], [r["correct"] for r in old_rows],
                             clusters=[r["item_id"] for r in new_rows])
    tests = [{"target": "new vs old behaviour", "label": f"{predictor} predicting its new vs its old behaviour",
              "self_predictor": predictor, "cross_predictor": "old behaviour",
              "noncompliant": cfg.experiment.noncompliant, **test}]
    if cfg.experiment.adjusted:
        cells += adjusted_cells(old_rows, new_rows, predictor, m_self.label)
    return ExperimentResult(cells=cells, paired_tests=tests, pairs=old_rows + new_rows, weights=weights_of(models),
                            models={slot: m.label for slot, m in models.items()} | {"shifted": predictor},
                            n_items={"train": len(plan.train_items), "test": len(plan.test_items),
                                     "shift_rows": len(rows), "shifted_keys": len(shifted)},
                            sections={"shift": {"source": opts.source, "m_self": m_self.label}})


def adjusted_cells(old_rows: list[dict], new_rows: list[dict], predictor: str, m_label: str) -> list[dict]:
    """Distribution-matched variant (docs/method.md §4.4): equal marginals of object answers on both sides."""
    a_idx, b_idx = distribution_matched_indices([r["truth"] for r in old_rows], [r["truth"] for r in new_rows])
    old_m, new_m = [old_rows[i] for i in a_idx], [new_rows[i] for i in b_idx]
    return [scoring.cell(old_m, old_m, predictor=predictor, target=f"{m_label} (old, adjusted)", kind="old_behavior",
                         task="adjusted"),
            scoring.cell(new_m, new_m, predictor=predictor, target=f"{predictor} (new, adjusted)", kind="new_behavior",
                         task="adjusted")]


EXPERIMENT = Experiment("behavior_shift", run_behavior_shift, ShiftOptions,
                        summary="after a behaviour change, does the self-report follow the new or the old behaviour?")
