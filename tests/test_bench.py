"""The benchmark harness (benchmarks/, `make bench`). Never the real bench: the pieces that turn
measurements into the JSON and the table (ratios, the raw-defaults anchor's engine arguments, the demo's
profile and targets) on small made-up measurements, the section wiring with the measurements replaced,
and one run of every section on the tiny random model (HF backend, tiny sizes; its numbers mean nothing)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pytest

from benchmarks import common
from benchmarks import demo as bench_demo
from benchmarks import inference as bench_inference
from benchmarks import run as bench
from benchmarks.demo import stage_starts, stage_table


def test_bench_writes_every_section_with_numbers(tmp_path, tiny_model_dir, monkeypatch, capsys):
    # Keep the harness's caches and environment inside the test.
    monkeypatch.setenv("INTROSPECTION_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("INTROSPECTION_WORKER_START", raising=False)
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
    # ours against raw: workers started afresh like the raw scripts; the setting does not outlive the bench
    assert report["environment"]["env"]["INTROSPECTION_WORKER_START"] == "spawn"
    assert "INTROSPECTION_WORKER_START" not in os.environ
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

    demo = report["demo"]
    numbers(demo["first"], "seconds", "peak_rss_mib")
    numbers(demo["rerun"], "seconds", "peak_rss_mib")
    numbers(demo, "wall_seconds", "peak_rss_gib")
    assert demo["from_empty_store"] is True and demo["wall_seconds"] == demo["first"]["seconds"]
    assert demo["rerun_model_calls"] == 0 and demo["meets_target"] is True
    assert demo["first"]["stages"] and all(s["seconds"] >= 0 for s in demo["first"]["stages"])
    assert inference["raw_defaults"] is None and inference["ratio_defaults_steady"] is None  # HF: no vLLM defaults
    # The plan of the demo's own config at the cpu rates, beside the run (a build-only run: no model stages).
    check = demo["plan_check"]
    assert "error" not in check, check
    assert set(check["plan_rates"]) == {"prompt_tokens_per_s", "generated_tokens_per_s", "train_tokens_per_s",
                                        "engine_start_s", "finetune_start_s"}
    assert check["plan"]["planned"]["prompt_tokens"] > 0 and check["stages"] == []

    printed = capsys.readouterr().out
    assert "ours / raw hf req/s" in printed and "ours / raw TRL train tokens/s" in printed
    assert "model calls" in printed and "from an empty store" in printed
    assert "plan model vs this run: rate (plan's cpu / measured here)" in printed


def test_stage_timings_come_from_the_log_and_worker_lifetimes():
    t0 = time.mktime(time.strptime("2026-11-26 21:40:45", "%Y-%m-%d %H:%M:%S"))
    log = "\n".join([
        "[2026-11-26 21:40:45,500][introspection.stages.answers][INFO] - m1: answering 26 prompts (object/train)",
        "[2026-11-26 21:40:46,000][introspection.stages.worker][INFO] - not a stage line",
        "[2026-11-26 21:40:55,000][introspection.stages.adapters][INFO] - finetuning m1 on /nowhere/rows.jsonl",
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


# --- the pieces on made-up measurements -------------------------------------------------------------
def side(rps_steady: float, rps_e2e: float, texts: list[str]) -> dict:
    return {"n": len(texts), "rps_steady": rps_steady, "rps_e2e": rps_e2e, "texts": texts,
            "peak_rss_mib": 2048.0, "peak_pss_mib": 1024.0, "other_cpu_share": 0.0}


def test_inference_result_reports_both_ratios():
    ours = side(6.0, 4.0, ["a", "bb", "ccc", "dddd"])
    raw = side(6.0, 5.0, ["a", "bb", "ccc", "dddd"])
    defaults = side(8.0, 2.0, ["a", "bb", "xxx", "yyyyyy"])
    defaults |= {"engine_args": {"model": "<same>", "kv_cache_memory_bytes": 2**30},
                 "vllm_chose": {"dtype": "torch.bfloat16", "enable_chunked_prefill": True}}
    r = bench.inference_result("m", "vllm", {"temperature": 0.0}, ours, raw, defaults)
    assert r["ratio_steady"] == 1.0 and r["ratio_e2e"] == 0.8 and r["meets_target"] is True
    assert r["ratio_defaults_steady"] == 0.75 and r["ratio_defaults_e2e"] == 2.0
    assert r["meets_defaults_target"] is False  # ours is slower than vLLM's defaults: the table says so
    assert r["identical_answers"] == 1.0 and r["identical_answers_defaults"] == 0.5
    assert ours["mean_answer_chars"] == 2.5 and defaults["mean_answer_chars"] == 3.0
    assert r["n_prompts"] == 4 and r["raw_defaults"] is defaults

    no_defaults = bench.inference_result("m", "hf", {}, side(1.0, 1.0, ["a"]), side(2.0, 1.0, ["a"]), None)
    assert no_defaults["ratio_steady"] == 0.5 and no_defaults["meets_target"] is False
    assert [no_defaults[k] for k in ("ratio_defaults_steady", "ratio_defaults_e2e", "identical_answers_defaults",
                                     "meets_defaults_target")] == [None] * 4


def test_raw_defaults_set_only_what_vllm_needs_to_start():
    engine, why = bench_inference.defaults_engine_args("/m", on_cpu=True, kv_cache_gib=1.5, top_logprobs=5)
    assert engine == {"model": "/m", "kv_cache_memory_bytes": int(1.5 * 2**30)} and set(why) == {"kv_cache_memory_bytes"}
    engine, why = bench_inference.defaults_engine_args("/m", on_cpu=False, kv_cache_gib=1.0, top_logprobs=0)
    assert engine == {"model": "/m"} and why == {}  # a GPU user calls LLM(model=path), nothing else
    engine, why = bench_inference.defaults_engine_args("/m", on_cpu=False, kv_cache_gib=1.0, top_logprobs=30,
                                                       tensor_parallel_size=4, trust_remote_code=True,
                                                       max_model_len=2048)
    assert engine == {"model": "/m", "tensor_parallel_size": 4, "trust_remote_code": True, "max_logprobs": 30,
                      "max_model_len": 2048}
    assert set(why) == set(engine) - {"model"}  # every argument beyond the model says why it is there


def test_demo_summary_copies_the_runs_profile_and_checks_the_targets(tmp_path):
    profile = {"stages": [{"name": "answer m1", "wall_s": 12.5, "engine_start_s": 3.0, "requests": 40,
                           "prompt_tokens": 900, "generated_tokens": 120, "peak_rss_mib": 700.0}]}
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"profile": profile, "store": {"worker_runs": 3}}))
    copied, missing = bench_demo.run_profile(json.loads(results.read_text()))
    assert copied == profile and missing is None
    first = {"seconds": 840.0, "peak_rss_mib": 9000.0, "peak_pss_mib": 6000.0, "worker_runs": 9, "profile": copied,
             "stages": [{"name": "answer m1", "seconds": 12.0}]}
    second = {"seconds": 4.0, "peak_rss_mib": 500.0, "worker_runs": 0, "profile": None, "stages": []}
    d = bench_demo.demo_summary([], first, second)
    assert d["profile"] == profile and "profile_missing" not in d and "profile" not in d["first"]
    assert d["wall_seconds"] == 840.0 and d["meets_wall_target"] is True
    assert d["peak_rss_gib"] == 8.79 and d["peak_pss_gib"] == 5.86 and d["meets_memory_target"] is False
    assert d["rerun_model_calls"] == 0 and d["meets_target"] is True and "stages" not in d["rerun"]

    none, why = bench_demo.run_profile({"store": {"worker_runs": 0}})
    assert none is None and "no 'profile'" in why
    late = bench_demo.demo_summary(["tasks=smoke"], {**first, "seconds": 901.0, "profile": None, "profile_missing": why},
                                   {**second, "worker_runs": 2})
    assert late["profile"] is None and late["profile_missing"] == why
    assert late["meets_wall_target"] is False and late["meets_target"] is False


@pytest.mark.parametrize("shape", ["list", "mapping", "stages"])
def test_the_table_shows_the_demo_profile_in_any_shape(shape):
    stages = [{"stage": "answer m1", "wall_s": 12.5, "engine_start_s": 3.0, "requests": 40, "prompt_tokens": 900,
               "generated_tokens": 120, "peak_rss_mib": 700.0}, {"name": "finetune m1", "wall_s": 60.0}]
    totals = {"wall_s": 80.0, "requests": 40, "prompt_tokens": 900, "generated_tokens": 120, "peak_rss_gib": 1.5}
    profile = {"list": stages, "stages": {"stages": stages, **totals},
               "mapping": {"answer m1": stages[0], "finetune m1": stages[1]}}[shape]
    assert [s["name"] for s in bench.profile_stages(profile)] == ["answer m1", "finetune m1"]
    first = {"seconds": 840.0, "peak_rss_mib": 5000.0, "stages": [{"name": "answer m1", "seconds": 12.0}]}
    demo = bench_demo.demo_summary([], {**first, "profile": profile}, {"seconds": 4.0, "worker_runs": 0})
    ours = side(6.0, 4.0, ["a"])
    defaults = side(8.0, 2.0, ["a"]) | {"engine_args": {"model": "<same>", "kv_cache_memory_bytes": 1}}
    report = {"environment": {"device": "cpu", "usable_cores": 2, "versions": {}}, "load": {"load1": 0.1},
              "inference": [bench.inference_result("m", "vllm", {}, ours, side(6.0, 5.0, ["a"]), defaults)],
              "backends": [], "finetune": [], "demo": demo, "errors": {}}
    lines = [re.sub(r" {2,}", " | ", line.strip()) for line in bench.table(report).splitlines()]
    assert "m: ours / raw vllm with ITS defaults req/s, steady | 0.750 | (6.00 vs 8.00) | >= 0.95 (MISSED)" in lines
    assert "set beyond LLM(model=path) | kv_cache_memory_bytes" in lines
    assert "demo (make demo) from an empty store: wall | 840.0 s | <= 900 s (met)" in lines
    assert "answer m1 | 12.5; 3.0; 40; 900 / 120; peak_rss_mib=700.0" in lines
    assert "finetune m1 | 60.0; n/a; -; - / -; -" in lines
    assert "rerun of the finished demo on its store: model calls | 0 | (4.0 s) | 0 (met)" in lines
    totals_line = ("the run's profile: in all | 80.0 s; 40 requests; 900 / 120 prompt / generated tokens; "
                   "peak RAM of one process 1.50 GiB")
    assert (totals_line in lines) == (shape == "stages")


def test_profile_stages_in_run_order():
    profile = {"stages": [{"stage": "b", "started": 2.0, "wall_s": 1.0}, {"stage": "a", "started": 1.0, "wall_s": 5.0,
                                                                         "peak_rss_gib": None, "peak_gpu_gib": 3.0}]}
    assert [(s["name"], s["peak"]) for s in bench.profile_stages(profile)] == [("a", "peak_gpu_gib=3.0"), ("b", "-")]
    assert bench.profile_stages(None) == [] and bench.profile_stages("garbage") == []


def test_the_demo_starts_without_the_benchs_own_settings(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_demo, "BENCH_ENV_DEFAULTS", {"TORCHINDUCTOR_CACHE_DIR"})  # what run() sets
    user = {"TORCHINDUCTOR_CACHE_DIR": "/warm", "HF_HOME": "/hf", "INTROSPECTION_CACHE": "/users-cache"}
    env = bench_demo.demo_env(tmp_path / "empty", user)
    assert env == {"HF_HOME": "/hf", "INTROSPECTION_CACHE": str(tmp_path / "empty")}


def test_sections_assemble_ours_raw_and_defaults_and_keep_numbers_when_defaults_fail(tmp_path, monkeypatch, capsys):
    """The inference section's wiring with the measurements replaced (no model runs)."""
    calls = []

    def fake(name, rps, requests_at):  # answers each prompt with its id
        def measure(*args, **kwargs):
            calls.append(name)
            return side(rps, rps / 2, [r.request_id for r in args[requests_at]])
        return measure

    monkeypatch.setattr(bench_inference, "measure_ours", fake("ours", 6.0, requests_at=3))
    monkeypatch.setattr(bench_inference, "measure_raw", fake("raw", 6.0, requests_at=3))
    monkeypatch.setattr(bench_inference, "measure_raw_defaults", fake("raw-defaults", 12.0, requests_at=2))
    monkeypatch.setenv("INTROSPECTION_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(common, "model_ref", lambda entry, store: None)
    monkeypatch.setattr(common, "environment", lambda: {"device": "cpu", "usable_cores": 2, "versions": {}})
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    argv = ["--models", "smollm2_135m", "--n-prompts", "5", "--skip", "one-batch,backends,finetune,rerun",
            "--max-wait", "0", "--quiet-wait", "0", "--work-dir", str(tmp_path / "work")]
    assert bench.main(["--out", str(tmp_path / "a.json"), *argv]) == 0
    (r,) = json.loads((tmp_path / "a.json").read_text())["inference"]
    # ours is slower than vLLM's defaults: each of our settings back at vLLM's default, one at a time
    assert calls == ["ours", "raw", "raw-defaults", *["raw"] * len(bench_inference.SETTING_VARIANTS)]
    assert r["ratio_steady"] == 1.0 and r["ratio_defaults_steady"] == 0.5 and r["meets_defaults_target"] is False
    assert set(r["settings"]) == set(bench_inference.SETTING_VARIANTS)
    assert all(v["ratio_vs_ours_steady"] == 1.0 for v in r["settings"].values())
    assert r["identical_answers_defaults"] == 1.0 and r["raw_defaults"]["n"] == r["ours"]["n"] == 5
    assert "texts" not in r["ours"]  # the per-prompt answers stay out of the JSON
    assert "raw with ours but vLLM's dtype / raw with ours" in capsys.readouterr().out

    def broken(*args, **kwargs):
        raise RuntimeError("engine core initialization failed")

    monkeypatch.setattr(bench_inference, "measure_raw_defaults", broken)
    assert bench.main(["--out", str(tmp_path / "b.json"), *argv]) == 1
    report = json.loads((tmp_path / "b.json").read_text())
    (r,) = report["inference"]
    assert r["ratio_steady"] == 1.0 and r["raw_defaults"] is None and r["ratio_defaults_steady"] is None
    assert "settings" not in r  # nothing to explain without the defaults' numbers
    assert report["errors"] == {"raw-defaults:smollm2_135m": "RuntimeError: engine core initialization failed"}


def test_each_setting_variant_puts_one_of_ours_back_at_vllms_default():
    ours = {"model": "/m", "dtype": "float32", "enforce_eager": True, "enable_chunked_prefill": False,
            "distributed_executor_backend": "uni", "kv_cache_memory_bytes": 1}
    env = bench_inference.OUR_CPU_ENV
    changed = {}
    for variant in bench_inference.SETTING_VARIANTS:
        engine, new_env = bench_inference.apply_variant(ours, env, variant)
        changed[variant] = ({k for k in ours.keys() | engine.keys() if ours.get(k) != engine.get(k)}, new_env == env)
    assert changed == {"dtype": ({"dtype"}, True), "compiled": ({"enforce_eager"}, True),
                       "chunked_prefill": ({"enable_chunked_prefill"}, True),
                       "engine_process": ({"distributed_executor_backend"}, False)}
    assert bench_inference.apply_variant(ours, env, None) == (ours, env)
    assert bench_inference.apply_variant(ours, env, "engine_process")[1] == {}  # vLLM's own process layout
    with pytest.raises(ValueError, match="unknown setting variant 'fast'"):
        bench_inference.apply_variant(ours, env, "fast")

    raw = side(5.0, 2.0, ["a"])
    faster = bench.setting_result("x", side(7.5, 2.0, ["a"]), raw)
    assert faster["ratio_vs_ours_steady"] == 1.5 and faster["ratio_vs_ours_e2e"] == 1.0
    same = bench.setting_result("x", {"unchanged": True, "what": "not measured"}, raw)
    assert same == {"what": "x", "unchanged": True, "note": "not measured"}


def test_timed_chat_sends_every_prompt_once_with_the_runs_sampling_and_shuts_the_engine():
    from types import SimpleNamespace

    from benchmarks.inference import timed_chat

    calls, shut = [], []

    class FakeLLM:  # the two members timed_chat uses of vllm.LLM
        llm_engine = SimpleNamespace(engine_core=SimpleNamespace(shutdown=lambda: shut.append(True)))

        def chat(self, conversations, params, use_tqdm, chat_template):
            calls.append((conversations, params, chat_template))
            return [f"answer {i}" for i in range(len(conversations))]

    p = {"conversations": [[{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]],
         "chat_template": None}
    s = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 7, "seed": 3, "top_logprobs": 0}
    outputs, seconds = timed_chat(FakeLLM(), p, s, dict)
    assert outputs == ["answer 0", "answer 1"] and seconds >= 0 and shut == [True]
    assert calls == [(p["conversations"], {"n": 1, "temperature": 0.0, "top_p": 1.0, "max_tokens": 7, "seed": 3,
                                            "logprobs": None}, None)]


# --- the plan's rate model against a run's profile (benchmarks/plan_check.py) -----------------------
def _stages_at(rates: dict) -> list[dict]:
    """Answer and finetune stages whose walls follow the plan's model exactly at `rates`."""
    def answers(prompt, generated, engine_start, process):
        started = engine_start is not None
        wall = (engine_start or 0) + process + prompt / rates["prompt_tokens_per_s"] + generated / rates["generated_tokens_per_s"]
        return {"stage": f"answers m {prompt}", "kind": "answers", "wall_s": wall, "requests": 10, "prompt_tokens": prompt,
                "generated_tokens": generated, "engine_start_s": engine_start if started else None, "process_s": process}

    def finetune(tokens):
        wall = rates["finetune_start_s"] + tokens / rates["train_tokens_per_s"]
        return {"stage": f"finetune m {tokens}", "kind": "finetune", "wall_s": wall, "rows": 8, "trained_tokens": tokens}

    start = rates["engine_start_s"]
    return [{"stage": "build", "kind": "build", "wall_s": 1.0},
            answers(2000, 100, start - 2, 2.0), answers(4000, 500, None, 0.0), answers(1000, 300, start, 0.0),
            finetune(1000), finetune(3000), {"stage": "answers m reused", "kind": "answers", "wall_s": 0.1, "reused": True}]


def test_plan_check_recovers_the_rates_of_a_run_and_prices_it_with_the_plans():
    from benchmarks import plan_check

    true = {"prompt_tokens_per_s": 1000.0, "generated_tokens_per_s": 100.0, "train_tokens_per_s": 50.0,
            "engine_start_s": 20.0, "finetune_start_s": 10.0}
    profile = {"stages": _stages_at(true), "wall_s": 200.0}
    fitted = plan_check.fit_rates(profile)
    assert fitted["rates"] == pytest.approx(true, rel=1e-6)
    assert (fitted["n_answer_stages"], fitted["n_engine_starts"], fitted["n_finetunes"]) == (3, 2, 2)
    slower = {k: v / 2 if k.endswith("_per_s") else v for k, v in true.items()}  # a plan half as fast
    check = plan_check.compare(profile, slower)
    rows = {r["stage"]: r for r in check["stages"]}
    assert set(rows) == {"answers m 2000", "answers m 4000", "answers m 1000", "finetune m 1000", "finetune m 3000"}
    assert rows["answers m 4000"]["measured_s"] == pytest.approx(9.0)  # 4000/1000 + 500/100, no start
    assert rows["answers m 4000"]["plan_s"] == pytest.approx(18.0) and rows["answers m 4000"]["fitted_s"] == pytest.approx(9.0)
    assert rows["finetune m 3000"]["plan_s"] == pytest.approx(10 + 3000 / 25)
    measured = sum(r["measured_s"] for r in rows.values())
    assert check["total"]["measured_s"] == pytest.approx(measured, abs=0.1)
    assert check["total"]["plan_over_measured"] == pytest.approx(check["total"]["plan_s"] / check["total"]["measured_s"],
                                                                 abs=1e-3)
    plan = {"steps": [{"prompt_tokens": 7000, "generated_tokens": 450, "generated_tokens_max": 1800}],
            "estimate": {"makespan_hours": measured / 3600}, "models": {"m1": {"tokens": "counted"}}}
    beside = plan_check.plan_beside_run(plan, profile)
    assert beside["plan_over_measured"] == {"prompt_tokens": 1.0, "generated_tokens": 0.5, "seconds": 1.0}
    lines = [re.sub(r" {2,}", " | ", f"{w}  {m}  {t}".strip())
             for w, m, t in plan_check.table_rows(check | {"plan": beside})]
    assert "prompt_tokens_per_s | 500.0 / 1,000.0" in lines
    assert any(line.startswith("generated tokens: expected (cap) / measured | 450 (1,800) / 900") for line in lines)
    # A run without finetunes or engine starts leaves those rates unknown, and the plan's seconds for them n/a.
    only = plan_check.fit_rates({"stages": [_stages_at(true)[2]]})
    assert only["rates"]["engine_start_s"] is None and only["rates"]["train_tokens_per_s"] is None
    assert plan_check.stage_seconds(_stages_at(true)[2], only["rates"]) is None


def held_worker(payload: dict) -> None:
    """A model worker stand-in that runs until the test creates payload["release"]."""
    from pathlib import Path

    Path(payload["started"]).write_text(str(os.getpid()))
    while not Path(payload["release"]).exists():
        time.sleep(0.05)


@pytest.mark.parametrize("read", [common._tree_psutil, common._tree_proc], ids=["psutil", "proc"])
def test_the_sampler_finds_a_worker_forked_from_the_preloaded_parent(read, tmp_path, monkeypatch):
    """On a CPU machine a worker is the forkserver's child, not the run's (introspection/core/preloaded_start.py);
    the demo's stage table needs it among the sampled workers all the same."""
    import threading

    from introspection.core.spawn import spawn_and_wait

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.delenv("INTROSPECTION_WORKER_START", raising=False)
    # A child of this process that ended and was not waited for yet (as a finished background fixture is): a
    # zombie, whose command line cannot be read, must not hide the other children.
    zombie = subprocess.Popen(["true"])
    while _state(zombie.pid) != "Z":
        time.sleep(0.05)
    started, release = tmp_path / "started", tmp_path / "release"
    thread = threading.Thread(target=spawn_and_wait, args=(tmp_path, held_worker, {
        "started": str(started), "release": str(release)}, "held worker"), kwargs={"gpus": 0})
    thread.start()
    try:
        while not started.exists() or not started.read_text():
            assert thread.is_alive(), "the worker ended before it started"
            time.sleep(0.05)
        worker = int(started.read_text())
        assert os.getppid() != worker and _parent(worker) != os.getpid()  # forked, not spawned by this process
        _, _, workers, cpu = read(os.getpid(), False, False)
        assert worker in workers and worker in cpu
    finally:
        release.touch()
        thread.join()
        zombie.wait()


def _parent(pid: int) -> int:
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])


def _state(pid: int) -> str:
    return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
