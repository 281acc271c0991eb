"""SFT rows for self-/cross-prediction training (docs/method.md §5.1).

Input examples are the hypothetical questions built from a model's own object-level answers:
    {"prompt": [{"role": "system", "content": ""}, {"role": "user", "content": ...}],
     "completion": "<property value>", "item_id": ..., "task": ..., "property": ...}
Output rows are TRL conversational prompt-completion rows, which give completion-only loss with no
chat-template surgery:
    {"prompt": [...messages], "completion": [{"role": "assistant", "content": value}], <metadata keys>}
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from introspection.core.store import read_jsonl, write_jsonl_atomic


def _prompt_key(messages: list[dict]) -> str:
    # Two message lists render identically under any chat template iff they are equal, so their
    # canonical JSON stands in for the rendered prompt without needing a tokenizer here.
    return json.dumps(messages, sort_keys=True, ensure_ascii=False)


def _check_example(example: dict, index: int) -> None:
    prompt = example.get("prompt")
    if not isinstance(prompt, list) or not prompt:
        raise ValueError(f"example {index}: 'prompt' must be a non-empty list of chat messages, got {prompt!r}")
    for message in prompt:
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise ValueError(f"example {index}: each prompt message must be {{'role', 'content'}}, got {message!r}")
    completion = example.get("completion")
    if not isinstance(completion, str) or completion == "":
        raise ValueError(
            f"example {index} (item {example.get('item_id')!r}): 'completion' must be a non-empty string "
            f"(the property value), got {completion!r}"
        )


def sft_rows(examples: list[dict], *, max_examples: int | None, seed: int = 42) -> list[dict]:
    """De-duplicate, shuffle and cap hypothetical examples into TRL prompt-completion rows.

    Differences from the original (docs/method.md §5.1 step 4), on purpose:
    * De-duplication key is (prompt messages, completion), not (object-level string, answer). The
      original collapsed two *different* hypothetical questions about the same string whenever their
      answers coincided (e.g. "first character" and "starts with a vowel" both "a"), silently
      dropping training signal from some properties. Here only truly identical rows collapse.
    * The first occurrence of a duplicate is kept, so the result is independent of duplicates' order.
    * Shuffle with `random.Random(seed)`, then cap at `max_examples`. With the same input and seed,
      smaller caps are prefixes of larger ones, so the training-size axis uses nested subsets.
    """
    if max_examples is not None and max_examples < 1:
        raise ValueError(f"max_examples must be None or >= 1, got {max_examples}")
    seen: set[tuple[str, str]] = set()
    rows: list[dict] = []
    for index, example in enumerate(examples):
        _check_example(example, index)
        key = (_prompt_key(example["prompt"]), example["completion"])
        if key in seen:
            continue
        seen.add(key)
        row: dict[str, Any] = {k: v for k, v in example.items() if k not in ("prompt", "completion")}
        row["prompt"] = [dict(m) for m in example["prompt"]]
        row["completion"] = [{"role": "assistant", "content": example["completion"]}]
        rows.append(row)
    random.Random(seed).shuffle(rows)
    if max_examples is not None:
        rows = rows[:max_examples]
    return rows


def rows_hash(rows: Iterable[dict]) -> str:
    """sha256 over the canonical JSON of the rows, in order: the identity of a training set."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def write_rows(rows: Iterable[dict], path: str | Path) -> Path:
    """Write rows as JSONL atomically (the store's temp-file-then-rename writer)."""
    write_jsonl_atomic(Path(path), list(rows))
    return Path(path)


def read_rows(path: str | Path) -> list[dict]:
    """Read a JSONL file written by write_rows (blank lines ignored; a bad line is named)."""
    return read_jsonl(Path(path))
