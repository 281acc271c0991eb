"""The run's stage profile (introspection/core/profile.py): the collector under two threads, and a tiny run's
profile in results.json, report.md and the console, checked against the answers it stored."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from introspection.core.profile import Profile, StageRecord, make_record, timed_stage
from tests.helpers import run_main, tiny_overrides


def test_two_threads_add_every_record_and_the_summary_adds_them_up():
    profile = Profile()
    n, barrier = 200, threading.Barrier(2)

    def side(name: str) -> None:
        barrier.wait()  # both threads add at once
        for i in range(n):
            started = time.time()
            profile.add(StageRecord(f"answers {name} job{i}", "answers", name, started, started + 0.5, 0.5,
                                    requests=2, prompt_tokens=10, generated_tokens=3, peak_rss_gib=0.25))

    threads = [threading.Thread(target=side, args=(name,)) for name in ("tiny_a", "tiny_b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    summary = profile.summary()
    stages = summary["stages"]
    assert len(stages) == summary["n_stages"] == 2 * n
    assert {s["stage"] for s in stages} == {f"answers {m} job{i}" for m in ("tiny_a", "tiny_b") for i in range(n)}
    assert [s["started"] for s in stages] == sorted(s["started"] for s in stages)  # run order
    for m in ("tiny_a", "tiny_b"):  # each thread's records keep their order
        assert [s["stage"] for s in stages if s["model"] == m] == [f"answers {m} job{i}" for i in range(n)]
    assert summary["requests"] == 4 * n and summary["prompt_tokens"] == 20 * n and summary["generated_tokens"] == 6 * n
    assert summary["stages_wall_s"] == pytest.approx(n)  # 2n stages of 0.5 s
    assert summary["peak_rss_gib"] >= 0.25  # the peak of the stages' peaks and this process's own
    assert summary["wall_s"] >= 0 and summary["n_reused"] == 0


def test_worker_records_carry_the_process_start_and_exit():
    profile = Profile()
    spawned = 1000.0
    records = [StageRecord("answers m object/train", "answers", "m", 1004.0, 1006.0, 2.0, engine_start_s=1.0),
               StageRecord("answers m object/test", "answers", "m", 1006.0, 1007.0, 1.0)]
    profile.add_worker_records([r.__dict__ for r in records], started=spawned, ended=1009.0)
    first, last = profile.records()
    assert (first.started, first.wall_s, first.process_s) == (1000.0, 6.0, 4.0)  # 4 s of spawn and imports
    assert (last.ended, last.wall_s, last.process_s) == (1009.0, 3.0, 2.0)  # 2 s of engine shutdown
    assert first.engine_start_s == 1.0


def test_timed_stage_records_only_with_a_profile_and_only_when_the_block_completes():
    with timed_stage(None, "build", "build") as stage:  # no profile given: nothing to record into, no error
        stage["reused"] = True
    profile = Profile()
    with pytest.raises(RuntimeError), timed_stage(profile, "answers m x", "answers", "m"):
        raise RuntimeError("failed stage")
    with timed_stage(profile, "answers m y", "answers", "m") as stage:
        stage["reused"] = True
    (record,) = profile.records()
    assert record.stage == "answers m y" and record.reused and record.wall_s >= 0 and record.peak_rss_gib > 0
    assert make_record("x", "build", None, 1.0, 3.5).wall_s == 2.5


def _profile_of_two_stages() -> dict:
    profile = Profile()
    profile.add(StageRecord("build", "build", None, 100.0, 100.5, 0.5, peak_rss_gib=0.3))
    profile.add(StageRecord("answers m object/train", "answers", "m", 101.0, 109.0, 8.0, engine_start_s=3.0,
                            requests=4, prompt_tokens=100, generated_tokens=48, peak_rss_gib=1.5))
    return profile.summary(ended=profile.started + 10.0)


def test_the_profile_reaches_the_console_the_report_and_wandb(tmp_path, monkeypatch, capsys):
    from introspection.outputs import run_outputs as tracking
    from introspection.outputs.report import render
    from tests.wandb_offline import finished_records, history, offline_runs, summary

    profile = _profile_of_two_stages()
    assert tracking.profile_line(profile).startswith("time: 10.0 s in total, 8.5 s in 2 stages; "
                                                     "biggest: answers m object/train 8.0 s (80%)")
    (tmp_path / "results.json").write_text(json.dumps({"cells": [], "profile": profile}))
    table = render(tmp_path).read_text().split("## Where the time went")[1]
    assert "| answers m object/train | 8.0 | 3.0 | 4 | 100 | 48 |  | 1.50 |  |  |" in table
    assert table.index("| build |") < table.index("| answers m object/train |")  # run order

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = OmegaConf.create({"logger": {"backend": "wandb", "project": "p", "entity": None, "mode": "auto",
                                       "group": None, "tags": [], "log_training": False}})
    tracking.log_results({"cells": [], "profile": profile}, cfg, tmp_path)
    records = finished_records(offline_runs(tmp_path / "wandb")[0])
    saved = summary(records)
    assert saved["profile/wall_s"] == 10.0 and saved["profile/generated_tokens"] == 48
    assert saved["profile/biggest_stage"] == "answers m object/train"
    assert history(records)[0]["profile/_type"] == "table-file"


# --- a tiny run ---------------------------------------------------------------------------------
def expected_stages() -> list[str]:
    """Every stage of a cross-prediction run with the untrained baseline, for the pair (tiny_a, tiny_b)."""
    jobs = ("object/train", "object/test", "hypothetical/test")
    out = ["build"]
    for m in ("tiny_a", "tiny_b"):
        out += [f"answers {m} {j}" for j in jobs] + [f"finetune {m}[self]"] + [f"answers {m}[self] {j}" for j in jobs]
    for p, t in (("tiny_a", "tiny_b"), ("tiny_b", "tiny_a")):
        out += [f"finetune {p}[cross:{t}]", f"answers {p}[cross:{t}] hypothetical/test"]
    return sorted(out)


def stored_answers(store: Path) -> dict[tuple[str, str], list[dict]]:
    """(model label, job name) -> the answers the store holds."""
    out = {}
    for manifest in (store / "artifacts" / "answers").glob("*/_manifest.json"):
        info = json.loads(manifest.read_text())["info"]
        rows = (manifest.parent / "answers.jsonl").read_text().splitlines()
        out[(info["model"], info["job"])] = [json.loads(r) for r in rows]
    return out


def prompts_by_request(results: dict, store: Path) -> dict[str, list[dict]]:
    """request id -> the chat messages the run sent (the plan rebuilt from the run's saved config)."""
    from introspection.core.store import Store
    from introspection.stages.items import build_items

    plan = build_items(OmegaConf.create(results["config"]["tasks"]), Store(store))
    requests = plan.object_requests(plan.train_items + plan.test_items) + plan.hypothetical_requests(plan.test_items)
    return {r.request_id: r.messages for r in requests}


def test_a_tiny_run_profiles_every_stage_and_a_rerun_flags_them_reused(tmp_path, tiny_pair, tiny_run, warm_store):
    from transformers import AutoTokenizer

    store, results = tiny_run.store, tiny_run.results  # the run from an empty store (tests/conftest.py)
    profile = results["profile"]
    stages = {s["stage"]: s for s in profile["stages"]}
    assert sorted(s["stage"] for s in profile["stages"]) == expected_stages()  # one record per stage that ran
    assert [s["started"] for s in profile["stages"]] == sorted(s["started"] for s in profile["stages"])
    for s in profile["stages"]:
        assert s["wall_s"] > 0 and not s["reused"], s
        assert s["peak_rss_gib"] > 0 and s["peak_gpu_gib"] is None, s  # a CPU run
    assert profile["wall_s"] >= profile["stages_wall_s"] > 0  # the stages ran one after another here
    assert profile["biggest_stage_wall_s"] == max(s["wall_s"] for s in profile["stages"])

    # Requests and tokens: what the stored answers hold, counted again with the tokenizer.
    tokenizers = {m: AutoTokenizer.from_pretrained(path) for m, path in zip(("tiny_a", "tiny_b"), tiny_pair, strict=True)}
    messages = prompts_by_request(results, store)
    answers = stored_answers(store)
    for (model, job), rows in answers.items():
        s = stages[f"answers {model} {job}"]
        tokenizer = tokenizers[model.split("[")[0]]
        prompt = [len(tokenizer(tokenizer.apply_chat_template(messages[r["request_id"]], tokenize=False,
                                                              add_generation_prompt=True),
                                add_special_tokens=False).input_ids) for r in rows]
        # One token per byte; a sample that stopped also generated its end-of-turn token. Greedy: one sample.
        generated = [len(tokenizer(r["text"], add_special_tokens=False).input_ids) + (r["finish_reason"] == "stop")
                     for r in rows]
        assert s["requests"] == len(rows) > 0
        assert s["prompt_tokens"] == sum(r["prompt_tokens"] for r in rows) == sum(prompt) > 0
        assert s["generated_tokens"] == sum(r["generated_tokens"] for r in rows) == sum(generated) > 0
    assert len(answers) == sum(s["kind"] == "answers" for s in profile["stages"])
    assert profile["requests"] == sum(len(rows) for rows in answers.values())
    for name in ("finetune tiny_a[self]", "finetune tiny_b[cross:tiny_a]"):
        assert stages[name]["rows"] > 0 and stages[name]["trained_tokens"] > 0
    # The first job of each worker started its engine; the engine is shared by the worker's other jobs.
    assert stages["answers tiny_a object/train"]["engine_start_s"] > 0
    assert stages["answers tiny_a object/test"]["engine_start_s"] is None

    report = (tiny_run.run_dir / "report.md").read_text()
    table = report.split("## Where the time went")[1]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| stage")]
    assert [r.split(" | ")[0].removeprefix("| ") for r in rows] == [s["stage"] for s in profile["stages"]]
    assert f"biggest: {profile['biggest_stage']}" in tiny_run.stdout

    # A rerun finds every artifact: each stage is there again, flagged reused, with no engine work.
    run_main([f"hydra.run.dir={tmp_path / 'run2'}", *tiny_overrides(tiny_pair, warm_store)])
    again = json.loads((tmp_path / "run2" / "results.json").read_text())["profile"]
    assert sorted(s["stage"] for s in again["stages"]) == expected_stages()
    assert all(s["reused"] for s in again["stages"]) and again["n_reused"] == again["n_stages"]
    assert again["requests"] == again["prompt_tokens"] == again["generated_tokens"] == 0
    assert all(s["engine_start_s"] is None and s["wall_s"] >= 0 for s in again["stages"])
