"""W&B for dashboards (introspection/outputs/run_outputs.py): flat summary keys per target slot, the run as the real
wandb writes it offline, and finetune curves in the run's project and group."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from introspection.outputs import run_outputs as tracking
from tests.wandb_offline import config, finished_records, history, offline_runs, run_info, summary


def cell(predictor: str, target: str, kind: str, accuracy: float, flag: str | None = None) -> dict:
    return {"predictor": predictor, "target": target, "kind": kind, "task": "all", "property": "all",
            "accuracy": accuracy, "ci_low": accuracy - 0.05, "ci_high": accuracy + 0.05, "se": 0.025, "n": 120,
            "mode_baseline": 0.3, "compliance": 0.97, "flag": flag}


def results_for(m1: str, m2: str, flag: str | None = None) -> dict:
    """Results as the cross-prediction experiment returns them (headline cells, a per-task cell, paired tests)."""
    cells = [cell(m1, m1, "self", 0.62), cell(m2, m1, "cross", 0.48, flag), cell(m2, m2, "self", 0.70),
             cell(m1, m2, "cross", 0.41), cell(m1, m1, "untrained", 0.33),
             cell(m1, m1, "self", 0.9) | {"task": "animals", "property": "first_character"}]
    tests = [{"target": m1, "self_predictor": m1, "cross_predictor": m2, "task": "all", "n": 118, "delta": 0.14,
              "ci_low": 0.03, "ci_high": 0.25, "mcnemar_p": 0.012, "self_accuracy": 0.62, "cross_accuracy": 0.48,
              "flag": flag},
             {"target": m2, "self_predictor": m2, "cross_predictor": m1, "task": "all", "n": 120, "delta": 0.29,
              "ci_low": 0.18, "ci_high": 0.40, "mcnemar_p": 0.0001, "self_accuracy": 0.70, "cross_accuracy": 0.41,
              "flag": None},
             {"target": m1, "self_predictor": m1, "cross_predictor": m2, "task": "animals", "n": 40, "delta": -0.5,
              "ci_low": -0.9, "ci_high": 0.1, "mcnemar_p": 0.5, "flag": None}]
    return {"cells": cells, "paired_tests": tests, "models": {"m1": m1, "m2": m2}, "pairs": []}


def test_summary_keys_are_the_same_for_every_pair_and_carry_the_numbers():
    a = tracking.summary_metrics(results_for("llama3_1_8b", "qwen2_5_7b", flag="cross compliance 40% < 50%"))
    b = tracking.summary_metrics(results_for("gemma2_9b", "mistral_7b"))
    assert set(a) == set(b)  # one dashboard panel per key plots every pair
    assert all(k.startswith(("m1/", "m2/")) for k in a)
    assert (a["m1/self_accuracy"], a["m1/self_ci_low"], a["m1/self_n"]) == pytest.approx((0.62, 0.57, 120))
    assert (a["m1/cross_accuracy"], a["m1/cross_ci_high"]) == pytest.approx((0.48, 0.53))
    assert (a["m1/self_minus_cross"], a["m1/self_minus_cross_ci_low"], a["m1/self_minus_cross_ci_high"]) == (0.14, 0.03, 0.25)
    assert (a["m1/n"], a["m1/p_value"]) == (118, 0.012)  # the pooled test, not the per-task one
    assert a["m1/cross_flag"] == a["m1/self_minus_cross_flag"] == "cross compliance 40% < 50%"
    assert a["m1/self_flag"] is None and b["m1/cross_flag"] is None
    assert (a["m2/self_accuracy"], a["m2/cross_accuracy"], a["m2/self_minus_cross"]) == (0.70, 0.41, 0.29)
    assert a["m1/untrained_accuracy"] == 0.33 and a["m2/untrained_accuracy"] is None  # not run for m2 here
    assert (a["m1/model"], a["m1/cross_predictor"], b["m2/model"]) == ("llama3_1_8b", "qwen2_5_7b", "mistral_7b")
    # a run with nothing measured (experiment.stop_after=build) still has every key
    empty = tracking.summary_metrics({"cells": [], "pairs": []})
    assert set(empty) == set(a) and set(empty.values()) == {None}


def _cfg(**logger) -> OmegaConf:
    return OmegaConf.create({
        "experiment": {"name": "cross_prediction", "noncompliant": "wrong"},
        "logger": {"backend": "wandb", "project": "dash", "entity": None, "mode": "auto", "group": "grid",
                   "tags": [], "log_training": False} | logger})


def test_the_run_summary_holds_flat_and_named_metrics_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    tracking.log_results(results_for("llama3_1_8b", "qwen2_5_7b"), _cfg(), tmp_path)
    (run,) = offline_runs(tmp_path / "wandb")
    records = finished_records(run)
    info = run_info(records)
    assert (info.project, info.run_group, info.job_type) == ("dash", "grid", "experiment")
    saved = summary(records)
    assert saved["m1/self_minus_cross"] == 0.14 and saved["m2/cross_accuracy"] == 0.41 and saved["m1/n"] == 118
    assert saved["m1/self_flag"] is None and saved["m1/model"] == "llama3_1_8b"
    assert saved["self/llama3_1_8b->llama3_1_8b/accuracy"] == 0.62  # the named keys, as before
    assert saved["cross/qwen2_5_7b->llama3_1_8b/n"] == 120
    assert history(records)[0]["matrix/_type"] == "table-file"
    assert config(records)["logger"]["project"] == "dash"


def test_training_variables_follow_the_logger_and_are_restored(tmp_path):
    environ = {"WANDB_RUN_ID": "agent-run", "WANDB_PROJECT": "theirs", "KEEP": "1"}
    with tracking.training_logging(_cfg(log_training=True, mode="offline", tags=["a", "b"]), tmp_path, environ) as env:
        assert environ == {"KEEP": "1", "INTROSPECTION_WANDB_TRAINING": "1", "WANDB_PROJECT": "dash",
                           "WANDB_RUN_GROUP": "grid", "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path.resolve()),
                           "WANDB_JOB_TYPE": "finetune", "WANDB_TAGS": "a,b"}  # no entity: unset; the agent's run id too
        assert env["WANDB_RUN_ID"] is None
    assert environ == {"WANDB_RUN_ID": "agent-run", "WANDB_PROJECT": "theirs", "KEEP": "1"}
    with tracking.training_logging(_cfg(), tmp_path, environ):  # log_training off (the default)
        assert environ["INTROSPECTION_WANDB_TRAINING"] == "0" and environ["WANDB_PROJECT"] == "theirs"
    with tracking.training_logging(_cfg(log_training=True, backend="none"), tmp_path, environ):
        assert environ["INTROSPECTION_WANDB_TRAINING"] == "0"


def test_finetune_curves_reach_the_runs_project_and_group(tiny_model_dir, tmp_path, monkeypatch):
    """The real path: the orchestrator's variables -> the spawned finetune worker -> TRL's W&B callback."""
    from dataclasses import asdict

    from introspection.core.config import FinetuneConfig, LoraSettings, ModelEntry
    from introspection.core.store import Store, digest
    from introspection.finetune.data import sft_rows, write_rows
    from introspection.stages.adapters import finetune_model
    from introspection.stages.model_ref import ModelRef
    from introspection.weights.resolve import resolve_model

    monkeypatch.setenv("WANDB_SILENT", "true")
    store = Store(tmp_path / "store")
    entry = asdict(ModelEntry(name="tiny", source="local", path=str(tiny_model_dir), dtype="float32"))
    base = ModelRef("tiny", entry, asdict(resolve_model(ModelEntry(**entry), store.root, where="test")))
    examples = [{"prompt": [{"role": "user", "content": f"word {i}?"}], "completion": "yes", "item_id": str(i),
                 "task": "t", "property": "p"} for i in range(8)]
    rows = sft_rows(examples, max_examples=None)
    write_rows(rows, tmp_path / "rows.jsonl")
    finetune = OmegaConf.to_container(OmegaConf.structured(FinetuneConfig(name="t", lora=LoraSettings(r=4, alpha=8))))
    finetune |= {"batch_size": 4, "epochs": 1}
    run_dir = tmp_path / "run"
    with tracking.training_logging(_cfg(log_training=True, mode="offline"), run_dir):
        finetune_model(store, base, tmp_path / "rows.jsonl", digest(rows), finetune, "tiny[self]")
    (run,) = offline_runs(run_dir / "wandb")
    records = finished_records(run)
    info = run_info(records)
    assert (info.project, info.run_group, info.job_type, info.display_name) == ("dash", "grid", "finetune",
                                                                                 "finetune tiny[self]")
    logged = {k for step in history(records) for k in step}
    assert "train/loss" in logged or "train/train_loss" in logged, sorted(logged)
    assert json.loads(json.dumps(summary(records)))["train/global_step"] >= 1
    assert Path(run, "files").is_dir()


def test_the_wandb_sweep_file_names_its_project_and_a_metric_every_run_has():
    import yaml

    sweep = yaml.safe_load((Path(__file__).resolve().parents[1] / "launchers" / "wandb_sweep.yaml").read_text())
    assert sweep["project"] == sweep["parameters"]["logger.project"]["value"]  # the runs log where the sweep is
    assert sweep["metric"]["name"] in tracking.summary_metrics(results_for("a", "b"))
    assert sweep["metric"]["goal"] in ("maximize", "minimize")


def test_a_server_that_is_not_wandb_ends_in_one_line_naming_the_results(tmp_path, monkeypatch):
    """An online run whose WANDB_BASE_URL answers HTTP but is not W&B (a proxy, a typo'd port): the start
    check finds it reachable, and wandb.init refuses the run only after the work; one line, not W&B's page."""
    import http.server
    import threading

    class NotWandb(http.server.BaseHTTPRequestHandler):  # answers every request with a 501 HTML page
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotWandb)
    import wandb

    # An earlier offline run in this process left W&B's service running with its settings; an online init
    # through it waits out its 90 s timeout instead of asking the server. A real run starts one service.
    wandb.teardown()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
        monkeypatch.setenv("WANDB_MODE", "online")
        with pytest.raises(OSError) as raised:
            tracking.log_results(results_for("llama3_1_8b", "qwen2_5_7b"), _cfg(), tmp_path)
    finally:
        server.shutdown()
        wandb.teardown()  # and the service this online run started goes too: later tests start their own
    line = str(raised.value)
    assert "\n" not in line and "<" not in line and len(line) < 600
    assert "W&B did not accept the run at http://127.0.0.1:" in line and "CommError" in line
    assert str(tmp_path) in line and "WANDB_MODE=offline" in line
