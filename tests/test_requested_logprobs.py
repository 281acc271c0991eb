"""Logprobs are asked for only where they are read: the main experiment asks for none, calibration for the
top-k of the first generated position of its greedy hypothetical job only (one token).

The runs below are real (`introspection.main` on two tiny random models, hf backend). A small driver runs
them in one process, with every model worker run in that process too, so it can record what each backend
was actually handed: the Sampling of every chat call and the logprobs the backend returned.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from introspection.core.types import Sampling
from tests.helpers import compose_cfg, tiny_overrides

ROOT = Path(__file__).resolve().parents[1]
SMALLER = ["tasks.n_train_items=4", "tasks.n_test_items=3", "tasks.n_finetune_per_property=4",
           "finetune.max_examples=8"]  # what is asked is the same at any size
HAS_VLLM = importlib.util.find_spec("vllm") is not None

# Runs `python -m introspection.main <overrides>` with workers in this process, recording each chat call.
DRIVER = r'''
import dataclasses, json, runpy, sys
from pathlib import Path

record = Path(sys.argv[1])
import introspection.core.spawn as spawn

real_spawn = spawn.spawn_and_wait


def in_process(store_root, target, payload, what, **_):
    target(payload)


# Before the pipeline's modules load: each imports spawn_and_wait by name (the loop catches any loaded already).
spawn.spawn_and_wait = in_process
import introspection.inference as inference

for module in list(sys.modules.values()):
    if getattr(module, "__name__", "").startswith("introspection") and getattr(module, "spawn_and_wait", None) is real_spawn:
        module.spawn_and_wait = in_process
real_make_backend = inference.make_backend


def recording_make_backend(*args, samplings=None, **kwargs):
    backend = real_make_backend(*args, samplings=samplings, **kwargs)
    real_chat = backend.chat

    def chat(requests, sampling):
        answers = real_chat(requests, sampling)
        row = {"sampling": dataclasses.asdict(sampling), "request_ids": [r.request_id for r in requests],
               "engine_samplings": [dataclasses.asdict(s) for s in samplings or []],
               "logprobs": [len(a.first_token_logprobs) for a in answers],
               "samples": [s for a in answers for s in a.samples]}
        with record.open("a") as f:
            f.write(json.dumps(row) + "\n")
        return answers

    backend.chat = chat
    return backend


inference.make_backend = recording_make_backend
sys.argv = ["introspection.main", *sys.argv[2:]]
runpy.run_module("introspection.main", run_name="__main__")  # as `python -m introspection.main`
'''


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """One store: calibration reuses the main run's base answers and adapters, computing only its own jobs."""
    return tmp_path_factory.mktemp("store")


def recorded_run(tmp_path: Path, overrides: list[str]) -> list[dict]:
    record = tmp_path / "requests.jsonl"
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    proc = subprocess.run([sys.executable, str(driver), str(record), f"hydra.run.dir={tmp_path / 'run'}", *overrides],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / "run" / "results.json").is_file()
    return [json.loads(line) for line in record.read_text().splitlines()]


def test_main_experiment_requests_no_logprobs(tmp_path, tiny_pair, store):
    calls = recorded_run(tmp_path, [*tiny_overrides(tiny_pair, store), *SMALLER])
    ids = [i for c in calls for i in c["request_ids"]]
    assert any(i.startswith("obj|") for i in ids) and any(i.startswith("hyp|") for i in ids)  # both answer kinds ran
    for call in calls:
        assert call["sampling"]["top_logprobs"] == 0
        assert call["logprobs"] == [0] * len(call["request_ids"])  # and the backend computed none
        # greedy jobs only: the engine was told so (vLLM then keeps chunked prefill on a CPU)
        assert call["engine_samplings"] and all(s["temperature"] == 0 for s in call["engine_samplings"])


def test_calibration_requests_first_position_logprobs_only(tmp_path, tiny_pair, store):
    calls = recorded_run(tmp_path, [*tiny_overrides(tiny_pair, store), *SMALLER, "experiment=calibration",
                                    "experiment.options.n_strings=3", "experiment.options.n_samples=2",
                                    "experiment.options.n_bootstrap=5", "inference.top_logprobs=4"])
    with_logprobs = [c for c in calls if c["sampling"]["top_logprobs"] > 0]
    assert with_logprobs, "the calibration's logprob variant asked for no logprobs"
    for call in with_logprobs:
        # the greedy hypothetical job: one greedy token with its top 4 alternatives, nothing after it
        assert all(i.startswith("cal-hyp|") for i in call["request_ids"])
        assert Sampling(**call["sampling"]) == Sampling(temperature=0.0, top_p=1.0, max_tokens=1, n_samples=1,
                                                        seed=0, top_logprobs=4)
        assert call["logprobs"] == [4] * len(call["request_ids"])
        assert all(len(s) <= 1 for s in call["samples"])  # one token: at most one character of the byte tokenizer
    for call in calls:
        if call not in with_logprobs:
            assert call["logprobs"] == [0] * len(call["request_ids"])
    # every calibration setup (base, self, cross) asked for its first-token distribution
    assert len(with_logprobs) == 3
    # an engine that also samples (temperature 1) was told so: it prefills whole prompts on a CPU
    assert all(any(s["temperature"] > 0 for s in c["engine_samplings"]) for c in with_logprobs)


# --------------------------------------------------------------------------------- vLLM translation, no engine
@pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed")
def test_vllm_sampling_params_ask_for_logprobs_only_when_set():
    from introspection.inference.vllm_backend import sampling_params

    plain = sampling_params(Sampling(max_tokens=32, top_logprobs=0), [1, 106])
    assert plain.logprobs is None and plain.max_tokens == 32 and plain.n == 1 and plain.stop_token_ids == [1, 106]
    first = sampling_params(Sampling(max_tokens=1, top_logprobs=5), [])
    assert first.logprobs == 5 and first.max_tokens == 1 and not first.stop_token_ids
    sampled = sampling_params(Sampling(temperature=1.0, max_tokens=3, n_samples=4, seed=7), [])
    assert sampled.n == 4 and sampled.seed == 7 and sampled.logprobs is None
    assert sampling_params(Sampling(max_tokens=3, n_samples=4), []).n == 1  # greedy: one generated, copied


class _EngineArgs(Exception):
    """Raised by the stand-in for vllm.LLM with the engine arguments it was given (no engine starts)."""


@pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed")
@pytest.mark.parametrize(("temperatures", "chunked_prefill"), [([0.0, 0.0], None), ([0.0, 1.0], False), (None, False)])
def test_cpu_engine_keeps_chunked_prefill_only_without_sampling(tiny_model_dir, tmp_path, monkeypatch, temperatures,
                                                                 chunked_prefill):
    import vllm

    from introspection.core.config import InferenceConfig, ModelEntry
    from introspection.inference import make_backend, vllm_backend
    from introspection.weights.resolve import resolve_model

    def engine_args(**kwargs):
        raise _EngineArgs(kwargs)

    monkeypatch.setattr(vllm, "LLM", engine_args)
    monkeypatch.setattr(vllm_backend, "_on_cpu", lambda: True)
    for name in ("TORCHINDUCTOR_CACHE_DIR", "VLLM_CPU_NUM_OF_RESERVED_CPU", "VLLM_ENABLE_V1_MULTIPROCESSING"):
        monkeypatch.setenv(name, "0" if name.startswith("VLLM") else str(tmp_path / "inductor"))
    entry = ModelEntry(name="tiny", source="local", path=str(tiny_model_dir), max_model_len=512)
    samplings = None if temperatures is None else [Sampling(temperature=t, max_tokens=3) for t in temperatures]
    with pytest.raises(_EngineArgs) as raised:
        make_backend("vllm", resolve_model(entry, tmp_path), InferenceConfig(name="vllm", backend="vllm"), entry,
                     work_dir=tmp_path, samplings=samplings)
    args = raised.value.args[0]
    assert args.get("enable_chunked_prefill") is chunked_prefill  # None: vLLM's default (on for generate models)
    assert args["max_logprobs"] == vllm_backend.MIN_MAX_LOGPROBS


def test_calibration_needs_first_token_logprobs():
    """inference.top_logprobs is calibration's first-token top-k: 0 is refused there (its own start check, run by
    the start checks before any model loads), and fine elsewhere."""
    from introspection.checks.start_checks import run_start_checks
    from introspection.experiments import parse_options
    from introspection.main import experiments

    known = experiments()
    for name in known:
        cfg = compose_cfg([f"experiment={name}", "inference.top_logprobs=0", "experiment.stop_after=plan",
                           "logger=none"])
        options = parse_options(known[name], cfg.experiment.options)
        if name != "calibration":
            run_start_checks(cfg, known[name], options)
            continue
        with pytest.raises(ValueError, match=r"inference.top_logprobs=0 is not valid for experiment=calibration"):
            run_start_checks(cfg, known[name], options)
