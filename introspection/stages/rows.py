"""The prepare stage: SFT rows for a predictor, hypothetical prompt -> the target's property value."""

from __future__ import annotations

import random
from pathlib import Path

from introspection.core.store import Store, digest
from introspection.core.types import Answer
from introspection.paper import prompts
from introspection.stages.items import ItemSet, object_values
from introspection.stages.model_ref import ModelRef

# Bump when this code changes what it writes: old artifacts then stop matching.
PREPARE_VERSION = 1


def prepare_rows(store: Store, plan: ItemSet, predictor: ModelRef, target: ModelRef, target_answers: dict[str, Answer],
                 tasks_cfg, finetune_cfg, predictor_answers: dict[str, Answer] | None = None) -> tuple[Path, str]:
    """SFT rows for `predictor`: hypothetical prompt (train items) -> `target`'s property value.

    With finetune.object_anchor_ratio > 0, rows of the predictor's OWN object-level behaviour
    (object prompt -> its own answer) are mixed in, that many per hypothetical row. The paper mixes
    none (docs/method.md §5.1 step 5); small models trained on hypotheticals alone collapse their
    object-level behaviour to the one-token answer format, which leaves nothing to predict.
    """
    from introspection.finetune.data import sft_rows, write_rows

    values = object_values(plan, plan.train_items, target_answers)
    requests = {(r.item_id, r.property): r for r in plan.hypothetical_requests(plan.train_items)}
    rng = random.Random(tasks_cfg.seed)  # which train items become rows: item sampling (tasks.seed, 0 by default)
    examples = []
    for task in tasks_cfg.train_tasks:
        for name in plan.properties[task]:
            block = [(it, values[(it.item_id, name)]) for it in plan.train_items
                     # "" (a value the authors score, e.g. a space as second character) is no trainable completion
                     if it.task == task and values[(it.item_id, name)]]
            rng_block = sorted(block, key=lambda pair: pair[0].item_id)
            rng.shuffle(rng_block)  # docs/method.md §5.1 step 2: sample n rows per (task, property), seeded
            for it, value in rng_block[: tasks_cfg.n_finetune_per_property]:
                examples.append({"prompt": requests[(it.item_id, name)].messages, "completion": value,
                                 "item_id": it.item_id, "task": task, "property": name})
    rows = sft_rows(examples, max_examples=finetune_cfg.max_examples, seed=finetune_cfg.seed)
    if not rows:
        raise ValueError(f"no usable finetuning rows: every object-level answer of {target.label} on the train "
                         f"tasks was non-compliant; raise inference.max_tokens or check the model's chat template")
    ratio = float(finetune_cfg.get("object_anchor_ratio", 0.0) or 0.0)
    if ratio > 0:
        if predictor_answers is None:
            raise ValueError(f"finetune.object_anchor_ratio={ratio} needs {predictor.label}'s own object-level answers")
        anchors = [{"prompt": r.messages, "completion": predictor_answers[r.request_id].text.strip(),
                    "item_id": r.item_id, "task": r.task, "property": "object_level"}
                   for r in plan.object_requests(plan.train_items)
                   if (predictor_answers.get(r.request_id) and (predictor_answers[r.request_id].text or "").strip())]
        anchor_rows = sft_rows(anchors, max_examples=max(1, round(ratio * len(rows))), seed=finetune_cfg.seed) if anchors else []
        rows = rows + anchor_rows
        random.Random(finetune_cfg.seed).shuffle(rows)
    key = digest({"v": PREPARE_VERSION, "normalizer": prompts.NORMALIZER_VERSION, "rows": rows})
    info = {"predictor": predictor.label, "target": target.label, "n_rows": len(rows)}
    folder = store.get_or_build("sft_rows", key, lambda d: write_rows(rows, d / "rows.jsonl") and None, info)
    return folder / "rows.jsonl", key

