"""Imported once by the forkserver that model workers fork from on a CPU machine
(introspection/core/preloaded_start.py): the libraries every worker imports, so no worker pays for them again.
A library that is not installed is left out (a run without vLLM or TRL does not use it)."""

from __future__ import annotations

import importlib

from introspection.core.preloaded_start import ignore_stop_signals

ignore_stop_signals()

# In the order a worker needs them: every worker (torch, transformers' auto classes), finetunes (peft, trl),
# vLLM's engine (vllm).
for _name in ("torch", "transformers", "transformers.models.auto.modeling_auto", "peft", "trl", "vllm"):
    try:
        importlib.import_module(_name)
    except ImportError:
        pass
