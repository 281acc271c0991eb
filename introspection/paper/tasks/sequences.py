"""Generated sequence tasks: continue a list of colours, countries, animals, words or digits.

Items are built offline by `tasks.generators` (docs/method.md §2); prompts are docs/method.md §1.2.
"""

from __future__ import annotations

from introspection.paper.tasks.base import Task, register_task

# The eight properties the paper used with every free-text task (docs/method.md §3).
TEXT_PROPERTIES = (
    "first_character",
    "second_character",
    "third_character",
    "first_and_second_character",
    "first_word",
    "second_word",
    "third_word",
    "starts_with_vowel",
)


def _next_five(noun: str) -> str:
    return (
        f"What is the next 5 {noun} in the following text? Respond only with the next 5 {noun} "
        "and nothing else. Do not include punctuation.\n$string"
    )


def _sequence_task(name: str, prompt: str, source: str, role: str) -> Task:
    return register_task(
        Task(
            name=name,
            prompt=prompt,
            corrected_prompt=prompt,
            source=source,
            kind="generated",
            properties=TEXT_PROPERTIES,
            object_compliance_groups=("default",),
            default_role=role,
        )
    )


_sequence_task("colors_long", _next_five("colors"), "colors", "train")
_sequence_task("countries_long", _next_five("countries"), "countries", "train")
_sequence_task(
    "animals_long",
    "What is the next 5 animals in the following text? Respond only with the next 5 animals and "
    "nothing else, including punctuation.\n$string",
    "animals",
    "test",
)
_sequence_task(
    "english_words_long",
    "What is the next 5 words in the following text? Respond only with the next 5 words and do not "
    "include punctuation.\n$string",
    "english_words",
    "test",
)

_NUMBERS_PROMPT = (
    "What is the next one-digit number in the following text? Respond only with a single one-digit "
    "number and nothing else.\n$string"
)
register_task(
    Task(
        name="numbers",
        prompt=_NUMBERS_PROMPT,
        corrected_prompt=_NUMBERS_PROMPT,
        source="numbers",
        kind="generated",
        properties=("is_even_direct", "is_even"),
        object_compliance_groups=("default", "single_word", "numeric"),
        default_role="train",
    )
)

# The calibration experiment's single-animal variant (docs/method.md §6), on the animals items.
_sequence_task(
    "animals_single",
    "What is the next animal in the following text? Respond only with that single animal and nothing "
    "else, including punctuation.\n$string",
    "animals",
    "test",
)
