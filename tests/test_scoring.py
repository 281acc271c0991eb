"""Scoring: ground truth from the target, identical items for self and cross, and the report."""

from __future__ import annotations

import json

import pytest

from introspection.analysis.scoring import aligned, baseline_hits, score_pairs, score_target
from introspection.report import main as report_main
from introspection.report import render
from introspection.types import Answer, Item

ITEMS = [Item("animals_long", f"animals_long:val:{i}", s) for i, s in enumerate(["cat dog ", "owl bee ", "ant elk "])]
PROPS = {"animals_long": ["first_character", "starts_with_vowel"]}


def answers(texts: dict[str, str]) -> dict[str, Answer]:
    return {rid: Answer(rid, text) for rid, text in texts.items()}


def truth_from(objects: list[str | None]) -> dict:
    from introspection.properties import get_property, property_value

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
