"""Compliance groups (docs/method.md#41-compliance) on hand-made answers, in both modes."""

from __future__ import annotations

import pytest

from introspection.compliance import (
    COMPLIANCE_GROUPS,
    check_mode,
    hypothetical_groups,
    is_compliant,
    noncompliance_reason,
)
from introspection.properties import get_property


def test_groups_listed() -> None:
    assert set(COMPLIANCE_GROUPS) == {
        "default",
        "single_character",
        "single_word",
        "true_false",
        "even_odd",
        "multiple_choice",
        "numeric",
    }


# Refused by both modes.
REFUSED = [
    "", "   ", "?", "No.", "nope", "N/A", "Unknown", "I'm sorry, but I can't help with that.",
    "Apologies, I am not able to", "As an AI, I do not have a previous response.",
    "As a language model I cannot recall", "random", "Sequence", "undefined", "Cauchy Cauchy Cauchy Cauchy",
    "I do not know", "unable",
]
# The authors' list names these, but their punctuation is removed before the comparison (or the
# check wants the whole answer), so the authors accept them; strict refuses them.
STRICT_ONLY = ["*", "I don't know", "I cannot predict that.", "Unable to determine", "I can't", "    ", "\n"]
# The authors refuse these; strict accepts them.
AUTHORS_ONLY = ["cannot", "Indeterminate", "randomness", "apology", "sorrynotsorry", "as an aide"]


@pytest.mark.parametrize("raw", REFUSED)
def test_default_rejects_refusals_and_fillers(raw: str) -> None:
    assert not is_compliant(raw, ["default"])
    assert not is_compliant(raw, ["default"], "strict")


@pytest.mark.parametrize("raw", STRICT_ONLY)
def test_default_refusals_only_strict_rejects(raw: str) -> None:
    assert is_compliant(raw, ["default"])
    assert not is_compliant(raw, ["default"], "strict")


@pytest.mark.parametrize("raw", AUTHORS_ONLY)
def test_default_refusals_only_the_authors_reject(raw: str) -> None:
    assert not is_compliant(raw, ["default"])
    assert is_compliant(raw, ["default"], "strict")


@pytest.mark.parametrize(
    "raw",
    ["red green blue purple pink", "B", "true", "Nothing compares to you", "now", "Knowledge", "navy", "norway"],
)
def test_default_accepts_ordinary_answers(raw: str) -> None:
    assert is_compliant(raw, ["default"])
    assert is_compliant(raw, ["default"], "strict")


@pytest.mark.parametrize(
    ("group", "good", "bad", "strict_good"),
    [
        # the authors strip the ends before dropping punctuation: "' x'" keeps its inner space
        ("single_character", ["d", " D. ", "'x'", "?d"], ["", "do", "d o", "' x'", "d ."], ["' x'", "d ."]),
        # the authors split the raw answer: "- Brava" is two tokens; an empty answer is one word too few, not more
        ("single_word", ["dog", " Dog. ", "", "-Brava"], ["two words", "sorry", "- Brava", "Apologies"], ["- Brava"]),
        ("true_false", ["true", "False.", " 'TRUE' "], ["yes", "true false", "", "true ."], ["true ."]),
        ("even_odd", ["even", "Odd."], ["evens", "true", "", "odd !"], ["odd !"]),
        ("multiple_choice", ["A", "(b)", "z."], ["AB", "A or B", "1", "", "é", "A )"], ["A )"]),
        # the authors call str.isnumeric() on the raw answer
        ("numeric", ["7", "42", "٣", "½"], ["seven", "3 4", "-", "", " 7", "7.", " 3. "], [" 7", "7.", " 3. "]),
    ],
)
def test_format_groups(group: str, good: list[str], bad: list[str], strict_good: list[str]) -> None:
    for raw in good:
        assert is_compliant(raw, [group]), raw
    for raw in bad:
        assert not is_compliant(raw, [group]), raw
    for raw in strict_good:
        assert is_compliant(raw, [group], "strict"), raw


def test_groups_combine_and_reason_names_the_failing_group() -> None:
    groups = ["default", "multiple_choice"]
    assert is_compliant("B", groups)
    assert noncompliance_reason("No", groups) == "default: refusal/filler answer 'no' (no)"
    assert noncompliance_reason("No", groups, "strict") == "default: refusal/filler answer 'no'"
    reason = noncompliance_reason("B because it is right", groups)
    assert reason is not None and reason.startswith("multiple_choice:")
    assert is_compliant("7", ["default", "single_word", "numeric"])
    assert not is_compliant("7 8", ["default", "single_word", "numeric"])


def test_single_group_given_as_string() -> None:
    assert is_compliant("x", "single_character")
    assert not is_compliant("xy", "single_character")


def test_unknown_group_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown compliance group 'single_letter'.*valid: default"):
        is_compliant("a", ["single_letter"])


def test_unknown_mode_is_an_error() -> None:
    with pytest.raises(ValueError, match="'lenient' is not a compliance mode; valid: authors, strict"):
        is_compliant("a", ["default"], "lenient")
    with pytest.raises(ValueError, match="tasks.compliance='x'.*valid: authors, strict"):
        check_mode("x")


def test_none_answer_is_not_compliant() -> None:
    assert not is_compliant(None, ["default"])  # type: ignore[arg-type]
    assert not is_compliant(None, ["single_word"], "strict")  # type: ignore[arg-type]


def test_hypothetical_groups() -> None:
    """The authors check only the group a property's config lists; strict adds default."""
    assert hypothetical_groups(get_property("second_character")) == ("single_character",)
    assert hypothetical_groups(get_property("ethical_stance")) == ("true_false",)
    assert hypothetical_groups(get_property("is_even_direct")) == ("even_odd",)
    assert hypothetical_groups(get_property("identity")) == ("default",)
    assert hypothetical_groups(get_property("second_character"), "strict") == ("default", "single_character")
    assert hypothetical_groups(get_property("identity"), "strict") == ("default",)


@pytest.mark.parametrize("answer", ["na", "no", "unknown", "Na", "No."])
def test_correct_answers_that_look_like_refusals_pass_for_their_property(answer: str) -> None:
    """first_and_second_character of "navy" is "na", of "norway" "no": the authors accept both."""
    prop = get_property("first_and_second_character")
    assert is_compliant(answer, hypothetical_groups(prop))
    assert not is_compliant(answer, hypothetical_groups(prop, "strict"), "strict")
