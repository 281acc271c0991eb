"""Imported first by the forkserver that model workers fork from on a CPU machine
(introspection/core/preloaded_start.py): it outlives the job's stop signals and imports the libraries every worker
imports, so no worker pays for them again. A library that is not installed is left out."""

from __future__ import annotations

import importlib

from introspection.core.preloaded_start import ignore_stop_signals

ignore_stop_signals()

# What every worker imports (an inference worker, a finetune, a vLLM engine); the forkserver then imports the
# libraries the run uses (preloaded_start.preload_libraries), each by name.
for _name in ("torch", "transformers", "transformers.models.auto.modeling_auto"):
    try:
        importlib.import_module(_name)
    except ImportError:
        pass
