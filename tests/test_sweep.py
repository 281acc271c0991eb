"""The end-of-sweep table (introspection/outputs/sweep.py) on job folders written here, and the W&B group."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict

from introspection.outputs import sweep
from introspection.outputs.sweep import SweepTable, gather, parse_overrides, sweep_name

CONF = Path(__file__).resolve().parents[1] / "conf"


def cell(predictor: str, target: str, accuracy: float, **extra) -> dict:
    return {"predictor": predictor, "target": target, "kind": "self" if predictor == target else "cross",
            "accuracy": accuracy, "ci_low": accuracy - 0.05, "ci_high": accuracy + 0.05, "n": 200,
            "mode_baseline": 0.3, "compliance": 0.98, **extra}


def write_job(sweep_dir: Path, sub: str, overrides: list[str], m1: str | None = None, m2: str | None = None) -> Path:
    """A job folder as Hydra and tracking.write_results leave it; no results.json when m1 is None."""
    job = sweep_dir / sub
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if m1 is not None:
        matrix = [cell(m1, m1, 0.6), cell(m2, m1, 0.5), cell(m2, m2, 0.55), cell(m1, m2, 0.45),
                  cell(m1, m1, 0.3) | {"kind": "untrained"}]
        results = {"models": {"m1": m1, "m2": m2}, "matrix": matrix,
                   "paired_tests": [{"target": m1, "delta": 0.1, "n": 200}]}
        (job / "results.json").write_text(json.dumps(results))
    return job


@pytest.fixture
def sweep_dir(tmp_path) -> Path:
    root = tmp_path / "multirun" / "2026-11-26" / "20-43-00"
    write_job(root, "0", ["model=llama3_8b", "seed=0"], "llama3_1_8b", "qwen2_5_7b")
    write_job(root, "1", ["model=llama3_70b", "seed=0"], "llama3_1_70b", "qwen2_5_72b")
    write_job(root, "2", ["model=llama3_8b", "seed=1"])  # failed before writing results
    write_job(root, "10", ["model=llama3_8b", "+finetune.lora.r=32"], "llama3_1_8b", "qwen2_5_7b")
    junk = root / ".submitit" / "1234_0"  # submitit's folder never counts as a job
    junk.mkdir(parents=True)
    (junk / "results.json").write_text("{}")
    return root


def test_sweep_names():
    assert sweep_name("multirun/2026-11-26/20-43-00") == "2026-11-26_20-43-00"
    assert sweep_name("/home/me/proj/multirun/llama_grid") == "llama_grid"
    assert sweep_name("/scratch/sweeps/llama_grid") == "llama_grid"
    assert parse_overrides(["model=llama3_70b", "+x.y=1", "~z", "a=b=c"]) == {"model": "llama3_70b", "x.y": "1",
                                                                              "a": "b=c"}


def test_gather_reads_every_job(sweep_dir):
    table = gather(sweep_dir)
    assert table["sweep"] == "2026-11-26_20-43-00"
    assert [j["job"] for j in table["jobs"]] == ["0", "1", "2", "10"]  # numeric order, .submitit skipped
    assert [j["status"] for j in table["jobs"]] == ["ok", "ok", "missing", "ok"]
    assert len(table["rows"]) == 3 * 5
    assert table["columns"][:4] == ["job", "finetune.lora.r", "model", "seed"]
    row = table["rows"][5]
    assert (row["job"], row["model"], row["seed"], row["m1"], row["predictor"]) == ("1", "llama3_70b", "0",
                                                                                    "llama3_1_70b", "llama3_1_70b")


def test_callback_writes_table_and_figure(sweep_dir):
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep_dir)}}, "logger": {"backend": "none"}})
    SweepTable().on_multirun_end(config=config)
    with (sweep_dir / "sweep_results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 15
    assert {r["kind"] for r in rows} == {"self", "cross", "untrained"}
    self_70b = [r for r in rows if r["m1"] == "llama3_1_70b" and r["kind"] == "self" and r["target"] == "llama3_1_70b"]
    assert len(self_70b) == 1 and float(self_70b[0]["accuracy"]) == pytest.approx(0.6)
    assert rows[0]["finetune.lora.r"] == "" and rows[-1]["finetune.lora.r"] == "32"
    summary = json.loads((sweep_dir / "sweep_results.json").read_text())
    assert summary["jobs"][2] == {"job": "2", "overrides": {"model": "llama3_8b", "seed": "1"}, "status": "missing"}
    assert summary["jobs"][0]["paired_tests"][0]["delta"] == 0.1
    figure = sweep_dir / "sweep_matrices.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_plan_only_job_is_planned_not_missing(tmp_path, caplog):
    """experiment.stop_after=plan jobs write plan.json and no results.json: neither missing nor failed."""
    root = tmp_path / "sweep"
    write_job(root, "0", ["model=llama3_8b"], "llama3_1_8b", "qwen2_5_7b")
    (write_job(root, "1", ["model=llama3_70b"]) / "plan.json").write_text("{}")
    write_job(root, "2", ["model=qwen72b"])
    table = gather(root)
    assert [j["status"] for j in table["jobs"]] == ["ok", "planned", "missing"]
    assert sweep.counts(table) == {"jobs": 3, "jobs_with_results": 1, "jobs_failed": 0, "jobs_missing": 1,
                                           "jobs_planned": 1}
    assert "flag" in table["columns"]


def test_callback_logs_instead_of_raising(tmp_path, caplog):
    not_a_folder = tmp_path / "sweep"
    not_a_folder.write_text("")
    SweepTable().on_multirun_end(config=OmegaConf.create({"hydra": {"sweep": {"dir": str(not_a_folder)}}}))
    assert f"python -m introspection.outputs.sweep {not_a_folder}" in caplog.text


def test_command_line_gathers_by_hand(sweep_dir):
    assert not (sweep_dir / "sweep_results.json").exists()
    assert sweep.main([str(sweep_dir)]) == 0
    table = json.loads((sweep_dir / "sweep_results.json").read_text())
    assert (len(table["jobs"]), len(table["rows"])) == (4, 15)
    with open(sweep_dir / "sweep_results.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 15
    assert (sweep_dir / "sweep_results.csv").is_file()
    assert sweep.main([str(sweep_dir / "nope")]) == 2


def results_json(models: tuple[str, str], accuracy: dict[tuple[str, str], float], flag: str | None = None) -> dict:
    """results.json as tracking.write_results writes it (the parts the sweep reads): the headline matrix
    (task and property "all"), one cell per (predictor, target), and the pooled paired tests."""
    m1, m2 = models
    matrix = [cell(p, t, acc, task="all", property="all", se=0.025, flag=flag if (p, t) == (m2, m1) else None)
              for (p, t), acc in accuracy.items()]
    tests = [{"target": t, "self_predictor": t, "cross_predictor": p, "task": "all", "n": 200,
              "self_accuracy": accuracy[(t, t)], "cross_accuracy": accuracy[(p, t)],
              "delta": accuracy[(t, t)] - accuracy[(p, t)], "ci_low": -0.1, "ci_high": 0.2, "mcnemar_p": 0.04,
              "flag": None} for p, t in ((m2, m1), (m1, m2))]
    return {"experiment": "cross_prediction", "models": {"m1": m1, "m2": m2}, "matrix": matrix, "cells": matrix,
            "paired_tests": tests}


@pytest.fixture
def pairs_sweep(tmp_path) -> Path:
    """A sweep over two pairs sharing model A, a seed replicate of (A, B), and a job that failed."""
    root = tmp_path / "multirun" / "pairs"
    ab = {("A", "A"): 0.60, ("B", "A"): 0.50, ("B", "B"): 0.70, ("A", "B"): 0.40}
    ac = {("A", "A"): 0.60, ("C", "A"): 0.45, ("C", "C"): 0.80, ("A", "C"): 0.35}  # A's self cell as in job 0
    ab_seed1 = {("A", "A"): 0.64, ("B", "A"): 0.50, ("B", "B"): 0.66, ("A", "B"): 0.44}
    for sub, overrides, models, accuracy in (("0", ["model=ab", "seed=0"], ("A", "B"), ab),
                                             ("1", ["model=ac", "seed=0"], ("A", "C"), ac),
                                             ("2", ["model=ab", "seed=1"], ("A", "B"), ab_seed1)):
        job = write_job(root, sub, overrides)
        (job / "results.json").write_text(json.dumps(results_json(models, accuracy, flag="low compliance" if sub == "1" else None)))
    failed = write_job(root, "3", ["model=ad", "seed=0"])
    (failed / "error.txt").write_text("model.m2.path /weights/d does not exist; download it or set model.m2.path\n")
    return root


def test_failed_job_has_a_row_with_its_error_and_the_multirun_exits_2(pairs_sweep, capsys):
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(pairs_sweep)}}, "logger": {"backend": "none"}})
    with pytest.raises(SystemExit) as stopped:
        SweepTable().on_multirun_end(config=config)
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: 1 of 4 jobs failed; see {pairs_sweep / 'sweep_results.csv'}"
    with (pairs_sweep / "sweep_results.csv").open() as f:
        rows = list(csv.DictReader(f))
    failed = [r for r in rows if r["error"]]
    assert len(failed) == 1 and len(rows) == 3 * 4 + 1
    assert (failed[0]["job"], failed[0]["model"], failed[0]["seed"], failed[0]["accuracy"]) == ("3", "ad", "0", "")
    assert failed[0]["error"] == "model.m2.path /weights/d does not exist; download it or set model.m2.path"
    jobs = json.loads((pairs_sweep / "sweep_results.json").read_text())["jobs"]
    assert [j["status"] for j in jobs] == ["ok", "ok", "ok", "failed"]
    # by hand: the same table, the same line, the same exit code
    assert sweep.main([str(pairs_sweep)]) == 2
    assert "error: 1 of 4 jobs failed" in capsys.readouterr().err


def test_a_job_killed_outside_hydra_is_a_failed_row_too(pairs_sweep):
    """The launcher plugin's path: jobs it saw fail (no error.txt) join the table by their overrides."""
    table = gather(pairs_sweep, [{"job": "1", "overrides": {"model": "ac", "seed": "0"}, "error": "killed (OOM)"},
                                 {"job": "9", "overrides": {"model": "xy"}, "error": "node failure"}])
    by_job = {j["job"]: j for j in table["jobs"]}
    assert by_job["1"]["status"] == "failed" and by_job["1"]["error"] == "killed (OOM)"
    assert by_job["9"] == {"job": "9", "overrides": {"model": "xy"}, "status": "failed", "error": "node failure"}
    assert by_job["3"]["error"].startswith("model.m2.path")  # its own error.txt stands
    assert {r["error"] for r in table["rows"] if r["job"] == "1"} == {"killed (OOM)"}  # its cells carry it
    assert (pairs_sweep / "1" / "error.txt").read_text() == "killed (OOM)\n"  # a gather by hand agrees
    assert gather(pairs_sweep)["jobs"][1]["error"] == "killed (OOM)"
    assert (pairs_sweep / "3" / "error.txt").read_text().startswith("model.m2.path")  # its own, untouched


def test_assembled_matrix_over_every_model_of_the_sweep(pairs_sweep):
    table = sweep.aggregate(pairs_sweep)
    matrix = table["matrix"]
    assert matrix["models"] == ["A", "B", "C"]
    cells = {(c["predictor"], c["target"]): c for c in matrix["cells"]}
    assert set(cells) == {("A", "A"), ("B", "A"), ("C", "A"), ("B", "B"), ("A", "B"), ("C", "C"), ("A", "C")}
    # A's self cell: identical in jobs 0 and 1 (counted once), a different value in the seed replicate 2
    a_self = cells[("A", "A")]
    assert a_self["jobs"] == "0 1 2" and a_self["ci_method"] == "t across 2 jobs" and a_self["n"] == 400
    assert a_self["accuracy"] == pytest.approx(0.62)
    assert a_self["ci_low"] < 0.60 and a_self["ci_high"] > 0.64  # t(1) interval around the two values
    assert cells[("B", "A")]["ci_method"] == "job" and cells[("B", "A")]["n"] == 200  # same value twice: one
    only_once = cells[("C", "C")]
    assert (only_once["accuracy"], only_once["ci_low"], only_once["ci_high"], only_once["jobs"]) == pytest.approx(
        (0.80, 0.75, 0.85, "1"))
    assert cells[("C", "A")]["flag"] == "low compliance" and cells[("A", "C")]["flag"] is None
    assert cells[("A", "A")]["kind"] == "self" and cells[("C", "A")]["kind"] == "cross"
    with (pairs_sweep / "sweep_matrix.csv").open() as f:
        written = list(csv.DictReader(f))
    assert [(r["predictor"], r["target"]) for r in written] == [(c["predictor"], c["target"]) for c in matrix["cells"]]
    assert float(written[0]["accuracy"]) == pytest.approx(0.62)
    assert (pairs_sweep / "sweep_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((pairs_sweep / "sweep_results.json").read_text())["matrix"]["models"] == ["A", "B", "C"]


def test_aggregate_run_is_logged_offline_with_the_table_and_matrix(pairs_sweep, monkeypatch):
    """The real wandb (offline): the run's files hold the sweep table, the matrix and the counts."""
    from tests.wandb_offline import config, finished_records, history, offline_runs, run_info, summary

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    logger = OmegaConf.create({"backend": "wandb", "project": "p", "entity": None, "mode": "auto", "group": None,
                               "tags": ["t"]})
    with pytest.raises(SystemExit):
        sweep.end_sweep(OmegaConf.create({"hydra": {"sweep": {"dir": str(pairs_sweep)}}, "logger": logger}))
    (run,) = offline_runs(pairs_sweep / "wandb")
    records = finished_records(run)
    info = run_info(records)
    assert (info.project, info.run_group, info.job_type, info.display_name) == ("p", "pairs", "aggregate",
                                                                                 "pairs/aggregate")
    assert config(records)["models"] == ["A", "B", "C"]
    final = summary(records)
    assert (final["jobs"], final["jobs_with_results"], final["jobs_failed"], final["jobs_missing"]) == (4, 3, 1, 0)
    assert final["matrix/A->A/accuracy"] == pytest.approx(0.62) and final["matrix/C->C/n"] == 200
    logged = history(records)[0]
    assert {logged[k] for k in ("sweep_results/_type", "sweep_matrix/_type")} == {"table-file"}
    assert logged["sweep_matrix_heatmap/_type"] == "image-file" and logged["sweep_matrices/_type"] == "image-file"
    (matrix_file,) = (run / "files" / "media" / "table").glob("sweep_matrix_*.table.json")
    saved = json.loads(matrix_file.read_text())
    assert saved["columns"] == sweep.MATRIX_COLUMNS and len(saved["data"]) == 7
    (results_file,) = (run / "files" / "media" / "table").glob("sweep_results_*.table.json")
    rows = json.loads(results_file.read_text())
    errors = [r[rows["columns"].index("error")] for r in rows["data"]]
    assert sum(e is not None for e in errors) == 1 and len(rows["data"]) == 13


# --------------------------------------------------------------------------------------------------
# logger.group inside jobs


@pytest.fixture
def job_config():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        yield lambda overrides=(): compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().cfg = None  # type: ignore[assignment]


def _as_job(cfg, mode: RunMode, sweep_dir: str):
    """Make cfg the running job's config, as Hydra's run_job does."""
    with open_dict(cfg):
        cfg.hydra.mode = mode
        cfg.hydra.sweep.dir = sweep_dir
    HydraConfig.instance().set_config(cfg)
    return cfg


def test_logger_group_is_the_sweep_name_in_multirun_jobs(job_config):
    assert job_config().logger.group is None  # composed outside a job
    cfg = _as_job(job_config(["model=llama3_8b", "seed=3"]), RunMode.MULTIRUN, "multirun/llama_grid")
    assert cfg.logger.group == "llama_grid"
    assert sweep.job_overrides() == {"model": "llama3_8b", "seed": "3"}
    assert OmegaConf.to_container(cfg.logger, resolve=True)["group"] == "llama_grid"


def test_logger_group_stays_empty_in_a_single_run_and_yields_to_the_user(job_config):
    assert _as_job(job_config(), RunMode.RUN, "multirun/x").logger.group is None
    assert _as_job(job_config(["logger.group=mine"]), RunMode.MULTIRUN, "multirun/x").logger.group == "mine"


def test_a_multirun_with_a_failed_job_tabulates_it_and_exits_2(tmp_path):
    """Hydra's own launcher end to end: the failing job writes error.txt and returns, the other finishes,
    the end-of-sweep callback writes the table, prints one line and the process exits 2."""
    sweep_dir = tmp_path / "sweep"
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "introspection.main", "-m", "tasks=smoke", "experiment.stop_after=build", "logger=none",
         f"tasks.data_dir=null,{tmp_path / 'no_such_folder'}", f"hydra.sweep.dir={sweep_dir}",
         f"store_dir={tmp_path / 'store'}"],
        cwd=CONF.parent, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"error: 1 of 2 jobs failed; see {sweep_dir / 'sweep_results.csv'}" in proc.stderr
    assert "Traceback" not in proc.stderr
    jobs = json.loads((sweep_dir / "sweep_results.json").read_text())["jobs"]
    assert [j["status"] for j in jobs] == ["ok", "failed"]
    assert jobs[1]["overrides"] | {"store_dir": None} == {
        "tasks": "smoke", "experiment.stop_after": "build", "logger": "none", "store_dir": None,
        "tasks.data_dir": str(tmp_path / "no_such_folder")}
    assert "is not a folder" in jobs[1]["error"]
    with (sweep_dir / "sweep_results.csv").open() as f:
        (row,) = list(csv.DictReader(f))  # the finished job built items only: no cells, so no row
    assert row["job"] == "1" and "is not a folder" in row["error"]
