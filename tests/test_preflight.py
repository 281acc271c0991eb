"""The pre-flight plan (experiment.stop_after=plan): its counts equal what the real build produces, it
loads no model, and its hours follow from the throughput figures in conf/preflight/default.yaml."""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from introspection.core.store import Store, read_jsonl
from introspection.core.types import Answer
from introspection.experiments import registry
from introspection.preflight import plan as preflight
from introspection.preflight import rates as plan_rates
from introspection.preflight import recorder as plan_recorder
from introspection.preflight import tokens as plan_tokens
from introspection.stages.items import build_items
from introspection.stages.model_ref import ModelRef
from introspection.stages.rows import prepare_rows
from tests.tiny_model import build_tiny_model

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["base_answers", "base_answers", "self_finetune", "self_finetune", "self_answers", "self_answers",
          "cross_finetune", "cross_answers", "cross_finetune", "cross_answers"]
STEP_IDS = ["base_answers:tiny_a", "base_answers:tiny_b", "self_finetune:tiny_a[self]", "self_finetune:tiny_b[self]",
            "self_answers:tiny_a[self]", "self_answers:tiny_b[self]", "cross_finetune:tiny_b[cross:tiny_a]",
            "cross_answers:tiny_b[cross:tiny_a]", "cross_finetune:tiny_a[cross:tiny_b]", "cross_answers:tiny_a[cross:tiny_b]"]


def tiny_overrides(tiny_pair, store: Path, *extra: str) -> list[str]:
    """tasks=smoke on two tiny local models; a row cap (20 < 32 rows) and anchors exercise every rule."""
    out = ["tasks=smoke", "logger=none", f"store_dir={store}", "finetune=demo", "finetune.max_examples=20",
           "finetune.object_anchor_ratio=0.5", "inference.max_tokens=12", "inference.max_tokens_hypothetical=4"]
    for slot, path, name in zip(("m1", "m2"), tiny_pair, ("tiny_a", "tiny_b"), strict=True):
        out += [f"model.{slot}.source=local", f"model.{slot}.path={path}", f"model.{slot}.name={name}",
                f"model.{slot}.chat_template=null", f"model.{slot}.dtype=float32", f"model.{slot}.params_b=null"]
    return out + list(extra)


def make_plan(cfg, store: Store) -> dict:
    """The plan of cfg's experiment, as the entry point makes it."""
    from introspection.experiments import parse_options
    from introspection.main import chosen_experiment

    experiment = chosen_experiment(cfg)
    return preflight.make_plan(cfg, store, experiment, parse_options(experiment, cfg.experiment.options))


def cpu_seconds_of_children() -> float:
    # CPU time, not wall time: other processes on a busy test machine must not fail a timing bound.
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def composed(overrides: list[str]):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def prompt_tokens(tokenizer, messages) -> int:
    # The tokenizer's own tokenize=True path, not the plan's render-then-encode path.
    return len(tokenizer.apply_chat_template(list(messages), add_generation_prompt=True)["input_ids"])


def test_plan_counts_equal_the_real_build(tmp_path, tiny_pair):
    from transformers import AutoTokenizer

    cfg = composed(tiny_overrides(tiny_pair, tmp_path / "store"))
    store = Store(tmp_path / "store")
    result = make_plan(cfg, store)
    steps = result["steps"]
    assert [s["stage"] for s in steps] == STAGES
    assert [s["model"] for s in steps[6:]] == ["tiny_b[cross:tiny_a]"] * 2 + ["tiny_a[cross:tiny_b]"] * 2
    assert steps[6]["depends_on"] == ["self_answers:tiny_a[self]", "base_answers:tiny_b"]
    for m in result["models"].values():
        assert m["tokenizer_counted"] and m["tokens"].startswith("counted with the model's tokenizer")

    # Requests and prompt tokens: the real plan's requests through each model's tokenizer.
    plan = build_items(cfg.tasks, store)
    jobs = {"object/train": (plan.object_requests(plan.train_items), 12),
            "object/test": (plan.object_requests(plan.test_items), 12),
            "hypothetical/test": (plan.hypothetical_requests(plan.test_items), 4)}
    assert len(jobs["object/train"][0]) == 16 and len(jobs["hypothetical/test"][0]) == 12 * 2
    tokenizers = {name: AutoTokenizer.from_pretrained(path) for name, path in zip(("tiny_a", "tiny_b"), tiny_pair,
                                                                                   strict=True)}
    for step in (s for s in steps if s["stage"].endswith("answers")):
        tokenizer = tokenizers[step["model"].split("[")[0]]
        assert step["engine_starts"] == 1 and step["finetunes"] == 0
        expected_names = ["hypothetical/test"] if step["stage"] == "cross_answers" else list(jobs)
        assert [j["name"] for j in step["jobs"]] == expected_names
        for job in step["jobs"]:
            requests, cap = jobs[job["name"]]
            assert job["requests"] == len(requests)
            assert job["prompt_tokens"] == sum(prompt_tokens(tokenizer, r.messages) for r in requests)
            assert job["generated_tokens_max"] == len(requests) * cap
            # expected: each answer's expected length (conf/preflight/default.yaml) + end-of-turn, under the cap
            lengths = cfg.preflight.answer_tokens
            hyp = job["name"].startswith("hypothetical")
            assert job["generated_tokens"] == round(sum(
                min(cap, (lengths.hypothetical if hyp else lengths.get(r.task, lengths.object))
                    + 1) for r in requests))

    # Training rows: the rows prepare_rows writes when every object-level answer is compliant.
    answers = {r.request_id: Answer(r.request_id, "red blue green") for r in plan.object_requests(plan.train_items)}
    target = ModelRef("tiny_a", {"name": "tiny_a"}, {})
    rows_path, _ = prepare_rows(Store(tmp_path / "rows_store"), plan, target, target, answers, cfg.tasks,
                                cfg.finetune, predictor_answers=answers)
    rows = read_jsonl(rows_path)
    hypothetical = [r for r in rows if r["property"] != "object_level"]
    anchors = [r for r in rows if r["property"] == "object_level"]
    assert (len(hypothetical), len(anchors)) == (20, 10)  # the cap of 20, then round(0.5 x 20) anchors
    planned, planned_anchors = plan_recorder.planned_rows(plan, cfg.tasks, cfg.finetune)
    assert {r["request_id"] for r in planned} == {f"hyp|{r['item_id']}|{r['property']}" for r in hypothetical}
    assert {a.request_id for a in planned_anchors[:10]} == {f"obj|{r['item_id']}" for r in anchors}
    for step in (s for s in steps if s["stage"].endswith("finetune")):
        tokenizer = tokenizers[step["model"].split("[")[0]]
        assert (step["training_rows"], step["anchor_rows"], step["finetunes"]) == (30, 10, 1)
        bound = sum(min(512, prompt_tokens(tokenizer, r["prompt"]) + 4 + 2) for r in hypothetical)
        bound += sum(min(512, prompt_tokens(tokenizer, r["prompt"]) + 12 + 2) for r in anchors)
        assert step["training_tokens_max"] == bound
        expected = sum(min(512, prompt_tokens(tokenizer, r["prompt"]) + 2 + 2) for r in hypothetical)
        expected += sum(min(512, prompt_tokens(tokenizer, r["prompt"]) + min(12, 8) + 2) for r in anchors)
        assert step["training_tokens"] == expected  # smoke's tasks: 8 expected tokens (colors, animals)

    # Nothing was answered or trained: the plan's store holds the items and nothing else.
    assert not (tmp_path / "store" / "artifacts" / "answers").exists()
    assert not (tmp_path / "store" / "artifacts" / "adapters").exists()


def test_stop_after_plan_prints_and_writes_the_plan_without_model_calls(tmp_path, tiny_pair):
    store, run_dir = tmp_path / "store", tmp_path / "run"
    started = cpu_seconds_of_children()
    proc = subprocess.run([sys.executable, "-m", "introspection.main", f"hydra.run.dir={run_dir}",
                           "experiment.stop_after=plan", *tiny_overrides(tiny_pair, store)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert cpu_seconds_of_children() - started < 30
    assert "pre-flight plan: model=" in proc.stdout and "makespan" in proc.stdout
    saved = json.loads((run_dir / "plan.json").read_text())
    assert [s["stage"] for s in saved["steps"]] == STAGES
    assert saved["schedule"]["order"] == [s["id"] for s in saved["steps"]]
    assert math.isclose(saved["estimate"]["makespan_hours"], sum(s["hours"] for s in saved["steps"]))
    kinds = sorted(p.name for p in (store / "artifacts").iterdir())
    assert kinds == ["items"], kinds  # no answers, no rows, no adapters
    assert not (run_dir / "results.json").exists()


def test_hours_by_hand():
    rates = {"prompt_tokens_per_s": 1000, "generated_tokens_per_s": 100, "train_tokens_per_s": 500,
             "engine_start_s": 60, "finetune_start_s": 30}
    # 60 s start + 3.6M / (1000 x 2) + 360k / (100 x 2) = 60 + 1800 + 1800
    assert plan_rates.inference_seconds(3_600_000, 360_000, 1, 2, rates) == 3660
    # 30 s start + 1.8M tokens x 2 epochs / (500 x 4) = 30 + 1800
    assert plan_rates.training_seconds(1_800_000, 2.0, 1, 4, rates) == 1830
    step = preflight.Step("a", "base_answers", "m", "m1", [], gpus=4)
    plan_recorder.RecordingExecutor._timed(step, 3660)
    assert (step.hours, step.gpu_hours) == (3660 / 3600, 4 * 3660 / 3600)
    # a (1 h) -> b (2 h), c (2.5 h) independent: sequential 5.5 h, critical path 3 h
    chain = [preflight.Step("a", "x", "m", "m1", [], 1, hours=1.0), preflight.Step("c", "x", "m", "m2", [], 1, hours=2.5),
             preflight.Step("b", "x", "m", "m1", ["a"], 1, hours=2.0)]
    assert preflight.critical_path_hours(chain) == 3.0


def test_a_throughput_override_changes_the_estimate(tmp_path, tiny_pair):
    store = Store(tmp_path / "store")
    base = make_plan(composed(tiny_overrides(tiny_pair, store.root)), store)
    # The tiny models are "small" (their safetensors headers count ~0.1M parameters).
    assert {m["size_class"] for m in base["models"].values()} == {"small"}
    assert base["models"]["m1"]["params_from"] == "its safetensors headers"
    from safetensors import safe_open

    with safe_open(str(tiny_pair[0] / "model.safetensors"), framework="pt") as f:
        count = sum(f.get_tensor(k).numel() for k in f.keys())
    assert base["models"]["m1"]["params_b"] == count / 1e9
    slower = make_plan(composed(tiny_overrides(
        tiny_pair, store.root, "preflight.throughput.h100.small.prompt_tokens_per_s=100")), store)
    for a, b in zip(base["steps"], slower["steps"], strict=True):
        extra_s = a["prompt_tokens"] / (100 * a["gpus"]) - a["prompt_tokens"] / (60000 * a["gpus"])
        assert math.isclose((b["hours"] - a["hours"]) * 3600, extra_s, abs_tol=1e-6)
    assert slower["estimate"]["makespan_hours"] > base["estimate"]["makespan_hours"]
    eight = make_plan(composed(tiny_overrides(tiny_pair, store.root, "preflight.gpus=8")), store)
    assert {s["gpus"] for s in eight["steps"]} == {8} and eight["estimate"]["job_gpus"] == 8


def test_decode_is_priced_at_expected_answer_lengths_and_the_cap_only_bounds_it(tmp_path, tiny_pair):
    store = Store(tmp_path / "store")
    base = make_plan(composed(tiny_overrides(tiny_pair, store.root)), store)
    rate = base["estimate"]["assumptions"]["rates_per_gpu"]["small"]["generated_tokens_per_s"]
    # Halving every expected answer length (8 -> 4 object tokens, 2 -> 1 hypothetical) moves the decode time ...
    half = make_plan(composed(tiny_overrides(
        tiny_pair, store.root, "preflight.answer_tokens.colors_long=4", "preflight.answer_tokens.animals_long=4",
        "preflight.answer_tokens.hypothetical=1")), store)
    # ... while doubling the caps (12 -> 24, 4 -> 8) moves only the upper bound.
    caps = make_plan(composed(tiny_overrides(
        tiny_pair, store.root, "inference.max_tokens=24", "inference.max_tokens_hypothetical=8")), store)
    moved = 0
    for a, h, c in zip(base["steps"], half["steps"], caps["steps"], strict=True):
        if not a["stage"].endswith("answers"):
            continue
        fewer = a["generated_tokens"] - h["generated_tokens"]
        assert fewer > 0 and h["generated_tokens_max"] == a["generated_tokens_max"]
        assert math.isclose((a["hours"] - h["hours"]) * 3600, fewer / (rate * a["gpus"]), rel_tol=1e-9)
        moved += fewer
        assert (c["generated_tokens"], c["hours"]) == (a["generated_tokens"], a["hours"])
        assert c["generated_tokens_max"] == 2 * a["generated_tokens_max"] and c["hours_max"] > a["hours_max"]
        assert a["hours"] < a["hours_max"]  # the expected lengths sit under the caps
    assert moved > 0 and half["estimate"]["makespan_hours"] < base["estimate"]["makespan_hours"]
    assert caps["estimate"]["makespan_hours"] == base["estimate"]["makespan_hours"]
    assert caps["estimate"]["makespan_hours_max"] > base["estimate"]["makespan_hours_max"]
    with pytest.raises(ValueError, match=r"preflight.answer_tokens.numbers=0 is not valid"):
        plan_rates.AnswerLengths({"hypothetical": 2, "object": 16, "numbers": 0})
    with pytest.raises(ValueError, match=r"preflight.answer_tokens has no 'hypothetical' entry"):
        plan_rates.AnswerLengths({"object": 16})


def test_size_from_names_and_estimated_tokens_without_a_tokenizer(tmp_path):
    assert plan_rates.model_params_b({"name": "llama3_1_70b", "path": "x", "source": "hub"}, "m1")[0] == 70
    assert plan_rates.model_params_b({"name": "smollm2_135m", "path": "x", "source": "embedded"}, "m1")[0] == 0.135
    assert plan_rates.model_params_b({"name": "q", "path": "Qwen/Qwen2.5-7B-Instruct", "source": "hub"}, "m2")[0] == 7
    with pytest.raises(ValueError, match=r"model.m2.params_b=<billions>"):
        plan_rates.model_params_b({"name": "mystery", "path": "org/mystery", "source": "hub"}, "m2")
    entry = {"name": "absent", "source": "hub", "path": "no-such-org/no-such-model", "revision": None,
             "chat_template": None}
    counter = plan_tokens.TokenCounter(entry, tmp_path, 4.0)
    assert not counter.counted and "not in the local Hugging Face cache" in counter.method
    from introspection.core.types import ChatRequest

    request = ChatRequest("r", [{"role": "system", "content": ""}, {"role": "user", "content": "x" * 10}])
    assert counter.prompt_tokens([request]) == [math.ceil(10 / 4) + 2 * plan_tokens.TOKENS_PER_MESSAGE]


def test_tasks_all_without_data_is_one_line_offline(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "introspection.main", "model=llama3_70b", "tasks=all", "logger=none",
                           "experiment.stop_after=plan", f"store_dir={tmp_path / 'store'}",
                           f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "wikipedia" in errors[0] and "Traceback" not in proc.stderr


def test_paper_tasks_plan_in_seconds(tmp_path, shared_data):
    started = cpu_seconds_of_children()
    proc = subprocess.run([sys.executable, "-m", "introspection.main", "model=llama3_70b", "tasks=all", "logger=none",
                           f"tasks.data_dir={shared_data / 'paper' / 'source'}", "experiment.stop_after=plan",
                           f"store_dir={tmp_path / 'store'}", f"hydra.run.dir={tmp_path / 'run'}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert cpu_seconds_of_children() - started < 30
    saved = json.loads((tmp_path / "run" / "plan.json").read_text())
    assert len(saved["items"]["tasks"]) == 13
    assert saved["estimate"]["makespan_hours"] > 0 and "GPU-hours" in proc.stdout
    # The paper's sizes (docs/method.md §2.1): whole splits, 29,988 rows per finetune, 70,505 scored pairs.
    from introspection.paper.tasks.sizes import PAPER_SPLITS

    train_tasks = {"wikipedia_long", "colors_long", "countries_long", "power_seeking", "wealth_seeking",
                   "arc_challenge_non_cot", "numbers"}
    assert saved["items"]["tasks"] == {t: PAPER_SPLITS[t][0 if t in train_tasks else 1] for t in PAPER_SPLITS}
    assert saved["items"]["short_of_paper"] == [] and "fewer items than the paper" not in proc.stdout
    finetunes = [s for s in saved["steps"] if s["stage"].endswith("finetune")]
    assert {s["training_rows"] for s in finetunes} == {29_988}
    cross = next(s for s in saved["steps"] if s["stage"] == "cross_answers")
    assert cross["requests"] == 70_505


def test_a_hub_model_whose_tokenizer_is_cached_is_counted_with_it(tmp_path):
    """The tokenizer of a hub model is read from the Hugging Face cache (never downloaded)."""
    commit = "0" * 40
    repo = tmp_path / "hub" / "models--tiny-org--tiny-chat"
    build_tiny_model(repo / "snapshots" / commit)  # config.json + tokenizer files, as `hf download` leaves them
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    script = (
        "import json, sys\n"
        "from introspection.preflight.tokens import TokenCounter\n"
        "from introspection.core.types import ChatRequest\n"
        "entry = {'name': 'tiny_chat', 'source': 'hub', 'path': 'tiny-org/tiny-chat', 'revision': None,\n"
        "         'chat_template': None}\n"
        "counter = TokenCounter(entry, sys.argv[1], 4.0)\n"
        "request = ChatRequest('r', [{'role': 'user', 'content': 'abc'}])\n"
        "print(json.dumps([counter.counted, counter.method, counter.prompt_tokens([request])]))\n")
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    counted, method, tokens = json.loads(proc.stdout.strip().splitlines()[-1])
    assert counted and "tiny-org/tiny-chat" in method
    # "<|im_start|>user\nabc<|im_end|>\n<|im_start|>assistant\n": 3 specials + 10 single-byte tokens
    assert tokens == [3 + len("user\nabc") + 1 + len("assistant\n")]


def api_pair(store: Path, *extra: str) -> list[str]:
    """GPT-3.5 (a server model) beside Llama-3.1-70B, tasks=smoke: planned offline, no key, no network."""
    return ["model=llama3_70b", "model/llm@model.m1=gpt35", "tasks=smoke", "logger=none", f"store_dir={store}", *extra]


def test_a_server_model_is_priced_in_tokens_and_dollars_beside_gpu_hours(tmp_path):
    store = Store(tmp_path / "store")
    result = make_plan(composed(api_pair(store.root)), store)
    prices = result["models"]["m1"]["prices"]
    assert result["models"]["m1"]["params_b"] is None and prices["training"] == 8.0 and prices["as_of"]
    api = [s for s in result["steps"] if s["slot"] == "m1"]
    open_side = [s for s in result["steps"] if s["slot"] == "m2"]
    assert {(s["gpus"], s["hours"], s["gpu_hours"], s["engine_starts"]) for s in api} == {(0, 0.0, 0.0, 0)}
    assert all(s["dollars"] is None and s["gpu_hours"] > 0 for s in open_side)
    by_stage = {s["stage"]: s for s in api}
    base, trained = by_stage["base_answers"], by_stage["self_answers"]
    assert math.isclose(base["dollars"], (base["prompt_tokens"] * 0.50 + base["generated_tokens"] * 1.50) / 1e6)
    assert math.isclose(base["dollars_max"], (base["prompt_tokens"] * 0.50 + base["generated_tokens_max"] * 1.50) / 1e6)
    # the self-trained model answers at the finetuned rates; training bills every epoch (auto: 3 under 8,334 rows)
    assert math.isclose(trained["dollars"], (trained["prompt_tokens"] * 3.00 + trained["generated_tokens"] * 6.00) / 1e6)
    ft = by_stage["self_finetune"]
    assert ft["training_rows"] > 0 and "n_epochs=auto: 3" in ft["priced_as"]
    assert math.isclose(ft["dollars"], ft["training_tokens"] * 3 * 8.00 / 1e6)
    assert math.isclose(result["api"]["dollars"], sum(s["dollars"] for s in api))
    assert result["api"]["unpriced_steps"] == [] and result["notes"] == []
    assert "a server model" in result["models"]["m1"]["tokens"]  # the estimate path, stated
    from introspection.preflight.text import format_plan

    text = format_plan(result)
    assert f"${result['api']['dollars']:,.2f}" in text and "GPU-hours" in text
    # A fixed epoch count is priced as given.
    two = make_plan(composed(api_pair(store.root, "finetune.openai.n_epochs=2")), store)
    ft2 = next(s for s in two["steps"] if s["id"] == ft["id"])
    assert math.isclose(ft2["dollars"], ft["dollars"] * 2 / 3)


def test_a_served_models_trl_finetunes_take_gpus_at_its_weights_size_and_its_answers_none(tmp_path):
    store = Store(tmp_path / "store")
    served = ["model/llm@model.m1=vllm_serve_example", "model.m1.weights=meta-llama/Llama-3.1-70B-Instruct"]
    result = make_plan(composed(api_pair(store.root, *served)), store)
    m1 = [s for s in result["steps"] if s["slot"] == "m1"]
    finetunes = [s for s in m1 if s["finetunes"]]
    assert finetunes and all(s["gpus"] >= 1 and s["gpu_hours"] > 0 and s["dollars"] is None for s in finetunes)
    assert all(s["gpus"] == 0 and s["gpu_hours"] == 0 for s in m1 if not s["finetunes"])  # the server answers
    assert result["models"]["m1"]["params_b"] == 70.0 and "trained here" in result["models"]["m1"]["params_from"]
    assert result["api"]["training_tokens"] == 0 and result["api"]["steps"] == len(m1) - len(finetunes)
    # Without `weights` (finetune=openai), the same side's finetunes are the API's: no GPU.
    api = make_plan(composed(api_pair(store.root, "model/llm@model.m1=vllm_serve_example", "finetune=openai")), store)
    assert all(s["gpus"] == 0 for s in api["steps"] if s["slot"] == "m1")


def test_a_server_model_without_a_price_gets_a_note_not_a_crash(tmp_path):
    store = Store(tmp_path / "store")
    result = make_plan(composed(api_pair(store.root, "model.m1.path=gpt-5-unpriced")), store)
    assert len(result["notes"]) == 1 and "gpt-5-unpriced" in result["notes"][0]
    api = [s for s in result["steps"] if s["slot"] == "m1"]
    assert all(s["dollars"] is None for s in api) and api[0]["prompt_tokens"] > 0
    assert result["api"]["dollars"] == 0 and len(result["api"]["unpriced_steps"]) == len(api)
    # GPT-4o 05-13 has inference prices but no published fine-tuning price: its training steps are noted.
    gpt4o = make_plan(composed(api_pair(store.root, "model/llm@model.m1=gpt4o")), store)
    assert any("no training price for gpt-4o-2024-05-13" in n for n in gpt4o["notes"])
    assert next(s for s in gpt4o["steps"] if s["id"] == "base_answers:gpt4o")["dollars"] > 0
    cfg = composed(api_pair(store.root))
    cfg.preflight.api_prices["gpt-3.5-turbo-0125"].input = -1  # (an id with dots is set in a config file)
    with pytest.raises(ValueError, match=r"preflight.api_prices.gpt-3.5-turbo-0125.input=-1 is not valid"):
        make_plan(cfg, store)


def test_openai_auto_epochs_and_finetuned_ids_by_hand():
    assert plan_rates.openai_epochs("auto", 20)[0] == 5  # 100 // 20
    assert plan_rates.openai_epochs("auto", 1000)[0] == 3
    assert plan_rates.openai_epochs("auto", 29_988)[0] == 1  # the paper's 30k rows
    assert plan_rates.openai_epochs(2, 29_988)[0] == 2
    assert plan_rates.base_model_id("ft:gpt-4o-2024-05-13:dcevals-kokotajlo::9oUVKrCU") == ("gpt-4o-2024-05-13", True)
    assert plan_rates.base_model_id("gpt-4-0613") == ("gpt-4-0613", False)


EXPERIMENT_OPTIONS = {"calibration": ["experiment.options.n_strings=5", "experiment.options.n_samples=4"],
                      "behavior_shift": ["experiment.options.n_shift_items=6"],
                      "scaling": ["experiment.options.sizes=[4,8]"]}  # smaller than their defaults


@pytest.mark.parametrize("name", sorted(registry()))
def test_every_experiment_plans_its_own_steps_without_model_calls(tmp_path, tiny_pair, name):
    """The plan of any experiment is its own steps, recorded: each model step it takes, in its order, with the
    steps it waits for; no answer, row or adapter reaches the store."""
    store = Store(tmp_path / "store")
    cfg = composed(tiny_overrides(tiny_pair, store.root, f"experiment={name}", *EXPERIMENT_OPTIONS.get(name, [])))
    result = make_plan(cfg, store)
    steps = {s["id"]: s for s in result["steps"]}
    assert result["config"]["experiment"] == name and steps
    assert all(d in list(steps)[:i] for i, s in enumerate(steps.values()) for d in s["depends_on"])  # run order
    assert sorted(p.name for p in (store.root / "artifacts").iterdir()) == ["items"]
    finetunes = [s for s in steps.values() if s["stage"].endswith("_finetune")]
    assert all(s["training_rows"] > 0 and s["training_tokens"] > 0 for s in finetunes)
    expected = {  # the model steps each experiment takes (tests/test_pipeline.py runs them for real)
        "cross_prediction": STEP_IDS,
        "calibration": ["base_answers:tiny_a", "self_finetune:tiny_a[self]", "self_answers:tiny_a[self]",
                        "base_answers:tiny_b", "cross_finetune:tiny_b[cross:tiny_a]", "cross_answers:tiny_b[cross:tiny_a]"],
        "behavior_shift": ["base_answers:tiny_a", "self_finetune:tiny_a[self]", "self_answers:tiny_a[self]",
                           "base_answers:tiny_b", "merge:tiny_a[self]", "shift_finetune:tiny_a[self+shift:m2]",
                           "shift_answers:tiny_a[self+shift:m2]"],
        "scaling": ["base_answers:tiny_a", "self_finetune:tiny_a[self]", "self_answers:tiny_a[self]",
                    "base_answers:tiny_b", "cross_finetune:tiny_b[cross:tiny_a]", "cross_answers:tiny_b[cross:tiny_a]",
                    "cross_finetune:tiny_b[cross:tiny_a] #2", "cross_answers:tiny_b[cross:tiny_a] #2"],
        "untrained_self": ["base_answers:tiny_a", "base_answers:tiny_b"],
    }.get(name)
    assert expected is None or list(steps) == expected
    if name == "calibration":  # its sampled jobs: n_samples generations of max_tokens each, at the bound
        cal = next(j for j in steps["base_answers:tiny_a"]["jobs"] if j["name"] == "cal/hyp")
        assert (cal["requests"], cal["generated_tokens_max"]) == (5, 5 * 4 * 3)
    if name == "scaling":  # one finetune per size, each on at most that many rows (+ anchors)
        assert [s["training_rows"] - s["anchor_rows"] for s in finetunes[1:]] == [4, 8]
    if name == "behavior_shift":  # the shift finetune waits for the source's answers and the merged M_self
        assert steps["shift_finetune:tiny_a[self+shift:m2]"]["depends_on"] == ["base_answers:tiny_b",
                                                                                "merge:tiny_a[self]"]


def test_stop_after_plan_prints_the_plan_of_calibration(tmp_path, tiny_pair):
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "introspection.main", f"hydra.run.dir={run_dir}",
                           "experiment=calibration", "experiment.stop_after=plan", "experiment.options.n_strings=5",
                           *tiny_overrides(tiny_pair, tmp_path / "store")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "pre-flight plan: model=" in proc.stdout and "cross_answers:tiny_b[cross:tiny_a]" in proc.stdout
    assert json.loads((run_dir / "plan.json").read_text())["config"]["experiment"] == "calibration"
