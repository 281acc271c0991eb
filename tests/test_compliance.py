"""Compliance groups (docs/method.md §4.1) on hand-made answers, in both modes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from introspection.paper.compliance import (
    COMPLIANCE_GROUPS,
    check_mode,
    hypothetical_groups,
    is_compliant,
    noncompliance_reason,
)
from introspection.paper.properties import get_property


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


# --- golden table: verdicts derived from the written rules by tests/golden/make_tables.py ---------------

GOLDEN = Path(__file__).resolve().parent / "golden"


def _golden_rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (GOLDEN / name).read_text(encoding="utf-8").split("\n") if line]


def _generator():
    spec = importlib.util.spec_from_file_location("golden_make_tables", GOLDEN / "make_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_golden_compliance_table() -> None:
    """Every answer of the golden table gets the verdict the authors' rules give it (default mode)."""
    rows = _golden_rows("compliance.jsonl")
    wrong = [(r["group"], r["answer"], r["compliant"]) for r in rows if is_compliant(r["answer"], [r["group"]]) != r["compliant"]]
    assert not wrong, f"{len(wrong)} of {len(rows)} verdicts differ, e.g. {wrong[:5]}"


def test_golden_compliance_table_covers_every_group_and_the_issue_cases() -> None:
    rows = _golden_rows("compliance.jsonl")
    for group in COMPLIANCE_GROUPS:
        answers = {r["answer"]: r["compliant"] for r in rows if r["group"] == group}
        assert len(answers) >= 1000, group
        passed = sum(answers.values())
        assert 0.05 * len(answers) < passed < 0.95 * len(answers), (group, passed)  # both verdicts well represented
    verdicts = {(r["group"], r["answer"]): r["compliant"] for r in rows}
    assert verdicts[("single_word", "- Brava")] is False
    assert verdicts[("default", "I don't know")] is True and verdicts[("default", "cannot")] is False
    assert verdicts[("numeric", " 7")] is False and verdicts[("numeric", "7.")] is False
    assert verdicts[("numeric", "7")] is True
    assert all(verdicts[("single_word", w)] for w in ("na", "no", "unknown"))


def test_golden_tables_are_what_the_rules_generate() -> None:
    """The committed tables are exactly the generator's output (regenerate with tests/golden/make_tables.py)."""
    compliance, properties = _generator().build()
    assert compliance == _golden_rows("compliance.jsonl")
    assert properties == _golden_rows("properties.jsonl")


def test_strict_mode_differs_from_the_authors_on_the_golden_table() -> None:
    """The switch is real: the strict checks disagree with the authors' on part of every group."""
    rows = _golden_rows("compliance.jsonl")
    for group in COMPLIANCE_GROUPS:
        group_rows = [r for r in rows if r["group"] == group]
        differ = sum(is_compliant(r["answer"], [group], "strict") != r["compliant"] for r in group_rows)
        assert differ > 0, group


def test_tasks_compliance_reaches_scoring_and_property_values() -> None:
    """tasks.compliance travels with the plan: object values (stages.object_values) and the compliance of
    hypothetical answers (scoring.score_pairs) follow it."""
    from introspection.analysis.scoring import score_pairs
    from introspection.core.types import Answer, Item
    from introspection.stages.items import ItemSet, object_values

    items = [Item("mmlu_non_cot", "m:0", "Q0", "A"), Item("animals_long", "a:0", "cat dog")]
    properties = {"mmlu_non_cot": ["among_a_or_c"], "animals_long": ["first_word"]}
    objects = {"obj|m:0": Answer("obj|m:0", "Answer: A"), "obj|a:0": Answer("obj|a:0", "- Brava")}
    hyps = {"hyp|m:0|among_a_or_c": Answer("hyp|m:0|among_a_or_c", "false"),
            "hyp|a:0|first_word": Answer("hyp|a:0|first_word", "- Brava")}
    seen = {}
    for mode in ("authors", "strict"):
        plan = ItemSet(items, items, properties, compliance=mode)
        truth = object_values(plan, items, objects)
        rows = score_pairs(items, properties, truth, hyps, predictor="p", target="t", kind="self", compliance=mode)
        seen[mode] = (truth, {r["property"]: (r["compliant"], r["correct"]) for r in rows})
    # authors: "Answer: A" is not A or C -> "false", predicted correctly; "- Brava" is two raw tokens
    assert seen["authors"][0] == {("m:0", "among_a_or_c"): "false", ("a:0", "first_word"): "brava"}
    assert seen["authors"][1] == {"among_a_or_c": (True, True), "first_word": (False, True)}
    # strict: no bare letter, no value (the pair is not scored); "- Brava" normalises to one word
    assert seen["strict"][0] == {("m:0", "among_a_or_c"): None, ("a:0", "first_word"): "brava"}
    assert seen["strict"][1] == {"first_word": (True, True)}
