"""The Task record and the task registry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from introspection.paper.compliance import COMPLIANCE_GROUPS
from introspection.paper.properties import Property, get_property


@dataclass(frozen=True)
class HubSource:
    """Where a dataset task's items come from on the Hugging Face hub, and how to split them.

    The hub splits in `splits` are pooled, shuffled with `split_seed` and cut: the first
    round(len * train_fraction) rows are our train split, the rest our val split. This mirrors the
    paper, which pooled ARC train+test (2291 -> 1833/458) and MMLU test (14042 -> val 2808).
    """

    repo: str  # hub dataset id
    formatter: str  # row formatter in tasks.hub: "mmlu", "arc" or "mwe"
    config: str | None = None
    data_files: str | None = None  # one file inside the repo (model-written evals)
    splits: tuple[str, ...] = ("train",)
    train_fraction: float = 0.5
    split_seed: int = 0

    def describe(self) -> str:
        parts = [self.repo]
        if self.config:
            parts.append(f"config {self.config}")
        if self.data_files:
            parts.append(f"file {self.data_files}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Task:
    """One object-level task: its prompt, its data source and the properties it is asked about."""

    name: str
    prompt: str  # the paper's prompt with $string, defects included (docs/method.md §1.2)
    corrected_prompt: str  # == prompt except known defects fixed
    source: str  # data file stem: {split}_{source}.jsonl
    kind: str  # "generated" | "dataset"
    properties: tuple[str, ...]  # properties used with this task in the paper's final runs
    object_compliance_groups: tuple[str, ...]
    default_role: str  # "train" (held-in) | "test" (held-out)
    hf: HubSource | None = None  # hub fallback for dataset tasks; None: a data_dir file is needed
    # Ethical-stance tasks: the stance the ethical_stance question asks about, e.g.
    # "the more power-seeking option" -> "Did you choose the more power-seeking option? ..."
    stance: str | None = None


TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Add a task to the registry after checking that its fields are consistent."""
    where = f"task {task.name!r}"
    if task.name in TASKS:
        raise ValueError(f"{where} registered twice; names must be unique")
    if "$string" not in task.prompt or "$string" not in task.corrected_prompt:
        raise ValueError(f"{where}: prompt and corrected_prompt must contain $string")
    if task.kind not in ("generated", "dataset"):
        raise ValueError(f"{where}: kind {task.kind!r} invalid; valid: generated, dataset")
    if task.default_role not in ("train", "test"):
        raise ValueError(f"{where}: default_role {task.default_role!r} invalid; valid: train, test")
    for group in task.object_compliance_groups:
        if group not in COMPLIANCE_GROUPS:
            raise ValueError(f"{where}: compliance group {group!r} invalid; valid: {', '.join(COMPLIANCE_GROUPS)}")
    for name in task.properties:
        prop = get_property(name, where=where)
        if prop.needs_stance and not task.stance:
            raise ValueError(f"{where}: property {name!r} needs the task's `stance` to be set")
    TASKS[task.name] = task
    return task


def get_task(name: str, *, where: str = "get_task") -> Task:
    """Look up a task by name; unknown names fail with the list of valid ones."""
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        valid = ", ".join(sorted(TASKS))
        raise ValueError(f"unknown task {name!r} (from {where}); valid: {valid}") from None


def properties_for(
    task: Task, names: Sequence[str] | None = None, *, where: str = "tasks.properties"
) -> tuple[Property, ...]:
    """The properties to ask about `task`: `names` if given (e.g. from a task-set config), else the
    task's own list. Fails on unknown names and on ethical_stance for a task without a stance."""
    chosen = task.properties if names is None else tuple(names)
    if not chosen:
        raise ValueError(f"{where}: no properties for task {task.name!r}; valid: {', '.join(task.properties)}")
    props = []
    for name in chosen:
        prop = get_property(name, where=f"{where} for task {task.name!r}")
        if prop.needs_stance and not task.stance:
            raise ValueError(
                f"{where}: property {name!r} needs a task with a stance; task {task.name!r} has none "
                f"(its properties: {', '.join(task.properties)})"
            )
        props.append(prop)
    return tuple(props)
