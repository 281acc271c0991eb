"""transformers `generate` backend: the reference path, and the fallback where vLLM is unavailable."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from introspection.core.config import InferenceConfig, ModelEntry
from introspection.core.types import Answer, ChatRequest, Sampling
from introspection.inference.base import BackendSpec, make_answer
from introspection.weights.resolve import ResolvedModel, load_tokenizer

log = logging.getLogger(__name__)


class _FirstStepLogprobs:
    """Forward hook that keeps the top-k log-probabilities of the first generated position.

    The hook sees the raw logits of the prefill pass (before temperature / top-p), matching vLLM's
    default `raw_logprobs`, and keeps only k values per row, so no per-step logits pile up.
    """

    def __init__(self, k: int) -> None:
        self.k = k
        self.values: Any = None
        self.indices: Any = None

    def __call__(self, module: Any, args: Any, kwargs: Any, output: Any) -> None:
        import torch

        if self.values is not None or self.k <= 0:
            return
        logits = output.logits[:, -1, :].float()
        top = torch.log_softmax(logits, dim=-1).topk(self.k, dim=-1)
        self.values, self.indices = top.values.cpu(), top.indices.cpu()


def decode_token(tokenizer: Any, token_id: int) -> str:
    """One token as text, the way vLLM decodes logprob tokens, so both backends store the same strings.

    A SentencePiece piece keeps its leading space ("▁the" -> " the"), and a byte that is only part of a
    UTF-8 character decodes to "" instead of the replacement character.
    """
    text = tokenizer.decode([token_id])
    if text.endswith("\ufffd"):
        return ""
    raw = tokenizer.convert_ids_to_tokens(token_id) or ""
    markers = len(raw) - len(raw.lstrip("\u2581"))
    missing = markers - (len(text) - len(text.lstrip(" ")))
    return " " * missing + text if missing > 0 else text


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class HFBackend:
    def __init__(
        self,
        model: ResolvedModel,
        cfg: InferenceConfig,
        entry: ModelEntry,
        adapter_path: str | None = None,
        work_dir: Path | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        self.cfg = cfg
        self.resolved = model
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if self.device == "cpu" and "OMP_NUM_THREADS" not in os.environ:
            # generate on CPU is compute-bound: use every core this process may run on. An explicit
            # OMP_NUM_THREADS wins: where other jobs share the cores, 1 thread can be 20x faster than 2
            # (OpenMP threads wait on each other at every op while one of them is descheduled).
            torch.set_num_threads(_usable_cores())

        t0 = time.perf_counter()
        self.tokenizer = load_tokenizer(model)
        self.tokenizer.padding_side = "left"  # decoder-only batching: prompts end where generation starts
        if entry.dtype != "auto":
            dtype: Any = getattr(torch, entry.dtype)
        else:
            dtype = torch.float32 if self.device == "cpu" else "auto"
        # On a GPU the weights load straight onto it in their dtype (no copy of the model in host memory);
        # a merged adapter is then folded in there, in the same dtype.
        placement = {"device_map": self.device} if self.device == "cuda" else {}
        self.model = AutoModelForCausalLM.from_pretrained(
            model.path,
            dtype=dtype,
            revision=model.revision,
            trust_remote_code=model.trust_remote_code,
            **placement,
        )
        self.serving = "base"
        if adapter_path is not None:
            from peft import PeftModel

            peft_model = PeftModel.from_pretrained(self.model, adapter_path)
            if cfg.lora_serving == "adapter":
                self.model, self.serving = peft_model, "adapter"
            else:
                self.model, self.serving = peft_model.merge_and_unload(), "merge"
        self.model.to(self.device).eval()
        # PeftModel.generate runs the wrapped transformers model, so the logprob hook goes there.
        self._hook_target = self.model.get_base_model() if self.serving == "adapter" else self.model

        # Stop at every EOS the model declares (e.g. Gemma's <eos> and <end_of_turn>) and the tokenizer's.
        eos = self.model.generation_config.eos_token_id
        eos_ids = list(eos) if isinstance(eos, (list, tuple)) else ([eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in eos_ids:
            eos_ids.append(self.tokenizer.eos_token_id)
        self.eos_ids = eos_ids
        log.info(
            "hf backend: %s on %s (%s) loaded in %.1f s",
            model.name,
            self.device,
            self.serving,
            time.perf_counter() - t0,
        )

    def render(self, messages: list[dict[str, str]]) -> str:
        """The prompt text, rendered exactly as vLLM's LLM.chat renders it."""
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def chat(self, requests: list[ChatRequest], sampling: Sampling) -> list[Answer]:
        from tqdm.auto import tqdm

        answers: list[Answer] = []
        batch_size = max(1, self.cfg.batch_size)
        batches = [requests[i : i + batch_size] for i in range(0, len(requests), batch_size)]
        for batch in tqdm(batches, desc=f"generate {self.resolved.name}", unit="batch", disable=not batches):
            answers.extend(self._chat_batch(batch, sampling))
        return answers

    def _chat_batch(self, batch: list[ChatRequest], sampling: Sampling) -> list[Answer]:
        import torch

        texts = [self.render(r.messages) for r in batch]
        # The template already holds any BOS token; adding special tokens again would double it.
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(self.device) for k, v in enc.items()}
        greedy = sampling.temperature <= 0
        n_gen = 1 if greedy else sampling.n_samples  # greedy samples are identical: generate one, copy
        gen_kwargs: dict[str, Any] = dict(
            max_new_tokens=sampling.max_tokens,
            eos_token_id=self.eos_ids,
            pad_token_id=self.tokenizer.pad_token_id,
            num_return_sequences=n_gen,
        )
        if greedy:
            gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            # top_k=0 disables the generation_config default (50), which vLLM does not apply.
            gen_kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
            torch.manual_seed(sampling.seed)

        hook = _FirstStepLogprobs(sampling.top_logprobs)
        handle = None
        if sampling.top_logprobs > 0:  # only then: the hook reads the prefill pass's logits
            handle = self._hook_target.register_forward_hook(hook, with_kwargs=True)
        try:
            with torch.inference_mode():
                out = self.model.generate(**enc, **gen_kwargs)
        finally:
            if handle is not None:
                handle.remove()

        prompt_len = enc["input_ids"].shape[1]
        new_tokens = out[:, prompt_len:].cpu()
        prompt_tokens = enc["attention_mask"].sum(dim=1).tolist()  # left padding is not the prompt's
        answers = []
        for i, req in enumerate(batch):
            samples, reasons, generated = [], [], 0
            for j in range(n_gen):
                ids = new_tokens[i * n_gen + j].tolist()
                stop_at = next((p for p, t in enumerate(ids) if t in self.eos_ids), None)
                if stop_at is not None:
                    ids, reason = ids[:stop_at], "stop"
                    generated += stop_at + 1  # the end-of-sequence token was generated too (as vLLM counts)
                else:
                    ids = [t for t in ids if t != self.tokenizer.pad_token_id]
                    reason = "length"
                    generated += len(ids)
                samples.append(self.tokenizer.decode(ids, skip_special_tokens=True))
                reasons.append(reason)
            if greedy and sampling.n_samples > 1:
                samples, reasons = samples * sampling.n_samples, reasons * sampling.n_samples
            logprobs: list[tuple[str, float]] = []
            if hook.values is not None:
                row = i * n_gen  # the prefill batch is already expanded to n_gen rows per prompt
                logprobs = [
                    (decode_token(self.tokenizer, int(t)), float(v))
                    for v, t in zip(hook.values[row].tolist(), hook.indices[row].tolist(), strict=True)
                ]
            answers.append(make_answer(req.request_id, samples, reasons, logprobs, self.cfg.aggregation,
                                       prompt_tokens=int(prompt_tokens[i]), generated_tokens=generated))
        return answers

    def close(self) -> None:
        import gc

        self.model = None
        gc.collect()


def _load(model: ResolvedModel, cfg: InferenceConfig, entry: ModelEntry, adapter_path: str | None = None,
          work_dir: Path | None = None, samplings: list[Sampling] | None = None) -> HFBackend:
    return HFBackend(model, cfg, entry, adapter_path=adapter_path, work_dir=work_dir)


BACKEND = BackendSpec(name="hf", summary="transformers generate in this job (the reference path)", load=_load)
