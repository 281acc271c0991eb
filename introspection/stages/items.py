"""The build stage: the items of every task and the properties asked about them, recorded in the store, and the
property values read from a model's object-level answers."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from introspection.core.profile import Profile, timed_stage
from introspection.core.store import Store, digest, write_json_atomic, write_jsonl_atomic
from introspection.core.types import Answer, ChatRequest, Item
from introspection.paper import prompts
from introspection.paper.properties import get_property, property_value
from introspection.paper.tasks import get_task, items_checksum, load_items

# Bump when this code changes what it writes: old artifacts then stop matching.
BUILD_VERSION = 1


@dataclass
class ItemSet:
    """A run's items: the train and held-out items of every task, and the properties asked about each task's items
    (named apart from the pre-flight plan, introspection/preflight/)."""

    train_items: list[Item]
    test_items: list[Item]
    properties: dict[str, list[str]]  # task name -> property names
    corrected: bool = False
    compliance: str = "authors"  # tasks.compliance: how property values are read (introspection.paper.properties)

    def object_requests(self, items: list[Item]) -> list[ChatRequest]:
        return [
            ChatRequest(f"obj|{it.item_id}", prompts.object_messages(get_task(it.task), it.string, corrected=self.corrected),
                        kind="object", task=it.task, item_id=it.item_id)
            for it in items
        ]

    def hypothetical_requests(self, items: list[Item]) -> list[ChatRequest]:
        out = []
        for it in items:
            task = get_task(it.task)
            for name in self.properties[it.task]:
                messages = prompts.hypothetical_messages(task, get_property(name), it.string, corrected=self.corrected)
                out.append(ChatRequest(f"hyp|{it.item_id}|{name}", messages, kind="hypothetical", task=it.task,
                                       item_id=it.item_id, property=name))
        return out


def build_items(tasks_cfg, store: Store, *, profile: Profile | None = None) -> ItemSet:
    """Load (or generate) the items of every task; record them as an artifact for audit (a "build" stage of
    the run's profile)."""
    with timed_stage(profile, "build", "build") as stage:
        built = len(store.computed)
        plan = _build_items(tasks_cfg, store)
        stage["reused"] = len(store.computed) == built  # the items artifact was already in the store
    return plan


def _build_items(tasks_cfg, store: Store) -> ItemSet:
    if tasks_cfg.from_release:
        from introspection.paper.release import release_plan

        train, test, properties = release_plan(tasks_cfg)
        return _recorded(ItemSet(train, test, properties, corrected=bool(tasks_cfg.corrected_prompts),
                              compliance=str(tasks_cfg.get("compliance", "authors"))), store)
    properties: dict[str, list[str]] = {}
    for name in list(tasks_cfg.train_tasks) + list(tasks_cfg.test_tasks):
        task = get_task(name, where="tasks.train_tasks" if name in tasks_cfg.train_tasks else "tasks.test_tasks")
        chosen = list(tasks_cfg.properties.get(name, task.properties))
        for prop in chosen:
            get_property(prop, where=f"tasks.properties.{name}")  # fails early, naming the property, if unknown
            if prop not in task.properties:
                raise ValueError(
                    f"property '{prop}' does not apply to task '{name}' (tasks.properties.{name}); "
                    f"valid: {', '.join(task.properties)}"
                )
        properties[name] = chosen
    if not tasks_cfg.train_tasks or not tasks_cfg.test_tasks:
        raise ValueError(
            f"task set '{tasks_cfg.name}' needs at least one train task and one test task "
            f"(tasks.train_tasks={list(tasks_cfg.train_tasks)}, tasks.test_tasks={list(tasks_cfg.test_tasks)})"
        )
    train = [it for t in tasks_cfg.train_tasks for it in _items(t, "train", tasks_cfg.n_train_items, tasks_cfg)]
    test = [it for t in tasks_cfg.test_tasks for it in _items(t, "val", tasks_cfg.n_test_items, tasks_cfg)]
    return _recorded(ItemSet(train, test, properties, corrected=bool(tasks_cfg.corrected_prompts),
                          compliance=str(tasks_cfg.get("compliance", "authors"))), store)


def _recorded(plan: ItemSet, store: Store) -> ItemSet:
    """Write the plan's items into the store (for audit) and return it."""
    train, test, properties = plan.train_items, plan.test_items, plan.properties
    key = digest({"v": BUILD_VERSION, "normalizer": prompts.NORMALIZER_VERSION, "train": items_checksum(train),
                  "test": items_checksum(test), "properties": properties, "corrected": plan.corrected})

    def write(folder: Path) -> dict:
        write_jsonl_atomic(folder / "train_items.jsonl", [asdict(i) for i in train])
        write_jsonl_atomic(folder / "test_items.jsonl", [asdict(i) for i in test])
        write_json_atomic(folder / "properties.json", properties)
        return {"n_train": len(train), "n_test": len(test)}

    store.get_or_build("items", key, write)
    return plan


def _items(task_name: str, split: str, n: int, tasks_cfg) -> list[Item]:
    task = get_task(task_name)
    items = load_items(task, split, n, tasks_cfg.seed, tasks_cfg.data_dir)
    if not items:
        role = "train" if split == "train" else "test"
        data = Path(tasks_cfg.data_dir) / f"{split}_{task.source}.jsonl" if tasks_cfg.data_dir else "its generator"
        raise ValueError(f"task '{task_name}' has no {split} items (tasks.n_{role}_items={n}, data from {data}); "
                         f"give it items or remove it from tasks.{role}_tasks")
    return items


def object_values(plan: ItemSet, items: list[Item], answers: dict[str, Answer]) -> dict[tuple[str, str], str | None]:
    """(item_id, property) -> the canonical property value of the model's object-level answer."""
    values = {}
    for it in items:
        answer = answers.get(f"obj|{it.item_id}")
        for name in plan.properties[it.task]:
            raw = answer.text if answer is not None and answer.text is not None else None
            values[(it.item_id, name)] = None if raw is None else property_value(get_property(name), raw, it.target, plan.compliance)
    return values

