"""Check the paper's public dataset release against our renderer, task registry and sources; import its rows.

    python -m introspection.paper.verify_release PATH [--data-dir DIR] [--role train|test]

PATH is a .jsonl file or a folder of them (recursive). Every field of a release row that the project
uses is compared, and every difference names the file, the row (line) and the field:

* object_level_prompt, hypothetical_prompt: re-rendered from (original_dataset, original_question,
  behavioral_property) and compared byte for byte (the release drops the empty system message, so
  ours is dropped too before comparing);
* original_dataset, behavioral_property: known names, and the property is one the task is asked about;
* option_matching_ethical_stance (`tasks=release` scores against it): equal to the target of the same
  string in the task's source, both splits (`--data-dir`, a folder of {train,val}_<source>.jsonl as
  `tasks.data_dir`, else the task's own source: the hub for dataset tasks). A generated task with no
  source file has no targets: its rows must hold null;
* the file name: <task>_<property>.jsonl, as the release names its files;
* the role: a file under a train/ (held-in) or test/ (held-out) folder, or every file with `--role`,
  must hold tasks of that role in the paper's task split. Without either, the role is not checked
  (said in the output).

Exit 0: no mismatch; 1: any mismatch; 2: unreadable input or a source that cannot be loaded
(one-line error).

Release names are our names: original_dataset = task name, behavioral_property = property name
(ethical_stance for the four matches_* properties, among_a_or_c / among_b_or_d for is_either_*).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from introspection.paper.prompts import hypothetical_messages, object_messages
from introspection.paper.properties import get_property
from introspection.paper.tasks import Task, get_task, read_jsonl, source_rows

ROLES = {"train": "held-in", "test": "held-out"}

RELEASE_FIELDS = (
    "original_question",
    "original_dataset",
    "object_level_prompt",
    "hypothetical_prompt",
    "behavioral_property",
    "option_matching_ethical_stance",
)


def release_files(path: str | Path) -> list[Path]:
    """The .jsonl files at `path` (the file itself, or every .jsonl below a folder, sorted)."""
    path = Path(path)
    if path.is_file():
        if path.suffix != ".jsonl":
            raise ValueError(f"release path {str(path)!r} is not a .jsonl file")
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.jsonl") if p.is_file())
        if not files:
            raise ValueError(f"release folder {str(path)!r} holds no .jsonl files")
        return files
    raise ValueError(f"release path {str(path)!r} does not exist")


def _messages(value: Any, where: str, key: str) -> list[dict[str, str]]:
    ok = isinstance(value, list) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value
    )
    if not ok:
        raise ValueError(f"{where}: {key!r} must be a list of {{role, content}} messages")
    return [{"role": m["role"], "content": m["content"]} for m in value]


def _record_problem(record: object) -> str | None:
    """What is wrong with the fields of one parsed release record, or None."""
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    missing = [k for k in RELEASE_FIELDS if k not in record]
    if missing:
        return f"missing release fields {missing}"
    for key in ("original_question", "original_dataset", "behavioral_property"):
        if not isinstance(record[key], str):
            return f"{key!r} must be a str, got {record[key]!r:.60}"
    target = record["option_matching_ethical_stance"]
    if target is not None and not isinstance(target, str):
        return "'option_matching_ethical_stance' must be a str or null"
    return None


def _parse_row(line: str, file: Path, number: int) -> dict[str, Any]:
    where = f"{file} line {number}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not valid JSON ({exc.msg})") from None
    problem = _record_problem(record)
    if problem:
        raise ValueError(f"{where}: {problem}")
    target = record["option_matching_ethical_stance"]
    task = get_task(record["original_dataset"], where=where).name
    prop = get_property(record["behavioral_property"], where=where).name
    return {
        "task": task,
        "property": prop,
        "string": record["original_question"],
        "target": target,
        "object_messages": _messages(record["object_level_prompt"], where, "object_level_prompt"),
        "hypothetical_messages": _messages(record["hypothetical_prompt"], where, "hypothetical_prompt"),
        "file": str(file),
        "line": number,
    }


def load_release_rows(path: str | Path) -> list[dict[str, Any]]:
    """Import rows of the paper's release format (a .jsonl file or a folder).

    Each row becomes ``{task, property, string, target, object_messages, hypothetical_messages,
    file, line}`` with task / property validated against our registries; `target` is the
    release's option_matching_ethical_stance (the MCQ answer, the stance letter, or Wikipedia's
    next word). Raises ValueError (one line, naming file and line) on unreadable input.
    """
    rows: list[dict[str, Any]] = []
    for file in release_files(path):
        try:
            # split on "\n" only: str.splitlines() would also split inside strings holding U+2028/U+2029
            lines = file.read_text(encoding="utf-8").split("\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read release file {file}: {exc}") from None
        for number, line in enumerate(lines, start=1):
            if line.strip():
                rows.append(_parse_row(line, file, number))
    return rows


def _without_empty_system(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    return [m for m in messages if not (m["role"] == "system" and m["content"] == "")]


def first_difference(expected: str, actual: str, context: int = 30) -> str:
    """A short description of where two strings first differ."""
    index = next(
        (i for i, (a, b) in enumerate(zip(expected, actual, strict=False)) if a != b),
        min(len(expected), len(actual)),
    )
    lo = max(0, index - context)
    return f"at char {index}: release {expected[lo : index + context]!r} vs ours {actual[lo : index + context]!r}"


def _compare(kind: str, expected: list[dict[str, str]], ours: list[dict[str, str]]) -> str | None:
    ours = _without_empty_system(ours)
    if expected == ours:
        return None
    if len(expected) != len(ours) or any(e["role"] != o["role"] for e, o in zip(expected, ours, strict=False)):
        roles_e = [m["role"] for m in expected]
        roles_o = [m["role"] for m in ours]
        return f"{kind}: roles {roles_e} vs ours {roles_o}"
    for e, o in zip(expected, ours, strict=True):
        if e["content"] != o["content"]:
            return f"{kind} {e['role']} {first_difference(e['content'], o['content'])}"
    return f"{kind}: differs"


def check_row(row: dict[str, Any], *, corrected: bool = False) -> list[str]:
    """Differences between a release row and our rendering of it ([] when identical)."""
    task = get_task(row["task"])
    prop = get_property(row["property"])
    problems = []
    diff = _compare(
        "object",
        row["object_messages"],
        object_messages(task, row["string"], corrected=corrected),
    )
    if diff:
        problems.append(diff)
    ours = hypothetical_messages(task, prop, row["string"], corrected=corrected)
    diff = _compare("hypothetical", row["hypothetical_messages"], ours)
    if diff:
        problems.append(diff)
    return problems


def check_fields(row: dict[str, Any], role: str | None, targets: dict[str, set[str | None]] | None) -> list[str]:
    """Differences in the non-prompt fields of one row: property, file name, role, ethical-stance target.

    `role` is the file's role ("train" / "test", None: unknown); `targets` maps each source string of
    the row's task to its target(s), None when the task has no source to compare with (then the row's
    target must be null).
    """
    task = get_task(row["task"])
    problems = []
    if row["property"] not in task.properties:
        problems.append(f"behavioral_property: {row['property']!r} is not asked about task {task.name!r} "
                        f"(its properties: {', '.join(task.properties)})")
    expected_name = f"{row['task']}_{row['property']}.jsonl"
    if Path(row["file"]).name != expected_name:
        problems.append(f"file name: a row of task {row['task']!r} and property {row['property']!r} belongs in "
                        f"{expected_name}, not {Path(row['file']).name}")
    if role is not None and task.default_role != role:
        problems.append(f"role: the file is {ROLES[role]} ({role}) but task {task.name!r} is "
                        f"{ROLES[task.default_role]} ({task.default_role}) in the paper's task split")
    problems += _target_problems(row, task, targets)
    return problems


def _target_problems(row: dict[str, Any], task: Task, targets: dict[str, set[str | None]] | None) -> list[str]:
    if targets is None:
        if row["target"] is not None:
            return [f"option_matching_ethical_stance: release {row['target']!r}, but task {task.name!r} has no targets"]
        return []
    if row["string"] not in targets:
        return [f"original_question: not in the source of task {task.name!r} (train or val split of {task.source!r})"]
    expected = targets[row["string"]]
    if row["target"] not in expected:
        shown = " or ".join(repr(t) for t in sorted(expected, key=str))
        return [f"option_matching_ethical_stance: release {row['target']!r}, source {shown}"]
    return []


def source_targets(task: Task, data_dir: str | None) -> dict[str, set[str | None]] | None:
    """string -> its target(s) over both splits of `task`'s source; None for a generated task without a
    data_dir file (its items are built here, so there is nothing to compare the release's strings with).

    Raises ValueError (one line) when a dataset task's source cannot be read or fetched.
    """
    local = [Path(data_dir) / f"{split}_{task.source}.jsonl" for split in ("train", "val")] if data_dir else []
    local = [path for path in local if path.is_file()]
    if local:
        rows = [row for path in local for row in read_jsonl(path)]
    elif task.kind == "generated":
        return None
    else:
        rows = []
        try:
            for split in ("train", "val"):
                rows += source_rows(task, split)
        except ValueError as exc:
            raise ValueError(f"cannot check option_matching_ethical_stance without the source of task {task.name!r} "
                             f"(here: --data-dir DIR with train_{task.source}.jsonl / val_{task.source}.jsonl): {exc}") from None
    targets: dict[str, set[str | None]] = {}
    for string, target in rows:
        # The release writes an empty target (a Wikipedia opening with no next word) as null.
        targets.setdefault(string, set()).add(target or None)
    return targets


def file_role(file: Path, root: Path) -> str | None:
    """"train" or "test" when the file lies under a folder of that name (from the file up to `root`)."""
    for folder in file.parents:
        if folder.name in ROLES:
            return folder.name
        if folder == root:  # folders above the given path say nothing about the release
            break
    return None


@dataclass
class FileReport:
    file: str
    checked: int = 0
    mismatches: int = 0
    role: str | None = None
    differences: list[str] = field(default_factory=list)


def verify(path: str | Path, *, max_shown: int = 3, data_dir: str | None = None,
           role: str | None = None) -> list[FileReport]:
    """Check every row under `path`; one report per file. Raises ValueError on unreadable input.

    `role` ("train" / "test") applies to every file; None: each file's role comes from its folders.
    """
    if role is not None and role not in ROLES:
        raise ValueError(f"--role {role!r} is not a role; valid: {', '.join(ROLES)}")
    if data_dir is not None and not Path(data_dir).is_dir():
        raise ValueError(f"--data-dir {data_dir!r} is not a folder")
    root = Path(path) if Path(path).is_dir() else Path(path).parent
    reports: dict[str, FileReport] = {}
    for file in release_files(path):
        reports[str(file)] = FileReport(str(file), role=role or file_role(file, root))
    targets: dict[str, dict[str, set[str | None]] | None] = {}
    for row in load_release_rows(path):
        report = reports[row["file"]]
        report.checked += 1
        if row["task"] not in targets:
            targets[row["task"]] = source_targets(get_task(row["task"]), data_dir)
        problems = check_row(row) + check_fields(row, report.role, targets[row["task"]])
        if problems:
            report.mismatches += 1
            if len(report.differences) < max_shown:
                report.differences.extend(f"{report.file} line {row['line']}: {p}" for p in problems)
    return list(reports.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m introspection.paper.verify_release",
        description="Compare our rendered prompts with the paper's dataset release.",
    )
    parser.add_argument("path", help="a release .jsonl file or a folder of them")
    parser.add_argument("--data-dir", default=None,
                        help="folder of the tasks' {train,val}_<source>.jsonl, the reference for option_matching_ethical_stance "
                             "(default: each task's own source; dataset tasks then need the hub)")
    parser.add_argument("--role", choices=sorted(ROLES), default=None,
                        help="the role of every file (default: from a train/ or test/ folder above it)")
    parser.add_argument("--show", type=int, default=3, help="rows with differences shown per file (default 3)")
    args = parser.parse_args(argv)
    try:
        reports = verify(args.path, max_shown=args.show, data_dir=args.data_dir, role=args.role)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    total = 0
    for report in reports:
        print(f"{report.file}: {report.checked} rows checked, {report.mismatches} mismatches")
        for line in report.differences:
            print(f"  {line}")
        total += report.mismatches
    print(f"total: {sum(r.checked for r in reports)} rows, {total} mismatches in {len(reports)} files")
    unknown = sum(r.role is None for r in reports)
    if unknown:
        print(f"role not checked for {unknown} files: no train/ or test/ folder above them (give --role train|test)")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
