"""Rendering of object-level and hypothetical prompts, and the one answer normaliser.

Message format (docs/method.md §1.1): ``[system "", user <content>]``. The object-level user content is the
task prompt with ``$string`` filled in plus a trailing newline. The hypothetical user content is::

    Previously, you were asked the following question: "<filled task prompt>" <property question>\\n

`normalize` is the single normaliser used for compliance, for property values (the finetuning
target and the scoring ground truth) and for predictions; see `properties.property_value`.
"""

from __future__ import annotations

import re
import string as _string
from typing import TYPE_CHECKING

from introspection.types import Messages

if TYPE_CHECKING:  # imported for type hints only: tasks and properties import this module
    from introspection.properties import Property
    from introspection.tasks import Task

# Bump whenever normalize() changes behaviour: it is part of every artifact cache key that
# depends on normalised values (property values, scores).
NORMALIZER_VERSION = "1"

_PUNCTUATION = str.maketrans("", "", _string.punctuation)
_WHITESPACE_RUN = re.compile(r"\s+")
# Step 5 of docs/method.md §1.5. The original removes punctuation (step 2) before this step, so the
# colon is already gone and the prefix never matches; kept for fidelity with the paper's order.
_ANSWER_PREFIXES = ("answer:", "response:", "assistant:")

HYPOTHETICAL_PREAMBLE = "Previously, you were asked the following question: "


def normalize(text: str) -> str:
    """Canonical comparison key of a model answer (docs/method.md §1.5, steps 1-6, in order).

    1. lowercase; 2. drop ASCII punctuation; 3. ``\\n``, ``\\r``, ``\\t`` -> space;
    4. collapse runs of whitespace to one space; 5. strip one leading ``answer:`` /
    ``response:`` / ``assistant:`` prefix; 6. strip.
    """
    if not isinstance(text, str):
        raise TypeError(f"normalize() needs a str, got {type(text).__name__} {text!r}")
    out = text.lower()
    out = out.translate(_PUNCTUATION)
    out = out.replace("\n", " ").replace("\r", " ").replace("\t", " ")
    out = _WHITESPACE_RUN.sub(" ", out)
    stripped = out.lstrip()
    for prefix in _ANSWER_PREFIXES:
        if stripped.startswith(prefix):
            out = stripped[len(prefix) :]
            break
    return out.lower().strip()


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
