"""The `server` backend: a model behind any OpenAI-compatible /v1/chat/completions endpoint (the OpenAI API for
the paper's GPT-4o, GPT-4 and GPT-3.5; a lab's `vllm serve`; other hosts), given in its catalogue entry as
`source: server`, `base_url`, `path` (the endpoint's model id) and `api_key_env` (the NAME of the environment
variable that holds the key; the key itself is never in a config, a log or a file the run writes).

Each checkpointed batch of the answer worker (stages.run_answer_jobs) goes out as concurrent requests, at most
inference.server_concurrency in flight; each request is retried with backoff (server_client.py) and its answer
carries what the engines' answers carry (samples, finish reasons, token counts from the server's `usage`,
first-token top logprobs when asked) plus what the server said about the model (`served`: its model name and
system_fingerprint). A killed run keeps every finished batch, so a rerun pays only for the batch in progress.
A finetuned served model (a LoRA adapter trained here on the entry's `weights`) is answered by the same server
with the adapter loaded into it, its requests naming the adapter as their model (server_lora.py).
"""

from __future__ import annotations

import logging
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from introspection.core.config import InferenceConfig, ModelEntry
from introspection.core.types import Answer, ChatRequest, Sampling
from introspection.inference.base import BackendSpec, make_answer
from introspection.inference.server_client import ServerClient, api_key
from introspection.weights.resolve import ResolvedModel

log = logging.getLogger(__name__)


def request_body(model_id: str, messages: list[dict[str, str]], sampling: Sampling) -> dict[str, Any]:
    """The chat completion request for one prompt. Greedy: one completion (copied n times, as the engines do);
    top logprobs only when the Sampling asks for them (calibration's first-token job)."""
    greedy = sampling.temperature <= 0
    body: dict[str, Any] = {"model": model_id, "messages": messages, "temperature": sampling.temperature,
                            "top_p": sampling.top_p, "max_tokens": sampling.max_tokens,
                            "n": 1 if greedy else sampling.n_samples, "seed": sampling.seed}
    if sampling.top_logprobs > 0:
        body |= {"logprobs": True, "top_logprobs": sampling.top_logprobs}
    return body


def first_token_top(logprobs: dict | None, k: int) -> list[tuple[str, float]]:
    """Top-k (token, logprob) of the first generated position, highest first (as the engines store them)."""
    content = (logprobs or {}).get("content") or []
    if k <= 0 or not content:
        return []
    items = [(str(t["token"]), float(t["logprob"])) for t in content[0].get("top_logprobs") or []]
    items.sort(key=lambda x: x[1], reverse=True)
    return items[:k]


def answer_from(request_id: str, data: dict, sampling: Sampling, aggregation: str) -> Answer:
    """An Answer from one chat completion response."""
    choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
    if not choices:
        raise ValueError(f"the server answered request {request_id} with no choices")
    samples = [(c.get("message") or {}).get("content") or "" for c in choices]
    reasons = [c.get("finish_reason") for c in choices]
    if sampling.temperature <= 0 and sampling.n_samples > 1:
        samples, reasons = samples * sampling.n_samples, reasons * sampling.n_samples
    usage = data.get("usage") or {}
    answer = make_answer(request_id, samples, reasons, first_token_top(choices[0].get("logprobs"), sampling.top_logprobs),
                         aggregation, prompt_tokens=usage.get("prompt_tokens"),
                         generated_tokens=usage.get("completion_tokens"))
    served = {k: str(data[k]) for k in ("model", "system_fingerprint") if data.get(k)}
    answer.served = served or None
    return answer


class ServerBackend:
    def __init__(self, model: ResolvedModel, cfg: InferenceConfig, entry: ModelEntry,
                 adapter_path: str | None = None) -> None:
        self.model_id = model.path  # the endpoint's model id (models.resolve_model: path of a server entry)
        self.cfg = cfg
        self.concurrency = max(1, int(cfg.server_concurrency))
        self.client = ServerClient(str(entry.base_url), api_key(entry),
                                   timeout_s=float(cfg.server_timeout_s), max_retries=int(cfg.server_max_retries),
                                   max_connections=self.concurrency)
        self.serving = "base"  # as the endpoint has it
        if adapter_path is not None:  # a TRL adapter of the entry's weights: loaded into the server (server_lora.py)
            if not entry.weights:
                raise ValueError(f"model {entry.name} is a server model ({entry.base_url}) with no weights named "
                                 f"(model.mX.weights), so it cannot serve the LoRA adapter {adapter_path}")
            from introspection.inference.lora import adapter_rank
            from introspection.inference.server_lora import load_adapter

            try:
                self.model_id = load_adapter(self.client, self.model_id, adapter_path, rank=adapter_rank(adapter_path))
            except Exception:
                self.client.close()
                raise
            self.serving = "server adapter"
        log.info("server backend: %s at %s, up to %d requests in flight", self.model_id, self.client.base_url,
                 self.concurrency)

    def _one(self, request: ChatRequest, sampling: Sampling) -> Answer:
        data = self.client.post("chat/completions", request_body(self.model_id, list(request.messages), sampling))
        return answer_from(request.request_id, data, sampling, self.cfg.aggregation)

    def chat(self, requests: list[ChatRequest], sampling: Sampling) -> list[Answer]:
        """One answer per request, in order; at most `concurrency` requests in flight. The first request that
        fails for good cancels the ones not sent yet and is raised (the batch is then not stored)."""
        if not requests:
            return []
        from tqdm.auto import tqdm

        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            futures = [pool.submit(self._one, r, sampling) for r in requests]
            with tqdm(total=len(futures), desc=f"requests to {self.model_id}", unit="req", leave=False) as bar:
                for future in futures:
                    future.add_done_callback(lambda _: bar.update(1))
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                failed = next((f for f in done if f.exception() is not None), None)
                if failed is not None:
                    for future in futures:
                        future.cancel()
                    raise failed.exception()
        return [f.result() for f in futures]

    def close(self) -> None:
        self.client.close()


def _load(model: ResolvedModel, cfg: InferenceConfig, entry: ModelEntry, adapter_path: str | None = None,
          work_dir: Path | None = None, samplings: list[Sampling] | None = None) -> ServerBackend:
    return ServerBackend(model, cfg, entry, adapter_path=adapter_path)


def _check_config(cfg: Any, slot: str) -> None:
    from introspection.inference.server_checks import check_server_entry

    check_server_entry(cfg, slot)


def _check_service(cfg: Any, slot: str, finetuned: bool = True) -> None:
    from introspection.inference.server_checks import check_server_service

    check_server_service(cfg, slot, finetuned)


BACKEND = BackendSpec(name="server", summary="an OpenAI-compatible /v1/chat/completions endpoint (model.mX.source=server)",
                      load=_load, source="server", on_devices=False,
                      check_config=_check_config, check_service=_check_service)
