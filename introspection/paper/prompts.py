"""Rendering of object-level and hypothetical prompts, and the one answer normaliser.

Message format (docs/method.md §1.1): ``[system "", user <content>]``. The object-level user content is the
task prompt with ``$string`` filled in plus a trailing newline. The hypothetical user content is::

    Previously, you were asked the following question: "<filled task prompt>" <property question>\\n

`normalize` (defined in introspection/paper/normalize.py, re-exported here) is the single normaliser used for
compliance, for property values (the finetuning target and the scoring ground truth) and for predictions;
see `properties.property_value`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from introspection.core.types import Messages
from introspection.paper.normalize import NORMALIZER_VERSION, normalize

if TYPE_CHECKING:  # type hints only: rendering needs no task registry loaded
    from introspection.paper.properties import Property
    from introspection.paper.tasks import Task

__all__ = ["HYPOTHETICAL_PREAMBLE", "NORMALIZER_VERSION", "filled_prompt", "hypothetical_messages", "normalize",
           "object_messages"]

HYPOTHETICAL_PREAMBLE = "Previously, you were asked the following question: "


def filled_prompt(task: Task, string: str, *, corrected: bool = False) -> str:
    """The task prompt with ``$string`` replaced by the item (no trailing newline)."""
    if not isinstance(string, str):
        raise TypeError(f"item string for task {task.name!r} must be a str, got {type(string).__name__}")
    template = task.corrected_prompt if corrected else task.prompt
    return template.replace("$string", string)


def object_messages(task: Task, string: str, *, corrected: bool = False) -> Messages:
    """Object-level chat messages for one item (docs/method.md §1.1, §1.2)."""
    content = filled_prompt(task, string, corrected=corrected) + "\n"
    return [{"role": "system", "content": ""}, {"role": "user", "content": content}]


def hypothetical_messages(task: Task, prop: Property, string: str, *, corrected: bool = False) -> Messages:
    """Hypothetical (meta-level) chat messages for one item and property (docs/method.md §1.1, §1.3)."""
    question = prop.question_text(task.stance, corrected=corrected, task_name=task.name)
    inner = filled_prompt(task, string, corrected=corrected)
    content = f'{HYPOTHETICAL_PREAMBLE}"{inner}" {question}\n'
    return [{"role": "system", "content": ""}, {"role": "user", "content": content}]
