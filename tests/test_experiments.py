"""The experiment registry: every module of introspection/experiments that defines EXPERIMENT is found by
its name, its experiment.options are read into its typed options (bad ones fail in one line), and the
example experiment of docs/adding_an_experiment.md runs end to end on two tiny random models without any
line of the entry point, the writers or the report naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from introspection.experiments import ExperimentResult, parse_options, registry
from tests.helpers import run_main, tiny_overrides

ROOT = Path(__file__).resolve().parents[1]


def test_every_experiment_config_names_a_registered_experiment_with_valid_options():
    from introspection.main import experiments

    known = experiments()
    assert set(known) == {"cross_prediction", "calibration", "behavior_shift", "scaling", "untrained_self"}
    for path in sorted((ROOT / "conf" / "experiment").glob("*.yaml")):
        node = OmegaConf.load(path).experiment
        assert node.name == path.stem, path
        options = parse_options(known[node.name], node.get("options", {}))  # the shipped options are valid
        assert type(options) is known[node.name].options


@pytest.mark.parametrize(("name", "options", "message"), [
    ("scaling", {"size": [4]}, "unknown experiment.options ['size'] for scaling; valid: sizes, target"),
    ("scaling", {"sizes": [4, "many"]}, "experiment.options.sizes[1] (given [4, 'many']) is not valid for scaling"),
    ("scaling", {"sizes": [0, 8]}, "experiment.options.sizes [0, 8] must be positive integers"),
    ("calibration", {"target": "m3"}, "experiment.options.target 'm3' is not a model slot; valid: m1, m2"),
    ("calibration", {"n_samples": "lots"}, "experiment.options.n_samples (given 'lots') is not valid for calibration"),
    ("untrained_self", {"models": ["m1", "m4"]}, "experiment.options.models 'm4' is not a model slot"),
    ("cross_prediction", {"sizes": [4]}, "unknown experiment.options ['sizes'] for cross_prediction; valid: none"),
])
def test_bad_options_fail_in_one_line(name, options, message):
    from introspection.main import experiments

    with pytest.raises(ValueError) as info:
        parse_options(experiments()[name], options)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_options_are_typed_with_the_defaults_of_the_dataclass():
    opts = parse_options(registry()["scaling"], {"sizes": ["16", 8]})
    assert opts.sizes == [16, 8] and opts.target == "m1"  # "16" from a command line is converted to an int


def test_a_result_lands_in_results_keys_without_overwriting_them():
    result = ExperimentResult(sections={"curves": [{"x": 1}]}, report=["## Curves"])
    out = result.as_dict()
    assert out["curves"] == [{"x": 1}] and out["sections"] == ["curves"] and out["report_section"] == ["## Curves"]
    with pytest.raises(ValueError, match="'cells'"):
        ExperimentResult(sections={"cells": []}).as_dict()


def test_the_example_experiment_is_named_only_in_its_own_files():
    """Adding it touched its module, its config and this test: the entry point, writers and report are generic."""
    for path in ("introspection/main.py", "introspection/outputs/run_outputs.py", "introspection/outputs/report.py",
                 "introspection/pipeline/steps.py", "introspection/experiments/__init__.py", "introspection/cli.py"):
        assert "untrained_self" not in (ROOT / path).read_text(), path


def test_the_example_experiment_runs_and_renders_its_section(tmp_path, tiny_pair, warm_store):
    run_dir = tmp_path / "run"  # its base answers are tiny_run's untrained-baseline answers (tests/conftest.py)
    run_main([f"hydra.run.dir={run_dir}", *tiny_overrides(tiny_pair, warm_store), "experiment=untrained_self"])
    results = json.loads((run_dir / "results.json").read_text())
    assert results["experiment"] == "untrained_self"

    # Its section: one row per (model, property), each the mean of that model's scored items for the property.
    items = [json.loads(line) for line in (run_dir / "items.jsonl").read_text().splitlines()]
    section = results["untrained_self"]
    assert {(r["predictor"], r["property"]) for r in section} == {(r["predictor"], r["property"]) for r in items}
    assert {r["predictor"] for r in section} == {"tiny_a", "tiny_b"}
    for row in section:
        scored = [r["correct"] for r in items if r["predictor"] == row["predictor"] and r["property"] == row["property"]]
        assert row["n"] == len(scored) and row["accuracy"] == pytest.approx(sum(scored) / len(scored))
        assert row["ci_low"] <= row["accuracy"] <= row["ci_high"]
    assert {c["kind"] for c in results["cells"]} == {"untrained"}

    report = (run_dir / "report.md").read_text()
    assert "## Untrained self-prediction by property" in report
    assert report.count("| tiny_a |") + report.count("| tiny_b |") >= len(section)
