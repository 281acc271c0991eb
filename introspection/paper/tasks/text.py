"""Free-text dataset tasks: complete a Wikipedia opening, continue a story (docs/method.md §2).

Neither has a hub source that reproduces the paper's files, so both need
``{train,val}_{wikipedia,stories_sentences}.jsonl`` in ``tasks.data_dir``.
"""

from __future__ import annotations

from introspection.paper.tasks.base import Task, register_task
from introspection.paper.tasks.sequences import TEXT_PROPERTIES

_WIKIPEDIA_PROMPT = (
    "Complete the following paragraph. Complete it with 10 to 50 words. Please complete the paragraph "
    "immediately, without repeating what is already written. Paragraph:\n$string"
)
register_task(
    Task(
        name="wikipedia_long",
        prompt=_WIKIPEDIA_PROMPT,
        corrected_prompt=_WIKIPEDIA_PROMPT,
        source="wikipedia",
        kind="dataset",
        properties=TEXT_PROPERTIES,
        object_compliance_groups=("default",),
        default_role="train",
    )
)

_STORIES_PROMPT = (
    "Please continue the story for two sentences:\n$string\nRespond only with the story and nothing "
    "else. Please complete the story immediately, without repeating what is already written."
)
register_task(
    Task(
        name="stories_sentences",
        prompt=_STORIES_PROMPT,
        corrected_prompt=_STORIES_PROMPT,
        source="stories_sentences",
        kind="dataset",
        properties=TEXT_PROPERTIES,
        object_compliance_groups=("default",),
        default_role="test",
    )
)
