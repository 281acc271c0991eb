"""Scoring: every (predictor, target, item, property) pair, the accuracy matrix, and paired tests.

The ground truth for a target T is always the object-level behaviour of T_self (T after training on
its own behaviour) on the held-out items. Self (T_self predicting T_self) and cross (P trained on
T_self's behaviour, predicting T_self) are scored on the same (item, property) keys: the intersection
of what both could be scored on, so their difference is a paired comparison.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from introspection.analysis.baselines import distribution_matched_indices, mode_baseline
from introspection.analysis.stats import accuracy_ci, clustered_accuracy_ci, holm, paired_comparison
from introspection.core import faults
from introspection.core.types import Answer, Item
from introspection.paper.compliance import hypothetical_groups, is_compliant
from introspection.paper.prompts import normalize
from introspection.paper.properties import get_property, is_correct

NONCOMPLIANT_TREATMENTS = ("wrong", "exclude")

# When a cell says nothing about introspection (docs/method.md#43-mode-baseline). The one place these live:
# cells, the console table, report.md, W&B and the paired tests all read them from here.
NO_SIGNAL_BASELINE = 0.95  # mode baseline >= this: the target (nearly) always behaves the same way
LOW_COMPLIANCE = 0.50  # compliance < this: most answers are not in the property's format


def no_signal_reason(mode_baseline: float) -> str | None:
    if mode_baseline >= NO_SIGNAL_BASELINE:
        return f"no signal: the target behaves the same on {mode_baseline:.1%} of items"
    return None


def low_compliance_reason(compliance: float) -> str | None:
    if compliance < LOW_COMPLIANCE:
        return f"low compliance: {compliance:.1%} of answers in the property's format"
    return None


def flag_reason(mode_baseline: float, compliance: float) -> str | None:
    """Why a cell is not evidence about introspection, or None. NaN (no rows) raises no flag."""
    reasons = [r for r in (no_signal_reason(mode_baseline), low_compliance_reason(compliance)) if r]
    return "; ".join(reasons) or None


def score_pairs(
    items: list[Item],
    properties: dict[str, list[str]],
    truth: dict[tuple[str, str], str | None],
    predictions: dict[str, Answer],
    *,
    predictor: str,
    target: str,
    kind: str,
    compliance: str = "authors",
) -> list[dict]:
    """One row per (item, property) whose ground truth exists (a compliant object-level answer).

    `compliance` is tasks.compliance: which checks a hypothetical answer must pass (introspection.paper.compliance).
    """
    rows = []
    for it in items:
        for name in properties[it.task]:
            value = truth.get((it.item_id, name))
            if value is None:
                continue  # the target's own answer has no such property: nothing to predict
            answer = predictions.get(f"hyp|{it.item_id}|{name}")
            # No answer at all (mode-of-n found no mode): never compliant, never correct, even where an empty
            # text would pass a format check or equal an empty property value.
            missing = answer is None or answer.text is None
            raw = "" if missing else answer.text
            prop = get_property(name)
            rows.append({
                "predictor": predictor, "target": target, "kind": kind, "task": it.task, "property": name,
                "item_id": it.item_id, "truth": value, "prediction_raw": raw, "prediction": normalize(raw),
                "compliant": not missing and is_compliant(raw, hypothetical_groups(prop, compliance), compliance),
                "correct": not missing and is_correct(raw, value),
            })
    return rows


def _key(row: dict) -> tuple[str, str, str]:
    return (row["task"], row["item_id"], row["property"])


def aligned(self_rows: list[dict], cross_rows: list[dict], noncompliant: str) -> tuple[list[dict], list[dict]]:
    """Restrict self and cross rows to the keys both can be scored on, in the same order."""
    if noncompliant not in NONCOMPLIANT_TREATMENTS:
        raise ValueError(f"unknown experiment.noncompliant '{noncompliant}'; valid: {', '.join(NONCOMPLIANT_TREATMENTS)}")
    keep = lambda r: noncompliant == "wrong" or r["compliant"]  # noqa: E731
    cross_by_key = {_key(r): r for r in cross_rows if keep(r)}
    self_kept = [r for r in self_rows if keep(r) and _key(r) in cross_by_key]
    return self_kept, [cross_by_key[_key(r)] for r in self_kept]


def other_treatment(noncompliant: str) -> str:
    return "exclude" if noncompliant == "wrong" else "wrong"


def baseline_hits(rows: list[dict]) -> list[bool]:
    """Per row: would always answering the target's most common value (per task and property) be right?"""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in rows:
        groups[(r["task"], r["property"])].append(r["truth"])
    modes = {g: mode_baseline(values)["mode"] for g, values in groups.items()}
    return [r["truth"] == modes[(r["task"], r["property"])] for r in rows]


def cell(rows: list[dict], all_rows: list[dict], *, predictor: str, target: str, kind: str,
         task: str = "all", prop: str = "all") -> dict:
    """Accuracy with n and 95% CI, the mode baseline on the same rows, and the compliance rate."""
    correct = [bool(r["correct"]) for r in rows]
    # One object item is asked about under several properties: cluster the SE by item.
    ci = clustered_accuracy_ci(correct, [r["item_id"] for r in rows]) if prop == "all" else accuracy_ci(correct)
    baseline = _share(baseline_hits(rows))
    compliance = _share([bool(r["compliant"]) for r in all_rows])
    return {
        "predictor": predictor, "target": target, "kind": kind, "task": task, "property": prop,
        "accuracy": ci["accuracy"], "ci_low": ci["ci_low"], "ci_high": ci["ci_high"], "se": ci["se"], "n": ci["n"],
        "ci_method": ci["ci_method"], "mode_baseline": baseline, "compliance": compliance,
        "flag": flag_reason(baseline, compliance),
    }


def _share(values: list[bool]) -> float:
    return sum(values) / len(values) if values else float("nan")


def pair_flag(s_rows: list[dict], self_all: list[dict], cross_all: list[dict], self_name: str, cross_name: str) -> str | None:
    """The flag of a self-vs-cross comparison: no signal in the shared ground truth, or either side's
    low compliance (named), by the thresholds `flag_reason` uses."""
    reasons = [no_signal_reason(_share(baseline_hits(s_rows)))]
    for side, name, rows in (("self", self_name, self_all), ("cross", cross_name, cross_all)):
        low = low_compliance_reason(_share([bool(r["compliant"]) for r in rows]))
        reasons.append(f"{side} predictor {name}: {low}" if low else None)
    return "; ".join(r for r in reasons if r) or None


def _breakdown(rows: list[dict]) -> Iterable[tuple[str, str, list[dict]]]:
    """Groups per (task, property) and per property pooled across tasks (task "all"), as the paper reports."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["task"], r["property"])].append(r)
        groups[("all", r["property"])].append(r)
    for (task, prop), group in sorted(groups.items()):
        yield task, prop, group


def _matching(rows: list[dict], task: str, prop: str) -> list[dict]:
    return [r for r in rows if r["property"] == prop and task in ("all", r["task"])]


def score_target(self_rows: list[dict], cross_rows: dict[str, list[dict]], noncompliant: str) -> dict:
    """Cells and paired tests for one target: its self-predictor against each cross-predictor."""
    faults.reached("score")  # test hook (introspection/core/faults.py): a kill here leaves every answer, no results
    cells, tests = [], []
    target = self_rows[0]["target"] if self_rows else None
    for predictor, rows in cross_rows.items():
        s_rows, c_rows = aligned(self_rows, rows, noncompliant)
        self_name = s_rows[0]["predictor"] if s_rows else (self_rows[0]["predictor"] if self_rows else target)
        if not any(c["predictor"] == self_name and c["property"] == "all" for c in cells):
            cells.append(cell(s_rows, self_rows, predictor=self_name, target=target, kind="self"))
            cells += [cell(g, _matching(self_rows, t, p), predictor=self_name,
                           target=target, kind="self", task=t, prop=p) for t, p, g in _breakdown(s_rows)]
        cells.append(cell(c_rows, rows, predictor=predictor, target=target, kind="cross"))
        cells += [cell(g, _matching(rows, t, p), predictor=predictor,
                       target=target, kind="cross", task=t, prop=p) for t, p, g in _breakdown(c_rows)]
        test = paired_comparison([r["correct"] for r in s_rows], [r["correct"] for r in c_rows],
                                 clusters=[r["item_id"] for r in s_rows])
        tests.append({"target": target, "self_predictor": self_name, "cross_predictor": predictor,
                      "noncompliant": noncompliant, "task": "all", **test,
                      "flag": pair_flag(s_rows, self_rows, rows, self_name, predictor)})
        tests += per_task_tests(s_rows, c_rows, target, self_name, predictor, noncompliant,
                                self_all=self_rows, cross_all=rows)
    return {"cells": cells, "paired_tests": tests}


def per_task_tests(s_rows: list[dict], c_rows: list[dict], target: str, self_name: str, predictor: str,
                   noncompliant: str, *, self_all: list[dict] | None = None,
                   cross_all: list[dict] | None = None) -> list[dict]:
    """Self vs cross within each held-out task, p-values Holm-adjusted across the tasks.

    `self_all` / `cross_all` (every scored row of each side, before pairing) give the compliance in
    each test's flag; without them the paired rows stand in."""
    tasks = sorted({r["task"] for r in s_rows})
    if len(tasks) < 2:
        return []
    out = []
    for task in tasks:
        idx = [i for i, r in enumerate(s_rows) if r["task"] == task]
        test = paired_comparison([s_rows[i]["correct"] for i in idx], [c_rows[i]["correct"] for i in idx],
                                 clusters=[s_rows[i]["item_id"] for i in idx])
        self_in_task = [r for r in (self_all if self_all is not None else s_rows) if r["task"] == task]
        cross_in_task = [r for r in (cross_all if cross_all is not None else c_rows) if r["task"] == task]
        flag = pair_flag([s_rows[i] for i in idx], self_in_task, cross_in_task, self_name, predictor)
        out.append({"target": target, "self_predictor": self_name, "cross_predictor": predictor,
                    "noncompliant": noncompliant, "task": task, **test, "flag": flag})
    for t, adjusted in zip(out, holm([t["mcnemar_p"] for t in out]), strict=True):
        t["mcnemar_p_holm"] = adjusted
    return out


def score_untrained(rows: list[dict], noncompliant: str) -> list[dict]:
    """The base model predicting its own base behaviour, before any training (docs/method.md §8.1)."""
    kept = [r for r in rows if noncompliant == "wrong" or r["compliant"]]
    if not rows:
        return []
    predictor, target = rows[0]["predictor"], rows[0]["target"]
    out = [cell(kept, rows, predictor=predictor, target=target, kind="untrained")]
    out += [cell(g, _matching(rows, t, p), predictor=predictor, target=target,
                 kind="untrained", task=t, prop=p) for t, p, g in _breakdown(kept)]
    return out


def distribution_matched(rows_a: list[dict], rows_b: list[dict], noncompliant: str) -> list[dict]:
    """The "adjusted" comparison (docs/method.md §4.4): per (task, property), on the keys both sides share,
    keep equal numbers of items per object-level answer, so a lower-entropy behaviour earns no edge.
    Cells come back with task "adjusted" and each side's own kind."""
    keep = lambda r: noncompliant == "wrong" or r["compliant"]  # noqa: E731
    b_by_key = {_key(r): r for r in rows_b if keep(r)}
    a_shared = [r for r in rows_a if keep(r) and _key(r) in b_by_key]
    kept_a, kept_b = [], []
    for task, _prop, group in _breakdown(a_shared):
        if task == "all":
            continue
        other = [b_by_key[_key(r)] for r in group]
        ia, ib = distribution_matched_indices([r["truth"] for r in group], [r["truth"] for r in other])
        kept_a += [group[i] for i in ia]
        kept_b += [other[i] for i in ib]
    out = []
    for rows in (kept_a, kept_b):
        if rows:
            out.append(cell(rows, rows, predictor=rows[0]["predictor"], target=rows[0]["target"], kind=rows[0]["kind"],
                            task="adjusted"))
    return out
