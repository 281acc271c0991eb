"""The backend factory: `make_backend` loads a model into the backend that inference.backend names.

Apart from base.py because the backends import base (make_answer): base imports no backend, so the
backends and base form no import circle.
"""

from __future__ import annotations

from pathlib import Path

from introspection.config import InferenceConfig, ModelEntry
from introspection.inference.base import BACKENDS, SERVING_MODES, Backend
from introspection.models import ResolvedModel
from introspection.types import Sampling


def make_backend(
    kind: str,
    model: ResolvedModel,
    cfg: InferenceConfig,
    entry: ModelEntry,
    adapter_path: str | None = None,
    work_dir: Path | None = None,
    samplings: list[Sampling] | None = None,
) -> Backend:
    """Load `model` (plus an optional LoRA adapter) into the backend named `kind`.

    `work_dir` holds merged adapters and compiler caches; default: the artifact store. `samplings`: every
    Sampling the backend will be asked with (None: any); an engine that only decodes greedily may keep
    vLLM's chunked prefill on a CPU.
    """
    if cfg.lora_serving not in SERVING_MODES:
        raise ValueError(f"unknown inference.lora_serving {cfg.lora_serving!r}; valid: {', '.join(SERVING_MODES)}")
    if kind == "vllm":
        from introspection.inference.vllm_backend import VLLMBackend

        seeded = samplings is None or any(s.temperature > 0 for s in samplings)
        return VLLMBackend(model, cfg, entry, adapter_path=adapter_path, work_dir=work_dir, seeded_sampling=seeded)
    if kind == "hf":
        from introspection.inference.hf_backend import HFBackend

        return HFBackend(model, cfg, entry, adapter_path=adapter_path, work_dir=work_dir)
    raise ValueError(f"unknown inference backend {kind!r} (inference.backend); valid: {', '.join(BACKENDS)}")
