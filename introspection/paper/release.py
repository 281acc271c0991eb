"""`tasks=release`: run the authors' released rows (dataset_release/{train,test}/<task>_<property>.jsonl).

Items are the release's strings, properties the release's properties per task, and each row is
checked against our renderer before anything runs: a row whose prompts we would not reproduce
byte for byte stops the run (so "as given" and "as rendered" are the same thing).
"""

from __future__ import annotations

import random
from pathlib import Path

from introspection.core.types import Item
from introspection.paper.tasks.hub import hub_offline

RELEASE_HUB_ID = "thejaminator/introspection_self_predict"


def release_folder(path: str | None) -> Path:
    """The local release folder: tasks.release_path, or the hub dataset's snapshot."""
    if path:
        folder = Path(path).expanduser()
        if not folder.exists():
            raise ValueError(f"tasks.release_path {path!r} does not exist; give a folder or .jsonl file of release rows")
        return folder
    if hub_offline():
        raise ValueError(f"tasks=release needs tasks.release_path=<folder of release .jsonl files> while offline "
                         f"(or network access to the hub dataset {RELEASE_HUB_ID})")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(RELEASE_HUB_ID, repo_type="dataset", etag_timeout=10))
    except Exception as e:  # noqa: BLE001  (any hub failure gets the same one-line advice)
        raise ValueError(f"cannot fetch the hub dataset {RELEASE_HUB_ID} ({type(e).__name__}); "
                         f"download it and set tasks.release_path") from None


def release_plan(tasks_cfg) -> tuple[list[Item], list[Item], dict[str, list[str]]]:
    """(train items, test items, properties per task) from the release rows, capped and shuffled by seed."""
    from introspection.paper.verify_release import check_row, load_release_rows

    rows = load_release_rows(release_folder(tasks_cfg.release_path))
    if not rows:
        raise ValueError(f"no release rows under {tasks_cfg.release_path}")
    bad = [(r, p) for r in rows for p in check_row(r, corrected=bool(tasks_cfg.corrected_prompts))]
    if bad:
        row, problem = bad[0]
        raise ValueError(f"{len(bad)} release rows differ from our rendering; first: {row['file']} line {row['line']}: "
                         f"{problem} (run python -m introspection.paper.verify_release for all)")
    wanted = set(tasks_cfg.train_tasks) | set(tasks_cfg.test_tasks)
    properties: dict[str, list[str]] = {}
    strings: dict[str, dict[str, str | None]] = {}
    for r in rows:
        if r["task"] not in wanted:
            continue
        allowed = tasks_cfg.properties.get(r["task"])
        if allowed is not None and r["property"] not in allowed:
            continue
        properties.setdefault(r["task"], [])
        if r["property"] not in properties[r["task"]]:
            properties[r["task"]].append(r["property"])
        strings.setdefault(r["task"], {}).setdefault(r["string"], r["target"])
    missing = sorted(wanted - set(strings))
    if missing:
        raise ValueError(f"the release rows hold no rows for tasks {missing} (tasks.train_tasks / tasks.test_tasks); "
                         f"present: {', '.join(sorted({r['task'] for r in rows}))}")

    def items(tasks: list[str], split: str, n: int) -> list[Item]:
        out = []
        for task in tasks:
            pool = [Item(task, f"{task}:release:{i}", s, t) for i, (s, t) in enumerate(strings[task].items())]
            random.Random(tasks_cfg.seed).shuffle(pool)
            out += pool[:n]
        return out

    train = items(list(tasks_cfg.train_tasks), "train", tasks_cfg.n_train_items)
    test = items(list(tasks_cfg.test_tasks), "test", tasks_cfg.n_test_items)
    return train, test, properties
