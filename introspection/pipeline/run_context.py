"""One run's context, handed to an experiment: the config, the artifact store, the run folder, and the executor
that carries out the pipeline's steps (introspection/pipeline/steps.py sends every model step through it).

Two executors take the same steps: introspection/pipeline/executor.py does the work (worker processes, the store);
introspection/preflight/recorder.py records each step (model, requests, tokens, rows, dependencies) and answers
with placeholders, loading no model: the pre-flight plan (`experiment.stop_after=plan`) is the experiment's
own steps, recorded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from introspection.core.profile import Profile
from introspection.core.store import Store


@dataclass
class RunContext:
    cfg: DictConfig
    store: Store
    run_dir: Path
    executor: Any  # executor.LocalExecutor or preflight/recorder.py RecordingExecutor: the methods steps.py calls
    profile: Profile | None = None  # the run's per-stage wall, tokens and memory (results.json "profile"); None: not recorded
