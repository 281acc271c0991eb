"""The benchmark harness (benchmarks/, `make bench`) on the tiny random model: every section runs and
lands in the JSON with numbers. The HF backend only and tiny sizes, so it is quick; the numbers
themselves mean nothing here."""

from __future__ import annotations

import json
import time

from benchmarks import run as bench
from benchmarks.demo import stage_starts, stage_table


def test_bench_writes_every_section_with_numbers(tmp_path, tiny_model_dir, monkeypatch, capsys):
    # Keep the harness's caches and environment inside the test.
    monkeypatch.setenv("INTROSPECTION_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "results" / "bench.json"
    code = bench.main([
        "--out", str(out), "--models", str(tiny_model_dir), "--backend", "hf", "--versus", "hf,hf",
        "--n-prompts", "6", "--max-tokens", "3", "--train-steps", "1", "--train-batch-size", "4",
        "--demo-overrides", "tasks=smoke experiment.stop_after=build", "--max-wait", "0", "--quiet-wait", "0",
        "--rss-interval", "0.2", "--pss-interval", "0.2", "--work-dir", str(tmp_path / "work"),
    ])
    report = json.loads(out.read_text())
    assert code == 0 and report["errors"] == {}, report["errors"]
    assert report["environment"]["cpu_count"] >= 1 and report["environment"]["versions"]["torch"]
    assert list((tmp_path / "work").iterdir()) == []  # scratch stores removed

    def numbers(d: dict, *keys: str) -> None:
        for key in keys:
            assert isinstance(d[key], (int, float)) and d[key] >= 0, (key, d.get(key))

    (inference,) = report["inference"]
    for side in ("ours", "raw"):
        numbers(inference[side], "e2e_seconds", "generate_seconds", "rps_e2e", "rps_steady", "peak_rss_mib",
                "peak_pss_mib", "cpu_seconds", "other_cpu_share")
        assert inference[side]["other_cpu_share"] <= 1 and inference[side]["cpu_seconds"] > 0
    numbers(inference, "ratio_steady", "ratio_e2e", "identical_answers")
    assert inference["ours"]["n"] == inference["raw"]["n"] == 6
    assert inference["identical_answers"] == 1.0  # same prompts, same greedy settings, same engine

    (backends,) = report["backends"]
    numbers(backends, "ratio_steady", "ratio_e2e")

    (finetune,) = report["finetune"]
    for side in ("ours", "raw"):
        numbers(finetune[side], "train_seconds", "tokens_per_second", "train_tokens", "e2e_seconds", "peak_rss_mib")
        assert finetune[side]["n_steps"] == 1
    assert finetune["ours"]["train_tokens"] == finetune["raw"]["train_tokens"]  # same rows, same definition
    numbers(finetune, "ratio_tokens_per_second", "ratio_e2e")

    rerun = report["rerun"]
    numbers(rerun["first"], "seconds", "peak_rss_mib")
    numbers(rerun["rerun"], "seconds", "peak_rss_mib")
    assert rerun["rerun_model_calls"] == 0 and rerun["meets_target"] is True
    assert rerun["first"]["stages"] and all(s["seconds"] >= 0 for s in rerun["first"]["stages"])

    printed = capsys.readouterr().out
    assert "ours / raw hf req/s" in printed and "ours / raw TRL train tokens/s" in printed
    assert "model calls" in printed


def test_stage_timings_come_from_the_log_and_worker_lifetimes():
    t0 = time.mktime(time.strptime("2026-11-26 21:40:45", "%Y-%m-%d %H:%M:%S"))
    log = "\n".join([
        "[2026-11-26 21:40:45,500][introspection.stages][INFO] - m1: answering 26 prompts (object/train)",
        "[2026-11-26 21:40:46,000][introspection.worker][INFO] - not a stage line",
        "[2026-11-26 21:40:55,000][introspection.stages][INFO] - finetuning m1 on /nowhere/rows.jsonl",
    ])
    stages = stage_starts(log)
    assert [(s["name"], s["kind"]) for s in stages] == [("answer m1", "answer"), ("finetune m1", "finetune")]
    assert abs(stages[0]["start"] - (t0 + 0.5)) < 1e-6
    mib = 1024 * 1024
    samples = [(t0 + 0.2, 100 * mib, [], 50 * mib), (t0 + 1.0, 900 * mib, [11], 500 * mib),
               (t0 + 8.0, 1000 * mib, [11], 600 * mib), (t0 + 9.0, 150 * mib, [], 60 * mib),
               (t0 + 10.5, 700 * mib, [12], 400 * mib), (t0 + 20.0, 800 * mib, [12], 450 * mib),
               (t0 + 21.0, 120 * mib, [], 55 * mib)]
    table = stage_table(stages, samples, t0, t0 + 22.0)
    names = [row["name"] for row in table]
    assert names == ["start-up (imports, plan, models)", "answer m1", "main process (plan, data, scoring)",
                     "finetune m1", "scoring and outputs"]
    by_name = {row["name"]: row for row in table}
    assert by_name["answer m1"]["seconds"] == 7.5  # log line to the worker's last sample
    assert by_name["answer m1"]["peak_rss_mib"] == 1000.0 and by_name["answer m1"]["peak_pss_mib"] == 600.0
    assert by_name["finetune m1"]["peak_rss_mib"] == 800.0
    assert abs(sum(row["seconds"] for row in table) - 22.0) < 0.05
