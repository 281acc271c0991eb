"""Hydra callback for what Hydra itself writes into the run folder, before the task function runs.

Registered in conf/config.yaml (hydra.callbacks.run_folder). It
- checks, before Hydra writes anything, that the run (or sweep) folder's disk has room: Hydra's own
  writes of .hydra/*.yaml would otherwise fail with a traceback (`error:` line and exit 2 instead);
- rewrites .hydra/config.yaml, hydra.yaml, overrides.yaml and the sweep's multirun.yaml with every
  credential redacted (the rule is in introspection/core/secrets.py), and redacts the process's command line
  (W&B records it, and spawned workers inherit it);
- takes secret values out of every log line (Hydra's launcher logs each job's overrides);
- makes the job's log files stop quietly when their disk fills (see errors.quiet_full_disk_logs).
"""

from __future__ import annotations

import copy
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from introspection.core import secrets
from introspection.core.errors import EXIT_CODE, quiet_full_disk_logs

MIN_FREE_BYTES = 256 << 10  # Hydra's files and the job's log take a few pages; with less the run cannot start


def free_bytes(folder: Path) -> int:
    """Free bytes on the disk that holds `folder` (or its nearest existing parent)."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    return shutil.disk_usage(existing).free


def check_room(folder: str | Path, key: str) -> None:
    """Stop with one line when the disk of a run or sweep folder is (nearly) full."""
    folder = Path(str(folder)).expanduser().absolute()
    try:
        free = free_bytes(folder)
    except OSError:  # unreadable: Hydra's own error, or the command line check, says more
        return
    if free < MIN_FREE_BYTES:
        print(f"error: the disk of the {'sweep' if 'sweep' in key else 'run'} folder {folder} is full ({free // 1024} KiB "
              f"free, a run needs at least {MIN_FREE_BYTES >> 10} KiB); free space there, or set {key} to a folder "
              "on another disk", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_CODE)


def _container(node) -> Any:
    try:
        return OmegaConf.to_container(node, resolve=True)
    except Exception:  # an interpolation that does not resolve here: the unresolved values still show secrets
        return OmegaConf.to_container(node, resolve=False)


def known_secrets(config: DictConfig) -> set[str]:
    """Secret values of this job: under secret keys of its config (Hydra's included) and in its overrides."""
    overrides = list(OmegaConf.select(config, "hydra.overrides.task", default=[]) or [])
    overrides += list(OmegaConf.select(config, "hydra.overrides.hydra", default=[]) or [])
    return secrets.secret_values(_container(config)) | secrets.override_secrets(overrides) | \
        secrets.override_secrets(sys.argv[1:])


def _redact_yaml(path: Path, values: set[str]) -> None:
    """Rewrite a saved YAML with its credentials redacted (atomically; untouched when already clean)."""
    from introspection.core.store import write_text_atomic

    if not path.is_file():
        return
    data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    if isinstance(data, list):  # overrides.yaml: a list of override strings
        clean = [secrets.redact_override(str(o), values) for o in data]
    else:
        clean = copy.deepcopy(data)
        hydra_node = clean.get("hydra") if "hydra" in clean else clean  # hydra.yaml, multirun.yaml: their overrides
        for group in ("task", "hydra"):
            listed = (hydra_node.get("overrides") or {}).get(group) if isinstance(hydra_node, dict) else None
            if isinstance(listed, list):
                hydra_node["overrides"][group] = [secrets.redact_override(str(o), values) for o in listed]
        clean = secrets.redact(clean, values)
    if clean == data:
        return
    try:
        write_text_atomic(path, OmegaConf.to_yaml(OmegaConf.create(clean)))
    except OSError:  # e.g. a full disk: no copy at all rather than one in clear (unlinking needs no room)
        path.unlink(missing_ok=True)


def redact_job_files(config: DictConfig) -> None:
    """The job's .hydra/*.yaml and the sweep's multirun.yaml, redacted; the command line too."""
    values = known_secrets(config)
    output_subdir = OmegaConf.select(config, "hydra.output_subdir")
    output_dir = OmegaConf.select(config, "hydra.runtime.output_dir")
    if output_subdir is not None and output_dir:
        for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
            _redact_yaml(Path(output_dir) / output_subdir / name, values)
    if OmegaConf.select(config, "hydra.mode") == RunMode.MULTIRUN:
        _redact_yaml(Path(str(OmegaConf.select(config, "hydra.sweep.dir"))) / "multirun.yaml", values)
    sys.argv[:] = secrets.redact_argv(sys.argv, values)


class ScrubSecrets(logging.Filter):
    """Takes known secret values out of every log line (Hydra's multirun launcher logs each job's
    overrides; a Slurm job's log file would keep them)."""

    def __init__(self, values: set[str]):
        super().__init__()
        self.values = values

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = secrets.scrub(message, self.values)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def scrub_log_lines(values: set[str]) -> None:
    """Add (or update) the scrubbing filter on every handler of the root logger, and on Hydra's and the
    launcher plugins' own loggers (Hydra's launcher replaces the root handlers before each job)."""
    filterers: list[logging.Filterer] = list(logging.getLogger().handlers)
    filterers += [logger for name, logger in logging.Logger.manager.loggerDict.items()
                  if isinstance(logger, logging.Logger) and name.startswith(("hydra", "hydra_plugins"))]
    for filterer in filterers:
        found = next((f for f in filterer.filters if isinstance(f, ScrubSecrets)), None)
        if found is None:
            filterer.addFilter(ScrubSecrets(set(values)))
        else:
            found.values |= values


class RunFolder(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        check_room(OmegaConf.select(config, "hydra.run.dir"), "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        check_room(OmegaConf.select(config, "hydra.sweep.dir"), "hydra.sweep.dir")
        scrub_log_lines(secrets.override_secrets(sys.argv[1:]))  # before the launcher logs each job's overrides

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        quiet_full_disk_logs()
        scrub_log_lines(known_secrets(config))  # Hydra set up this job's handlers (main.log) just before
        redact_job_files(config)
