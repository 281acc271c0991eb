"""Loading task items: local JSONL, the offline generators, or the hub (in that order)."""

from __future__ import annotations

import hashlib
import json
import logging
import random
from pathlib import Path

from introspection.core.types import Item
from introspection.paper.tasks.base import TASKS, Task
from introspection.paper.tasks.generators import SPECS, generated_split
from introspection.paper.tasks.hub import Row, hub_rows
from introspection.paper.tasks.sizes import shortfall

SPLITS = ("train", "val")
log = logging.getLogger(__name__)


def read_jsonl(path: str | Path) -> list[Row]:
    """Rows of a ``{"string": ..., "target": ...?}`` JSONL file; other keys are ignored.

    Blank lines are skipped; any other malformed line raises ValueError naming file and line.
    """
    path = Path(path)
    rows: list[Row] = []
    try:
        # split on "\n" only: str.splitlines() would also split inside strings holding U+2028/U+2029
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read task file {path}: {exc}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: not valid JSON ({exc.msg})") from None
        problem = _row_problem(record)
        if problem:
            raise ValueError(f"{where}: {problem}")
        rows.append((record["string"], record.get("target")))
    return rows


def _row_problem(record: object) -> str | None:
    """What is wrong with one parsed JSONL record, or None."""
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    if not isinstance(record.get("string"), str):
        return f"'string' must be a str, got {record.get('string')!r:.60}"
    target = record.get("target")
    if target is not None and not isinstance(target, str):
        return f"'target' must be a str or null, got {target!r:.60}"
    return None


def source_rows(task: Task, split: str, data_dir: str | None = None) -> list[Row]:
    """Every row of one split, in source order (before shuffling)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} for task {task.name!r}; valid: train, val")
    if data_dir is not None:
        if not Path(data_dir).is_dir():
            raise ValueError(f"tasks.data_dir {data_dir!r} is not a folder")
        path = Path(data_dir) / f"{split}_{task.source}.jsonl"
        if path.is_file():
            return read_jsonl(path)
    if task.kind == "generated":
        # Variants of a task (animals_single) share its generated items through the same source.
        generator = task.name if task.name in SPECS else next(
            (name for name, other in TASKS.items() if other.source == task.source and name in SPECS), task.name)
        return [(string, None) for string in generated_split(generator, split)]
    return hub_rows(task, split)


def data_dir_coverage(data_dir: str | Path, wanted: list[tuple[Task, str]]) -> tuple[list[str], list[str]]:
    """What a tasks.data_dir folder holds against what a run reads from it: the `.jsonl` files whose name
    is no `{train,val}_<task>.jsonl` of any known task (a typo, or a task this code does not know), and
    the files of `wanted` (task, split) pairs that are not there (those splits come from the task's
    generator or hub dataset instead, or the task has no data)."""
    folder = Path(data_dir)
    known = {f"{split}_{task.source}.jsonl" for task in TASKS.values() for split in SPLITS}
    unmatched = sorted(p.name for p in folder.glob("*.jsonl") if p.is_file() and p.name not in known)
    missing = [f"{split}_{task.source}.jsonl" for task, split in wanted
               if not (folder / f"{split}_{task.source}.jsonl").is_file()]
    return unmatched, list(dict.fromkeys(missing))


def load_items(task: Task, split: str, n: int | None, seed: int, data_dir: str | None = None) -> list[Item]:
    """Shuffle one split with `seed` and take the first `n` items (all when n is None).

    ``item_id`` is ``f"{task}:{split}:{index in source}"``, stable across seeds.
    """
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
        raise ValueError(f"number of items for task {task.name!r} must be an int >= 0 or None, got {n!r}")
    rows = source_rows(task, split, data_dir)
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    if n is not None:
        short = shortfall(task.name, split, len(rows), n)
        if short:  # one line; a size above the paper's split takes the whole split without a word
            log.warning("%s", short)
        order = order[:n]
    return [
        Item(
            task=task.name,
            item_id=f"{task.name}:{split}:{i}",
            string=rows[i][0],
            target=rows[i][1],
        )
        for i in order
    ]


def items_checksum(items: list[Item]) -> str:
    """SHA-256 over (task, item_id, string, target) of every item, in order."""
    digest = hashlib.sha256()
    for item in items:
        record = [item.task, item.item_id, item.string, item.target]
        digest.update(json.dumps(record, ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()
