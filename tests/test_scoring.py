"""Scoring: ground truth from the target, identical items for self and cross, and the report."""

from __future__ import annotations

import json

import pytest

from introspection.analysis.scoring import aligned, baseline_hits, score_pairs, score_target
from introspection.core.types import Answer, Item
from introspection.outputs.report import main as report_main
from introspection.outputs.report import render

ITEMS = [Item("animals_long", f"animals_long:val:{i}", s) for i, s in enumerate(["cat dog ", "owl bee ", "ant elk "])]
PROPS = {"animals_long": ["first_character", "starts_with_vowel"]}


def answers(texts: dict[str, str]) -> dict[str, Answer]:
    return {rid: Answer(rid, text) for rid, text in texts.items()}


def truth_from(objects: list[str | None]) -> dict:
    from introspection.paper.properties import get_property, property_value

    out = {}
    for it, obj in zip(ITEMS, objects, strict=True):
        for p in PROPS["animals_long"]:
            out[(it.item_id, p)] = None if obj is None else property_value(get_property(p), obj, None)
    return out


def test_pairs_use_the_targets_truth_and_skip_undefined_properties():
    truth = truth_from(["Cat, dog", "owl bee", None])  # the third object answer is missing
    preds = answers({f"hyp|{ITEMS[0].item_id}|first_character": "C", f"hyp|{ITEMS[0].item_id}|starts_with_vowel": "true",
                     f"hyp|{ITEMS[1].item_id}|first_character": "o", f"hyp|{ITEMS[1].item_id}|starts_with_vowel": "maybe"})
    rows = score_pairs(ITEMS, PROPS, truth, preds, predictor="p", target="t", kind="self")
    assert len(rows) == 4  # item 3 has no ground truth
    by = {(r["item_id"], r["property"]): r for r in rows}
    assert by[(ITEMS[0].item_id, "first_character")]["correct"] is True  # "C" normalises to "c"
    assert by[(ITEMS[0].item_id, "starts_with_vowel")]["correct"] is False  # cat does not start with a vowel
    assert by[(ITEMS[1].item_id, "starts_with_vowel")]["compliant"] is False  # "maybe" is not true/false


def test_a_missing_prediction_is_never_compliant_or_correct():
    # "a dog": its second character cleans to "", which the authors score; an absent answer (mode-of-n found
    # no mode) must not pass as that empty value, while an empty *text* still can.
    items = ITEMS[:2]
    props = {"animals_long": ["second_character"]}
    truth = {(it.item_id, "second_character"): "" for it in items}
    preds = {f"hyp|{items[0].item_id}|second_character": Answer("x", None),
             f"hyp|{items[1].item_id}|second_character": Answer("y", " ")}
    rows = score_pairs(items, props, truth, preds, predictor="p", target="t", kind="self")
    by = {r["item_id"]: r for r in rows}
    assert (by[items[0].item_id]["compliant"], by[items[0].item_id]["correct"]) == (False, False)
    assert by[items[1].item_id]["correct"] is True


def _row(item, prop, correct, compliant=True, kind="self"):
    return {"task": "animals_long", "item_id": item, "property": prop, "correct": correct, "compliant": compliant,
            "truth": "x", "predictor": kind, "target": "t", "kind": kind}


def test_self_and_cross_are_scored_on_identical_keys():
    self_rows = [_row("a", "p", True), _row("b", "p", True), _row("c", "p", False, compliant=False)]
    cross_rows = [_row("b", "p", False, kind="cross"), _row("c", "p", True, kind="cross"), _row("d", "p", True, kind="cross")]
    s, c = aligned(self_rows, cross_rows, "wrong")
    assert [(r["item_id"], r["property"]) for r in s] == [(r["item_id"], r["property"]) for r in c] == [("b", "p"), ("c", "p")]
    s, c = aligned(self_rows, cross_rows, "exclude")  # a non-compliant side drops the pair from both
    assert [r["item_id"] for r in s] == [r["item_id"] for r in c] == ["b"]
    with pytest.raises(ValueError, match="valid: wrong, exclude"):
        aligned(self_rows, cross_rows, "ignore")


def test_score_target_cells_and_paired_test_share_n():
    self_rows = [_row(str(i), "p", i % 2 == 0) for i in range(10)]
    cross_rows = [_row(str(i), "p", i % 3 == 0, kind="cross") for i in range(12)]
    out = score_target(self_rows, {"cross": cross_rows}, "wrong")
    micro = [c for c in out["cells"] if c["task"] == "all" and c["property"] == "all"]
    assert {c["kind"]: c["n"] for c in micro} == {"self": 10, "cross": 10}
    assert out["paired_tests"][0]["n"] == 10
    assert out["paired_tests"][0]["self_accuracy"] == pytest.approx(0.5)
    assert out["paired_tests"][0]["cross_accuracy"] == pytest.approx(0.4)  # 0, 3, 6, 9 of the shared ten


def test_mode_baseline_is_per_task_and_property():
    rows = [dict(_row(str(i), "p", True), truth=t) for i, t in enumerate(["a", "a", "b"])]
    rows += [dict(_row(str(i), "q", True), truth=t) for i, t in enumerate(["z", "y", "y"])]
    assert baseline_hits(rows) == [True, True, False, False, True, True]


def test_report_renders_from_saved_results(tmp_path, capsys):
    self_rows = [_row(str(i), "p", i % 2 == 0) for i in range(10)]
    cross_rows = [_row(str(i), "p", i % 3 == 0, kind="cross") for i in range(10)]
    out = score_target(self_rows, {"cross": cross_rows}, "wrong")
    (tmp_path / "results.json").write_text(json.dumps({"experiment": "cross_prediction", "cells": out["cells"],
                                                       "paired_tests": out["paired_tests"], "noncompliant": "wrong"}))
    path = render(tmp_path)
    text = path.read_text()
    assert "## Self- vs cross-prediction" in text and "## Paired tests" in text and "McNemar" in text
    assert (tmp_path / "plots" / "matrix.png").stat().st_size > 1000
    # Breakdown tables name what they break down by: the property (and the task) of every row.
    by_task = text.split("## By task and property")[1]
    assert "| task | property | predictor |" in by_task and "| animals_long | p | self | t | self |" in by_task
    assert report_main([str(tmp_path / "missing")]) == 2
    assert "no results.json" in capsys.readouterr().err


def test_distribution_matched_cells_have_equal_behaviour_marginals():
    from introspection.analysis.scoring import distribution_matched

    truths_a = ["a", "a", "a", "b", "b", "c"]
    truths_b = ["a", "b", "b", "b", "c", "c"]
    rows_a = [dict(_row(str(i), "p", True, kind="untrained"), truth=t) for i, t in enumerate(truths_a)]
    rows_b = [dict(_row(str(i), "p", i % 2 == 0), truth=t) for i, t in enumerate(truths_b)]
    cells = distribution_matched(rows_a, rows_b, "wrong")
    assert [c["kind"] for c in cells] == ["untrained", "self"] and {c["task"] for c in cells} == {"adjusted"}
    # a: {a:3, b:2, c:1}, b: {a:1, b:3, c:2} -> keep min per answer: a 1, b 2, c 1 on each side.
    assert cells[0]["n"] == cells[1]["n"] == 4


# ----------------------------------------------------------------------------- flags


def _truth_rows(truths: list[str], correct: list[bool], kind: str = "self", compliant: list[bool] | None = None):
    compliant = compliant or [True] * len(truths)
    return [dict(_row(str(i), "p", ok, compliant=comp, kind=kind), truth=t)
            for i, (t, ok, comp) in enumerate(zip(truths, correct, compliant, strict=True))]


def test_cell_flags_follow_the_thresholds():
    from introspection.analysis.scoring import LOW_COMPLIANCE, NO_SIGNAL_BASELINE, cell

    assert (NO_SIGNAL_BASELINE, LOW_COMPLIANCE) == (0.95, 0.50)
    same = _truth_rows(["a"] * 20, [True] * 15 + [False] * 5)
    flagged = cell(same, same, predictor="p", target="t", kind="self")
    assert flagged["mode_baseline"] == 1.0
    assert flagged["flag"] == "no signal: the target behaves the same on 100.0% of items"
    edge = _truth_rows(["a"] * 19 + ["b"], [True] * 20)  # 95% exactly: flagged
    assert cell(edge, edge, predictor="p", target="t", kind="self")["flag"].startswith("no signal: ")
    varied = _truth_rows(["a"] * 18 + ["b"] * 2, [True] * 20)  # 90%: not flagged
    assert cell(varied, varied, predictor="p", target="t", kind="self")["flag"] is None
    half = _truth_rows(["a", "b"] * 10, [True] * 20, compliant=[True, False] * 10)  # 50% compliant: not flagged
    assert cell(half, half, predictor="p", target="t", kind="self")["flag"] is None
    low = _truth_rows(["a", "b"] * 10, [False] * 20, compliant=[True] * 9 + [False] * 11)
    assert cell(low, low, predictor="p", target="t", kind="self")["flag"] == \
        "low compliance: 45.0% of answers in the property's format"
    both = _truth_rows(["a"] * 20, [False] * 20, compliant=[False] * 20)
    assert cell(both, both, predictor="p", target="t", kind="untrained")["flag"] == (
        "no signal: the target behaves the same on 100.0% of items; "
        "low compliance: 0.0% of answers in the property's format")


def test_every_cell_and_paired_test_carries_the_flag():
    truths = ["a"] * 40  # a target that always behaves the same way
    self_rows = [dict(r, task=task) for task in ("animals_long", "colors_long")
                 for r in _truth_rows(truths, [i % 4 != 0 for i in range(40)])]
    for r in self_rows:
        r["item_id"] = f"{r['task']}:{r['item_id']}"
    cross_rows = [dict(r, kind="cross", predictor="cross", correct=True) for r in self_rows]
    out = score_target(self_rows, {"cross": cross_rows}, "wrong")
    assert len(out["cells"]) > 2 and all("flag" in c for c in out["cells"])
    assert all(c["flag"].startswith("no signal: the target behaves the same on 100.0% of items") for c in out["cells"])
    assert [t["task"] for t in out["paired_tests"]] == ["all", "animals_long", "colors_long"]
    assert all(t["flag"] == "no signal: the target behaves the same on 100.0% of items" for t in out["paired_tests"])
    # the same numbers on a target whose behaviour varies: no flag anywhere
    varied = [dict(r, truth="ab"[i % 2]) for i, r in enumerate(self_rows)]
    varied_cross = [dict(r, kind="cross", predictor="cross", correct=True) for r in varied]
    out = score_target(varied, {"cross": varied_cross}, "wrong")
    assert all(c["flag"] is None for c in out["cells"]) and all(t["flag"] is None for t in out["paired_tests"])


def test_paired_flag_names_the_low_compliance_side():
    rows = _truth_rows(["a", "b"] * 10, [True] * 20)
    cross = _truth_rows(["a", "b"] * 10, [False] * 20, kind="cross", compliant=[False] * 16 + [True] * 4)
    cross = [dict(r, predictor="m2") for r in cross]
    test = score_target(rows, {"m2": cross}, "wrong")["paired_tests"][0]
    assert test["flag"] == "cross predictor m2: low compliance: 20.0% of answers in the property's format"


def test_console_table_and_report_show_flags(tmp_path):
    from introspection.outputs.run_outputs import MATRIX_COLUMNS, format_table

    constant = _truth_rows(["a"] * 30, [True] * 20 + [False] * 10)
    constant_cross = [dict(r, kind="cross", predictor="m2", correct=True) for r in constant]
    flagged = score_target(constant, {"m2": constant_cross}, "wrong")
    varied = [dict(r, target="u", truth="ab"[i % 2]) for i, r in enumerate(constant)]
    varied_cross = [dict(r, kind="cross", predictor="m2", correct=i % 3 == 0) for i, r in enumerate(varied)]
    fine = score_target(varied, {"m2": varied_cross}, "wrong")
    results = {"cells": flagged["cells"] + fine["cells"], "paired_tests": flagged["paired_tests"] + fine["paired_tests"]}
    table = format_table(results).split("\n")
    assert table[0].endswith("flag")
    rows_t = [line for line in table if line.startswith("self ") and " t " in line]
    assert rows_t and all(line.endswith("no signal: the target behaves the same on 100.0% of items") for line in rows_t)
    assert table[-2] == ("self vs cross for target t: not informative (no signal: the target behaves the same on "
                         "100.0% of items); measured 66.7% vs 100.0% (m2), difference -33.3% "
                         f"[{flagged['paired_tests'][0]['ci_low']:+.1%}, {flagged['paired_tests'][0]['ci_high']:+.1%}], "
                         f"n=30, exact McNemar p={flagged['paired_tests'][0]['mcnemar_p']:.3g}")
    assert table[-1].startswith("self vs cross for target u: 66.7% vs ") and "not informative" not in table[-1]
    assert "flag" in MATRIX_COLUMNS  # matrix.csv and the W&B matrix table carry it
    (tmp_path / "results.json").write_text(json.dumps({"experiment": "cross_prediction", "noncompliant": "wrong", **results}))
    text = render(tmp_path).read_text()
    assert "A **flag** marks a number that says nothing about introspection" in text and "at least 95%" in text
    assert "| self | t | self | 66.7% |" in text
    assert text.count("**no signal: the target behaves the same on 100.0% of items**") >= 3  # cells and the test
    paired = text.split("## Paired tests")[1].split("##")[0]
    assert "| t | all |" in paired and paired.count("**no signal") == 1


def test_print_summary_explains_the_flags(tmp_path, capsys):
    from introspection.outputs.run_outputs import print_summary

    constant = _truth_rows(["a"] * 30, [True] * 30)
    results = score_target(constant, {"m2": [dict(r, kind="cross", predictor="m2") for r in constant]}, "wrong")
    print_summary({"cells": results["cells"], "paired_tests": results["paired_tests"]}, tmp_path)
    out = capsys.readouterr().out
    assert "self vs cross for target t: not informative (no signal" in out
    assert "flagged cells say nothing about introspection: no signal = mode baseline >= 95%" in out
    varied = [dict(r, truth="ab"[i % 2]) for i, r in enumerate(constant)]
    results = score_target(varied, {"m2": [dict(r, kind="cross", predictor="m2") for r in varied]}, "wrong")
    print_summary({"cells": results["cells"], "paired_tests": results["paired_tests"]}, tmp_path)
    assert "flagged" not in capsys.readouterr().out
