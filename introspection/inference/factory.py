"""The backend factory: `make_backend` starts the backend that answers a model: the one serving its source
(a `server` model), else the engine inference.backend names; both looked up in the registry (registry.py).

Apart from base.py because the backends import base (make_answer, BackendSpec): base imports no backend, so
the backends and base form no import circle.
"""

from __future__ import annotations

from pathlib import Path

from introspection.core.config import InferenceConfig, ModelEntry
from introspection.core.types import Sampling
from introspection.inference.base import SERVING_MODES, Backend
from introspection.inference.registry import backend_for
from introspection.weights.resolve import ResolvedModel


def make_backend(
    kind: str,
    model: ResolvedModel,
    cfg: InferenceConfig,
    entry: ModelEntry,
    adapter_path: str | None = None,
    work_dir: Path | None = None,
    samplings: list[Sampling] | None = None,
) -> Backend:
    """Load `model` (plus an optional LoRA adapter) into its backend: the one serving entry.source, else the
    engine named `kind` (inference.backend).

    `work_dir` holds merged adapters and compiler caches; default: the artifact store. `samplings`: every
    Sampling the backend will be asked with (None: any); an engine that only decodes greedily may keep
    vLLM's chunked prefill on a CPU.
    """
    if cfg.lora_serving not in SERVING_MODES:
        raise ValueError(f"unknown inference.lora_serving {cfg.lora_serving!r}; valid: {', '.join(SERVING_MODES)}")
    spec = backend_for(entry.source if entry is not None else None, kind)
    return spec.load(model, cfg, entry, adapter_path=adapter_path, work_dir=work_dir, samplings=samplings)
