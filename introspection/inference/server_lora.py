"""Finetuning a served model with TRL: the open weights its server runs (the entry's `weights`), and its LoRA
adapter loaded into the running server, which then answers with it (docs/api_models.md, "Finetuning a served
model").

The adapter is trained here on those weights exactly as for an open model (stages.finetune_model), so an
in-process run of the same weights trains, and stores, the same adapter. A `vllm serve` started with
`--enable-lora --max-lora-rank R` and `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True` takes it at
`POST <base_url>/load_lora_adapter` ({"lora_name", "lora_path"}); a request naming lora_name as its model is
then answered by the base weights plus that adapter. The server reads the adapter from lora_path itself, so the
store must be on a filesystem the server sees, at the same path.
"""

from __future__ import annotations

import logging
from pathlib import Path

from introspection.core.config import ModelEntry
from introspection.core.errors import ModelResolveError
from introspection.inference.lora import AdapterError, adapter_digest, vllm_max_lora_rank
from introspection.inference.server_client import ServerClient, ServerError
from introspection.weights.embedded import EMBEDDED

log = logging.getLogger(__name__)

LOAD_ROUTE = "load_lora_adapter"  # vLLM's dynamic LoRA route, under /v1
PROBE_NAME = "introspection-start-probe"  # the start's probe asks for this adapter at a path that does not exist


def start_advice(rank: int | None) -> str:
    """How to start a `vllm serve` that takes this run's adapters (--max-lora-rank: a value vLLM accepts)."""
    try:
        server_rank = str(vllm_max_lora_rank(int(rank))) if rank is not None else "R"
    except AdapterError:
        server_rank = "R"
    return ("start it with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True in its environment and --enable-lora "
            f"--max-lora-rank {server_rank} (at least finetune.lora.r)")


def served_weights_entry(entry: ModelEntry, where: str = "model.mX") -> ModelEntry:
    """The open model a server entry's `weights` names (what its server runs), to be resolved like any open
    model: an embedded model's key, a local folder (a path), else a hub id at the entry's revision. It keeps the
    server entry's name and sizes, so it trains with the finetune settings the open entry of those weights would
    (finetune.learning_rate_by_model is read by name), and no template setting: the weights' own, which the
    server renders too."""
    weights = str(entry.weights or "")
    if not weights:
        raise ModelResolveError(f"server model {entry.name} ({where}) names no {where}.weights to finetune")
    if weights in EMBEDDED:
        source = "embedded"
    elif weights.startswith(("/", ".", "~")) or Path(weights).expanduser().is_dir():
        source = "local"
    else:
        source = "hub"
    return ModelEntry(name=entry.name, source=source, path=weights, revision=entry.revision if source == "hub" else None,
                      dtype=entry.dtype, max_model_len=entry.max_model_len, trust_remote_code=entry.trust_remote_code,
                      gpus=entry.gpus, params_b=entry.params_b, multi_gpu=entry.multi_gpu,
                      gpu_memory_gb=entry.gpu_memory_gb)


def adapter_name(model_id: str, adapter_path: str) -> str:
    """The name the server knows an adapter by: the base model id and the adapter's content, so two runs that
    trained the same adapter ask for the same loaded one, and another adapter never takes its name."""
    return f"{model_id}+lora-{adapter_digest(adapter_path)[:16]}"


def listed_ids(client: ServerClient) -> set[str]:
    listing = client.get("models")
    return {str(m.get("id")) for m in (listing.get("data") or []) if isinstance(m, dict)}


def _refusal_advice(message: str, base_url: str, adapter_path: str, rank: int | None) -> str:
    """What to do about a load the server refused, from its own message."""
    start = start_advice(rank)
    if "No adapter found" in message:
        return (f"the server cannot read {adapter_path}: it reads adapters from its own filesystem, so the store "
                "(store_dir) must be on one it shares, at the same path")
    if "not enabled" in message or "HTTP 404" in message or "HTTP 405" in message:
        return f"the server at {base_url} does not take LoRA adapters at runtime; {start}"
    if "rank" in message.lower():
        return f"the adapter's rank exceeds the server's --max-lora-rank; {start}"
    return f"if the server does not take adapters, {start}"


def load_adapter(client: ServerClient, model_id: str, adapter_path: str, rank: int | None = None) -> str:
    """Load the adapter into the server unless it already holds it; the model id that names it in requests.
    One-line ServerError (with what to do) when the server refuses it."""
    name = adapter_name(model_id, adapter_path)
    if name in listed_ids(client):
        log.info("server at %s already holds adapter %s", client.base_url, name)
        return name
    path = str(Path(adapter_path).resolve())
    try:
        client.post(LOAD_ROUTE, {"lora_name": name, "lora_path": path}, retries=0, json_answer=False)
    except ServerError as exc:
        if "already been loaded" in str(exc):  # another worker loaded it meanwhile
            return name
        raise ServerError(f"{exc}; {_refusal_advice(str(exc), client.base_url, path, rank)}") from None
    log.info("loaded adapter %s into the server at %s as %s", path, client.base_url, name)
    return name


def check_adapters_accepted(client: ServerClient, where: str, rank: int | None) -> None:
    """At start: whether the server takes adapters at runtime, asked by loading one from a path that does not
    exist. A server that takes adapters answers that it found none there; one started without the runtime route
    answers 404, one without --enable-lora says so. One-line ValueError (how to start it) otherwise."""
    try:
        client.post(LOAD_ROUTE, {"lora_name": PROBE_NAME, "lora_path": f"/nonexistent/{PROBE_NAME}"}, retries=0,
                    json_answer=False)
    except ServerError as exc:
        if "No adapter found" in str(exc):
            return
        raise ValueError(f"{where}.base_url={client.base_url} cannot load the LoRA adapters finetune=lora|qlora "
                         f"trains ({exc}): {_refusal_advice(str(exc), client.base_url, '', rank)}") from None
