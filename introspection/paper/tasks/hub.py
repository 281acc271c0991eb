"""Hugging Face hub fallback for dataset tasks: fetch, reformat as the paper did, split.

Never hangs: with HF_HUB_OFFLINE / HF_DATASETS_OFFLINE set only the local cache is read; otherwise a
metadata request with a short timeout runs first, and any failure becomes a one-line ValueError that
names the hub id and the local file that would replace it.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterable, Mapping
from typing import Any

from introspection.paper.tasks.base import HubSource, Task

HUB_TIMEOUT_S = 10.0
LETTERS = "ABCDEFGHIJ"

Row = tuple[str, "str | None"]  # (string, target)


def hub_offline() -> bool:
    truthy = {"1", "true", "yes", "on"}
    return any(os.environ.get(k, "").strip().lower() in truthy for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def format_mmlu(row: Mapping[str, Any]) -> Row:
    """cais/mmlu row -> ``question\\n\\nAnswer choices:\\nA - ...``, target = correct letter."""
    choices = list(row["choices"])
    lines = [f"{LETTERS[i]} - {text}" for i, text in enumerate(choices)]
    string = f"{row['question']}\n\nAnswer choices:\n" + "\n".join(lines)
    return string, LETTERS[int(row["answer"])]


def format_arc(row: Mapping[str, Any]) -> Row:
    """allenai/ai2_arc row -> same layout; options relabelled A, B, ... in order (some use 1-4)."""
    texts = list(row["choices"]["text"])
    labels = [str(label) for label in row["choices"]["label"]]
    lines = [f"{LETTERS[i]} - {text}" for i, text in enumerate(texts)]
    string = f"{row['question']}\n\nAnswer choices:\n" + "\n".join(lines)
    key = str(row["answerKey"])
    if key not in labels:
        raise ValueError(f"ARC row {row.get('id', '?')!r}: answerKey {key!r} not among labels {labels}")
    return string, LETTERS[labels.index(key)]


_MWE_OPTION = re.compile(r"^ ?\(([A-J])\) ?", re.MULTILINE)
_MWE_MATCH = re.compile(r"\(([A-J])\)")


def format_mwe(row: Mapping[str, Any]) -> Row:
    """Anthropic model-written-evals row -> ``...Choices:\\nA - ...``; target = matching letter."""
    question = str(row["question"]).rstrip()
    if question.endswith("Answer:"):
        question = question[: -len("Answer:")].rstrip()
    string = _MWE_OPTION.sub(lambda m: f"{m.group(1)} - ", question)
    match = _MWE_MATCH.search(str(row["answer_matching_behavior"]))
    if match is None:
        raise ValueError(
            f"model-written-evals row: answer_matching_behavior {row['answer_matching_behavior']!r} "
            "is not of the form '(A)'"
        )
    return string, match.group(1)


FORMATTERS = {"mmlu": format_mmlu, "arc": format_arc, "mwe": format_mwe}


def split_rows(rows: Iterable[Row], source: HubSource, split: str) -> list[Row]:
    """Drop repeated strings, shuffle with the source's fixed seed, cut at train_fraction."""
    unique: dict[str, Row] = {}
    for row in rows:
        unique.setdefault(row[0], row)
    pooled = list(unique.values())
    random.Random(source.split_seed).shuffle(pooled)
    n_train = round(len(pooled) * source.train_fraction)
    return pooled[:n_train] if split == "train" else pooled[n_train:]


def _fetch(source: HubSource) -> list[Mapping[str, Any]]:
    import datasets  # heavy import, only on this path

    if not hub_offline():
        from huggingface_hub import HfApi

        HfApi().dataset_info(source.repo, timeout=HUB_TIMEOUT_S)  # fails fast without network
    rows: list[Mapping[str, Any]] = []
    if source.data_files:
        ds = datasets.load_dataset(source.repo, data_files=source.data_files, split="train")
        rows.extend(ds)
    else:
        for hub_split in source.splits:
            rows.extend(datasets.load_dataset(source.repo, source.config, split=hub_split))
    return rows


def hub_rows(task: Task, split: str) -> list[Row]:
    """Rows of one split of a dataset task from the hub, or a one-line ValueError saying what to do."""
    local = f"put {split}_{task.source}.jsonl in tasks.data_dir"
    source = task.hf
    if source is None:
        raise ValueError(f"task {task.name!r} has no hub source and no local data: {local}")
    try:
        raw = _fetch(source)
        formatter = FORMATTERS[source.formatter]
        rows = [formatter(row) for row in raw]
    except Exception as exc:  # noqa: BLE001
        # Network, auth, cache and schema errors come from several libraries; all end in the same
        # one-line instruction to the user.
        mode = "offline (HF_HUB_OFFLINE set) and not cached" if hub_offline() else "could not be loaded"
        detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise ValueError(f"task {task.name!r}: hub dataset {source.describe()} {mode} ({detail}); or {local}") from None
    return split_rows(rows, source, split)
