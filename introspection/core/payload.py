"""What crosses into a spawned worker process, and back out of it: one encoding for every worker path.

A worker (the answer and finetune workers, every rank of a multi-GPU finetune, a merge, an embedded
conversion) receives plain data: spawn pickles it and a multi-GPU launch writes it as JSON, and a live
DictConfig or a model would drag the parent's state along. `to_payload` turns configs (DictConfig, config
dataclasses) and records (ModelEntry, ResolvedModel, Sampling, ...) into that data; in the worker,
`config_from_payload` rebuilds a config typed by its schema (nested settings included, unknown keys
refused) and `record_from_payload` a record dataclass.

Artifact keys are never computed from a payload: the parent hashes its own settings before it encodes them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, ListConfig, OmegaConf

T = TypeVar("T")


def to_payload(value: Any) -> Any:
    """`value` as plain data (dicts, lists, strings, numbers, None): configs resolved, dataclasses as dicts,
    paths as strings, at any depth."""
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_payload(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {key: to_payload(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_payload(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


def config_from_payload(schema: type, data: dict) -> DictConfig:
    """A config of `schema` (a structured config dataclass, e.g. FinetuneConfig) rebuilt from its payload: the
    schema's defaults, then the payload's values, checked against the schema's types and keys."""
    return OmegaConf.merge(OmegaConf.structured(schema), data)


def record_from_payload(cls: type[T], data: dict) -> T:
    """A record dataclass (ModelEntry, ResolvedModel, Sampling) rebuilt from its payload."""
    return cls(**data)
