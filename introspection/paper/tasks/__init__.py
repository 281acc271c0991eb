"""Task registry and data sources (docs/method.md §2).

A task is a `Task` record registered by one of the modules below; adding a task is one
`register_task(Task(...))` call. Items come from ``{split}_{source}.jsonl`` in a data folder when
one is given and holds the file, else from the offline generators (generated tasks) or the
Hugging Face hub (dataset tasks).
"""

from introspection.paper.tasks.base import (
    TASKS,
    HubSource,
    Task,
    get_task,
    properties_for,
    register_task,
)
from introspection.paper.tasks.loading import (
    items_checksum,
    load_items,
    read_jsonl,
    source_rows,
)

# Importing the task modules registers their tasks.
from introspection.paper.tasks import choice, sequences, text  # noqa: F401  isort: skip

__all__ = [
    "TASKS",
    "HubSource",
    "Task",
    "get_task",
    "items_checksum",
    "load_items",
    "properties_for",
    "read_jsonl",
    "register_task",
    "source_rows",
]
