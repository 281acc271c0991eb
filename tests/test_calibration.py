"""Calibration distributions, points, binning and MAD on hand examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from introspection.analysis.calibration import (
    binned_curve,
    calibration_points,
    hypothetical_distribution,
    logprob_distribution,
    mad,
    object_distribution,
    second_character,
)


def test_second_character():
    assert second_character("  Cat\n") == "a"
    assert second_character("DOG") == "o"
    assert second_character("A") is None
    assert second_character(None) is None


def test_object_distribution_drops_short_answers_and_lowercases():
    # "a" is dropped (one character); a-a-o among the remaining four is "a" x3, "o" x1
    dist = object_distribution(["cat", "CAT", "dog", "a", "bat"])
    assert dist == pytest.approx({"a": 0.75, "o": 0.25})
    assert object_distribution(["x", ""]) == {}
    assert object_distribution(["cat", "dog"], key=lambda s: s[0]) == pytest.approx({"c": 0.5, "d": 0.5})


def test_hypothetical_distribution_counts_every_sample():
    dist = hypothetical_distribution(["A", " a", "o", None])
    assert dist == pytest.approx({"a": 0.5, "o": 0.25})
    assert hypothetical_distribution([]) == {}


def test_calibration_points_top_k_and_missing_is_zero():
    obj = [{"o": 0.3, "a": 0.5, "e": 0.15, "i": 0.05}, {"x": 1.0}]
    hyp = [{"a": 0.6, "e": 0.4}, {"y": 1.0}]
    points = calibration_points(obj, hyp, top_k=3)
    assert points == [(0.5, 0.6), (0.3, 0.0), (0.15, 0.4), (1.0, 0.0)]
    assert calibration_points(obj, hyp, top_k=1) == [(0.5, 0.6), (1.0, 0.0)]
    with pytest.raises(ValueError, match="aligned"):
        calibration_points(obj, hyp[:1])


def test_binned_curve_and_mad_hand_example():
    points = [(0.1, 0.0), (0.9, 0.6), (0.2, 0.4), (0.8, 1.0)]
    curve = binned_curve(points, n_bins=2)
    assert [b["n"] for b in curve] == [2, 2]
    assert [b["x_mean"] for b in curve] == pytest.approx([0.15, 0.85])
    assert [b["y_mean"] for b in curve] == pytest.approx([0.2, 0.8])
    assert mad(points, n_bins=2) == pytest.approx(5.0)  # mean(|.15-.2|, |.85-.8|) * 100


def test_ten_equal_frequency_bins_match_sorted_pairs():
    rng = np.random.default_rng(0)
    x = rng.permutation(np.linspace(0.01, 0.99, 30))  # distinct x: 10 bins of 3 in x order
    y = rng.random(30)
    curve = binned_curve(list(zip(x, y, strict=False)), n_bins=10)
    order = np.argsort(x)
    xs, ys = x[order].reshape(10, 3).mean(axis=1), y[order].reshape(10, 3).mean(axis=1)
    assert [b["x_mean"] for b in curve] == pytest.approx(xs.tolist())
    assert [b["y_mean"] for b in curve] == pytest.approx(ys.tolist())
    assert mad(list(zip(x, y, strict=False))) == pytest.approx(np.mean(np.abs(xs - ys)) * 100)


def test_binned_curve_duplicate_edges_are_dropped():
    # q=4 quantile edges of x are (0.1, 0.5, 0.5, 0.5, 0.9); dropping repeats leaves (0.1, 0.5, 0.9):
    # bin (0.1, 0.5] holds 0.1 (lowest edge included) and the four 0.5s, bin (0.5, 0.9] holds 0.9
    points = [(0.1, 0.0), (0.5, 0.2), (0.5, 0.2), (0.5, 0.2), (0.5, 0.2), (0.9, 0.5)]
    curve = binned_curve(points, n_bins=4)
    assert [b["n"] for b in curve] == [5, 1]
    assert [b["x_mean"] for b in curve] == pytest.approx([0.42, 0.9])
    assert [b["y_mean"] for b in curve] == pytest.approx([0.16, 0.5])
    assert mad(points, n_bins=4) == pytest.approx(33.0)  # mean(0.26, 0.40) * 100


def test_binned_curve_edge_cases():
    assert binned_curve([]) == [] and math.isnan(mad([]))
    same_x = binned_curve([(1.0, 0.5), (1.0, 1.0)])  # qcut alone would return no bin here
    assert same_x == [{"x_mean": 1.0, "y_mean": 0.75, "n": 2}]
    assert mad([(p, p) for p in np.linspace(0, 1, 25)]) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="points"):
        binned_curve([(0.1, 0.2, 0.3)])
    with pytest.raises(ValueError, match="n_bins"):
        binned_curve([(0.1, 0.2)], n_bins=0)


def test_logprob_distribution_merges_space_variants():
    dist = logprob_distribution([(" A", math.log(0.4)), ("A", math.log(0.2)), ("B", math.log(0.2))])
    assert dist == pytest.approx({"A": 0.75, "B": 0.25})
    # very negative log-probs must not underflow: only the difference matters
    far = logprob_distribution([("x", -1000.0), ("y", -1001.0)])
    assert far["x"] == pytest.approx(1 / (1 + math.exp(-1)))
    assert logprob_distribution([("x", 0.0), ("y", -math.inf)]) == {"x": 1.0, "y": 0.0}
    assert logprob_distribution([]) == {}
    with pytest.raises(ValueError, match="logprobs"):
        logprob_distribution([("x", float("nan"))])


# ----------------------------------------------------------------------------- the experiment reads the chosen property

from introspection.core.types import Answer, Item  # noqa: E402
from introspection.experiments.calibration import (  # noqa: E402
    CalibrationOptions,
    accepted_properties,
    check_property,
    requests,
    setup_distributions,
)
from introspection.paper.properties import get_property  # noqa: E402

# (property, task, item target, sampled object answers, p_obj of that property written out by hand)
OBJECT_CASES = [
    ("first_character", "animals_single", None, ["cat", "cow", "dog", "Cat"], {"c": 0.75, "d": 0.25}),
    ("second_character", "animals_single", None, ["cat", "cow", "dog", "Cat"], {"a": 0.5, "o": 0.5}),
    ("third_character", "animals_single", None, ["cat", "cow", "dog", "Cat"], {"t": 0.5, "w": 0.25, "g": 0.25}),
    ("starts_with_vowel", "animals_single", None, ["owl", "cat", "eel", "ant"], {"true": 0.75, "false": 0.25}),
    ("among_a_or_c", "mmlu_non_cot", "B", ["A", "B", "C", "A"], {"true": 0.75, "false": 0.25}),
    ("among_b_or_d", "mmlu_non_cot", "B", ["A", "B", "C", "A"], {"true": 0.25, "false": 0.75}),
    ("ethical_stance", "survival_instinct", "B", ["B", "A", "B", "B"], {"true": 0.75, "false": 0.25}),
    ("is_even", "numbers", None, ["12", "7", "40", "3"], {"true": 0.5, "false": 0.5}),
    ("is_even_direct", "numbers", None, ["12", "7", "40", "30"], {"even": 0.75, "odd": 0.25}),
]


def test_every_accepted_property_has_a_case():
    assert sorted(case[0] for case in OBJECT_CASES) == accepted_properties()


def _answers(prefix: str, item_id: str, samples: list[str | None], logprobs=()) -> dict[str, Answer]:
    rid = f"{prefix}|{item_id}"
    return {rid: Answer(rid, samples[0], samples=list(samples), first_token_logprobs=list(logprobs))}


@pytest.mark.parametrize(("prop_name", "task", "target", "samples", "expected"), OBJECT_CASES,
                         ids=[case[0] for case in OBJECT_CASES])
def test_object_side_reads_the_chosen_property(prop_name, task, target, samples, expected):
    prop = check_property(task, prop_name)  # calibration accepts this property on this task
    item = Item(task, f"{task}:val:0", "string", target)
    values = sorted({k for k in expected})
    hyp = [values[0].upper(), f" {values[-1]}.", None, values[0]]  # read as scoring reads a prediction
    greedy = [(f" {values[0].upper()}", math.log(0.6)), (values[0], math.log(0.2)), (values[-1], math.log(0.2))]
    dists = setup_distributions(prop, [item], _answers("cal-obj", item.item_id, samples),
                                _answers("cal-hyp", item.item_id, hyp), _answers("cal-hyp", item.item_id, ["x"], greedy))
    assert dists["object"] == [pytest.approx(expected)]
    if prop_name != "second_character":  # the old object side: the second character, whatever was asked
        assert object_distribution(samples) != pytest.approx(expected)
    if len(values) > 1:
        assert dists["sampled"] == [pytest.approx({values[0]: 0.5, values[-1]: 0.25})]
        assert dists["logprob"] == [pytest.approx({values[0]: 0.8, values[-1]: 0.2})]
    assert dists["hypothetical_compliance"] == pytest.approx(0.75)  # the None sample is no answer


def test_ethical_stance_object_side_uses_each_items_target():
    prop = get_property("ethical_stance")
    items = [Item("survival_instinct", f"s:{i}", "q", target) for i, target in enumerate(["A", "B"])]
    objects = {**_answers("cal-obj", "s:0", ["A", "A", "B"]), **_answers("cal-obj", "s:1", ["A", "A", "B"])}
    hyp = {**_answers("cal-hyp", "s:0", ["true"]), **_answers("cal-hyp", "s:1", ["true"])}
    dists = setup_distributions(prop, items, objects, hyp, hyp)
    assert dists["object"] == [pytest.approx({"true": 2 / 3, "false": 1 / 3}), pytest.approx({"false": 2 / 3, "true": 1 / 3})]


@pytest.mark.parametrize(
    ("task", "prop", "message"),
    [
        ("animals_single", "first_word", "'first_word' cannot be calibrated on task 'animals_single' (its values are not one"),
        ("animals_single", "first_and_second_character", "valid for this task: first_character, second_character"),
        ("animals_single", "ethical_stance", "task 'animals_single' is not asked about it"),
        ("animals_single", "fifth_character", "unknown property 'fifth_character'"),
    ],
)
def test_properties_calibration_refuses(task, prop, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")) as info:
        check_property(task, prop)
    assert "\n" not in str(info.value)


def test_options_reject_an_unaccepted_property_at_start():
    from omegaconf import OmegaConf

    from introspection.experiments.calibration import options

    cfg = OmegaConf.create({"experiment": {"options": {"property": "third_word"}}})
    with pytest.raises(ValueError, match="'third_word' cannot be calibrated"):
        options(cfg)
    ok = OmegaConf.create({"experiment": {"options": {"property": "starts_with_vowel"}}})
    assert options(ok).property == "starts_with_vowel"


def test_requests_ask_the_chosen_property():
    opts = CalibrationOptions(task="animals_single", property="starts_with_vowel")
    item = Item("animals_single", "animals_single:val:3", "cat dog owl")
    obj, hyp = requests(opts, [item])
    assert obj[0].request_id == "cal-obj|animals_single:val:3" and hyp[0].request_id == "cal-hyp|animals_single:val:3"
    assert "start with a vowel" in hyp[0].messages[-1]["content"]
    assert all(m["role"] != "system" for m in obj[0].messages + hyp[0].messages)
