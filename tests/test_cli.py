"""Config composition and the one-line errors for bad command-line input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from introspection.cli import CONF_DIR, check_overrides, group_options
from tests.helpers import run_main

ROOT = Path(__file__).resolve().parents[1]


def compose_cfg(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def test_default_config_is_the_embedded_demo():
    cfg = compose_cfg([])
    assert cfg.model.name == "demo"
    assert cfg.model.m1.source == "embedded" and cfg.model.m2.chat_template == "gemma"
    assert cfg.tasks.name == "demo" and cfg.inference.backend == "vllm" and cfg.logger.backend == "wandb"
    assert cfg.experiment.name == "cross_prediction"


@pytest.mark.parametrize("group", ["model", "tasks", "finetune", "inference", "logger", "experiment"])
def test_every_option_of_every_group_composes(group):
    options = group_options(group)
    assert options, f"conf/{group} has no options"
    for option in options:
        cfg = compose_cfg([f"{group}={option}"])
        assert cfg is not None


@pytest.mark.parametrize(
    "override, expected",
    [
        ("model=nope", "unknown model 'nope'"),
        ("tasks=nope", "unknown tasks 'nope'"),
        ("finetune=nope", "unknown finetune 'nope'"),
        ("inference=nope", "unknown inference 'nope'"),
        ("logger=nope", "unknown logger 'nope'"),
        ("experiment=nope", "unknown experiment 'nope'"),
        ("finetune.epochs=abc", "finetune.epochs"),
        ("finetune.nonsense=1", "nonsense"),
        ("tasks.n_test_items=many", "tasks.n_test_items"),
        ("inference.top_logprobs=1.5", "inference.top_logprobs"),
        ("model.m1.tensor_parallel_size=two", "model.m1.tensor_parallel_size"),
    ],
)
def test_bad_overrides_give_one_line_naming_the_value(override, expected):
    problem = check_overrides([override])
    assert problem is not None and expected in problem
    assert "\n" not in problem
    if override.startswith(("model=", "tasks=")):
        assert "valid: " in problem and ("demo" in problem)


def test_good_overrides_and_sweeps_pass():
    assert check_overrides(["tasks=smoke", "logger=none", "finetune.lora.r=4,8"]) is None
    assert "unknown tasks 'nope'" in check_overrides(["tasks=smoke,nope"])


@pytest.mark.parametrize("arg", ["model=nope", "tasks=nope"])
def test_entry_point_fails_in_one_line(arg):
    proc = subprocess.run([sys.executable, "-m", "introspection.main", arg], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: unknown") and "valid: " in lines[0]


def test_dry_run_builds_all_thirteen_tasks_offline_from_local_files(tmp_path, shared_data):
    proc = subprocess.run(
        [sys.executable, "-m", "introspection.main", "tasks=all", f"tasks.data_dir={shared_data / 'paper' / 'source'}",
         "experiment.stop_after=build", "logger=none", f"hydra.run.dir={tmp_path / 'run'}", f"store_dir={tmp_path / 'store'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    counts = results["items_per_task"]
    assert len(counts) == 13 and all(n > 0 for n in counts.values())
    assert results["store"]["worker_runs"] == 0


def test_release_mode_builds_items_from_the_released_rows(tmp_path, shared_data):
    proc = run_main(["tasks=release", f"tasks.release_path={shared_data / 'paper' / 'release_train_sample'}",
                     "tasks.train_tasks=[colors_long,power_seeking]", "tasks.test_tasks=[wikipedia_long]",
                     "tasks.n_test_items=50", "experiment.stop_after=build", "logger=none",
                     f"hydra.run.dir={tmp_path / 'run'}", f"store_dir={tmp_path / 's'}"])
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("items per task: "))
    counts = dict(part.rsplit(" ", 1) for part in line.removeprefix("items per task: ").split(", "))
    assert counts == {"colors_long": "300", "power_seeking": "300", "wikipedia_long": "50"}


def test_release_mode_offline_without_a_path_fails_in_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "introspection.main", "tasks=release", "experiment.stop_after=build", "logger=none",
         f"hydra.run.dir={tmp_path / 'run'}", f"store_dir={tmp_path / 's'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: tasks=release needs tasks.release_path=")


@pytest.mark.parametrize("override", ["experiment.noncompliant=ignore", "finetune.method=dpo", "inference.backend=tgi",
                                      "logger.backend=mlflow", "finetune.multi_gpu=tp"])
def test_bad_string_choices_fail_at_start_in_one_line(tmp_path, override):
    proc = run_main(["tasks=smoke", "logger=none", override, f"hydra.run.dir={tmp_path / 'run'}",
                     f"store_dir={tmp_path / 's'}"], check=False)  # in this process; a real one: just above
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and override.split("=")[0] in last and ("valid: " in last or "use " in last)
    assert not (tmp_path / "s" / "artifacts").exists()  # failed before any stage ran


def test_learning_rates_of_other_pairs_are_logged_and_an_unknown_name_is_a_warning(caplog):
    from introspection.main import note_unused_learning_rates

    cfg = compose_cfg(["+finetune.learning_rate_by_model.llama3_1_70b=1e-5", "+finetune.learning_rate_by_model.lama3=2e-5"])
    with caplog.at_level("INFO", logger="introspection"):
        note_unused_learning_rates(cfg)
    by_level = {r.levelname: r.getMessage() for r in caplog.records}
    assert "'llama3_1_70b'" in by_level["INFO"] and "lama3'" not in by_level["INFO"]  # a catalogue entry of another pair
    assert "['lama3']" in by_level["WARNING"]  # no entry has that name: a typo, said louder
