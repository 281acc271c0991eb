"""results.json carries its schema_version and reads back into the shared types (introspection/outputs/results.py);
files written before the version existed still load; report and sweep refuse a newer schema in one line."""

from __future__ import annotations

import json
import math

import pytest
from omegaconf import OmegaConf

from introspection.analysis.scoring import score_target
from introspection.outputs import report, sweep
from introspection.outputs import run_outputs as tracking
from introspection.outputs.results import SCHEMA_VERSION, Cell, NewerSchema, PairedTest, Results, load_results


def scored_run() -> dict:
    """A run's results as an experiment returns them: real scoring of two predictors over two tasks."""
    rows = [{"item_id": f"t{i % 2}:val:{i}", "task": f"t{i % 2}", "property": "p" if i % 3 else "q", "predictor": "a",
             "target": "a", "kind": "self", "truth": "xy"[i % 2], "correct": i % 3 != 0, "compliant": i % 7 != 0}
            for i in range(40)]
    cross = [dict(r, predictor="b", kind="cross", correct=i % 4 == 0) for i, r in enumerate(rows)]
    scored = score_target(rows, {"b": cross}, "wrong")
    return {"cells": scored["cells"], "paired_tests": scored["paired_tests"], "pairs": rows, "models": {"m1": "a", "m2": "b"},
            "n_items": {"train": 4, "test": 40}, "alternative_treatment": [], "tasks": {"t0": 20, "t1": 20},
            "scaling": [{"n_examples": 8, "accuracy": 0.5, "ci_low": 0.3, "ci_high": 0.7, "n": 40, "self_accuracy": 0.6}],
            "sections": ["scaling"], "report_section": [], "store": {"worker_runs": 0}, "profile": None}


def test_results_json_carries_its_schema_version_and_reads_back_into_the_types(tmp_path):
    run = scored_run()
    cfg = OmegaConf.create({"experiment": {"name": "cross_prediction", "noncompliant": "wrong"}})
    tracking.write_results(run, cfg, tmp_path)
    written = json.loads((tmp_path / "results.json").read_text())
    assert list(written)[:2] == ["schema_version", "experiment"] and written["schema_version"] == SCHEMA_VERSION == 1
    assert written["cells"] == json.loads(json.dumps(run["cells"]))  # the cells' fields and values as scored
    results = load_results(tmp_path / "results.json")
    assert json.loads(json.dumps(results.to_dict())) == written  # read and written back key for key
    assert [c.to_dict() for c in results.matrix] == written["matrix"] == [c for c in written["cells"]
                                                                         if c["task"] == c["property"] == "all"]
    assert {(c.predictor, c.kind) for c in results.headline()} == {("a", "self"), ("b", "cross")}
    assert results.sections == {"scaling": run["scaling"]} and results.items_per_task == {"t0": 20, "t1": 20}
    pooled = results.pooled_tests()
    assert len(pooled) == 1 and pooled[0].cross_predictor == "b" and pooled[0].n == 40
    per_task = [t for t in results.paired_tests if not t.is_pooled]
    assert [t.task for t in per_task] == ["t0", "t1"] and all(t.mcnemar_p_holm is not None for t in per_task)


def previous_results_json() -> dict:
    """results.json as the code before schema_version wrote it, from its field names: no schema_version, an
    experiment section (calibration) at the top level, cells of the other treatment with `noncompliant`."""
    cell = {"predictor": "a", "target": "a", "kind": "self", "task": "all", "property": "all", "accuracy": 0.6,
            "ci_low": 0.5, "ci_high": 0.7, "se": 0.05, "n": 100, "ci_method": "wilson", "mode_baseline": 0.3,
            "compliance": 0.9, "flag": None}
    by_task = cell | {"task": "animals", "property": "first_character", "accuracy": 0.7}
    adjusted = cell | {"task": "adjusted", "accuracy": 0.55}
    cross = cell | {"predictor": "b", "kind": "cross", "accuracy": 0.4, "flag": "low compliance"}
    test = {"target": "a", "self_predictor": "a", "cross_predictor": "b", "noncompliant": "wrong", "task": "all",
            "n": 100, "n_clusters": 100, "n_effective": 100.0, "self_accuracy": 0.6, "cross_accuracy": 0.4, "delta": 0.2,
            "se": 0.06, "ci_low": 0.08, "ci_high": 0.32, "ci_method": "agresti-min", "mcnemar_p": 0.003,
            "self_only": 30, "cross_only": 10, "boot_ci_low": 0.09, "boot_ci_high": 0.31, "flag": None}
    return {"experiment": "calibration", "noncompliant": "wrong", "compliance": "authors", "models": {"m1": "a", "m2": "b"},
            "n_items": {"train": 10, "test": 100}, "items_per_task": {"animals": 100}, "matrix": [cell, cross],
            "cells": [cell, cross, by_task, adjusted], "paired_tests": [test],
            "alternative_treatment": [cell | {"noncompliant": "exclude"}],
            "calibration": [{"setup": "a", "mad": 4.2, "ci_low": 2.0, "ci_high": 6.0, "n_points": 10, "n_strings": 50,
                             "bins": [{"x_mean": 0.2, "y_mean": 0.3}]}],
            "report_section": [], "store": {"worker_runs": 2}, "profile": None, "config": {"seed": 0}}


def test_a_results_json_written_before_the_schema_version_still_loads(tmp_path):
    old = previous_results_json()
    results = Results.from_dict(old)
    assert results.schema_version == 0 and results.experiment == "calibration"
    assert [(c.predictor, c.kind, c.is_headline, c.pooled_over_tasks, c.is_adjusted) for c in results.cells] == [
        ("a", "self", True, True, False), ("b", "cross", True, True, False), ("a", "self", False, False, False),
        ("a", "self", False, False, True)]
    assert results.cells[1].flag == "low compliance" and math.isclose(results.cells[2].accuracy, 0.7)
    assert isinstance(results.paired_tests[0], PairedTest) and results.paired_tests[0].delta == 0.2
    assert results.alternative_treatment[0].get("noncompliant") == "exclude"
    assert list(results.sections) == ["calibration"]
    assert results.to_dict() == {"schema_version": 0, **old}  # every field kept, in the order it was written
    assert list(results.to_dict()) == ["schema_version", *old]
    (tmp_path / "results.json").write_text(json.dumps(old))
    text = report.render(tmp_path).read_text()
    assert "| b | a | cross | 40.0% | [50.0%, 70.0%] | 100 |" in text and "**low compliance**" in text
    # its calibration section was drawn by report.py then; experiments render their own now, at run time
    assert "Sections calibration are in results.json" in text and "| a | 4.2 |" not in text
    (tmp_path / "results.json").write_text(json.dumps(old | {"report_section": ["## Calibration", "| a | 4.2 |"]}))
    assert "## Calibration\n| a | 4.2 |" in report.render(tmp_path).read_text()  # the lines the experiment rendered
    assert "## Distribution-matched (adjusted) accuracy" in text and "| animals | first_character | a |" in text


def test_report_and_sweep_refuse_a_newer_schema_in_one_line(tmp_path, capsys):
    newer = previous_results_json() | {"schema_version": SCHEMA_VERSION + 1}
    run_dir = tmp_path / "sweep" / "0"
    run_dir.mkdir(parents=True)
    (run_dir / "results.json").write_text(json.dumps(newer))
    with pytest.raises(NewerSchema):
        load_results(run_dir / "results.json")
    assert report.main([str(run_dir)]) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and line.startswith(f"error: {run_dir / 'results.json'}: schema_version 2 is newer")
    assert sweep.main([str(tmp_path / "sweep")]) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and line.startswith(f"error: {run_dir / 'results.json'}: schema_version 2 is newer")
    assert not (tmp_path / "sweep" / "sweep_results.csv").exists()  # no table built from results it cannot read


def test_a_record_without_its_identifying_fields_fails_in_one_line(tmp_path):
    with pytest.raises(ValueError, match=r"^a Cell lacks predictor \(has target, kind, accuracy\)$"):
        Cell.from_dict({"target": "a", "kind": "self", "accuracy": 0.5})
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"cells": [{"target": "a"}]}))
    with pytest.raises(ValueError, match=rf"^{path}: a Cell lacks predictor, kind \(has target\)$"):
        load_results(path)
    path.write_text("[1]")
    with pytest.raises(ValueError, match=rf"^{path}: not a results object \(a JSON list\)$"):
        load_results(path)
    path.write_text(json.dumps({"schema_version": "one"}))
    with pytest.raises(ValueError, match=r"schema_version 'one' is not valid; valid: an integer >= 0$"):
        load_results(path)
