"""The experiments and their registry: the paper's main one (cross_prediction.py) and the others
(docs/method.md §6, 7, 8.2).

An experiment is a module in this package that defines `EXPERIMENT = Experiment(...)`: its name (the value of
`experiment.name`), a dataclass of its settings (`experiment.options`, typed), the function that runs it by
composing pipeline steps (introspection/pipeline/steps.py) on the run's context and returns an ExperimentResult, and
optionally its report section (`render`), its own start checks (`check`) and the model slots it finetunes
(`finetunes`). `registry()` finds every such module by scanning this package, so adding an experiment touches
only its module, its config file (conf/experiment/<name>.yaml) and its test; docs/adding_an_experiment.md
walks through one.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from introspection.pipeline.run_context import RunContext


@dataclass
class ExperimentResult:
    """What an experiment measured; results.json, matrix.csv, items.jsonl, report.md and W&B are written from it.

    cells: accuracy cells (predictor, target, kind, task, property, accuracy, CI, n, mode baseline, compliance);
    paired_tests: paired comparisons on identical items; pairs: the scored (item, property) rows;
    sections: the experiment's own results, each under its name in results.json (e.g. {"calibration": [...]});
    weights: per model slot, the weights it loaded: path, fingerprint, and for a hub model the revision asked
    for and the commit it resolved to;
    report: the markdown lines of its own report.md section (Experiment.render fills it)."""

    cells: list[dict] = field(default_factory=list)
    paired_tests: list[dict] = field(default_factory=list)
    pairs: list[dict] = field(default_factory=list)
    models: dict[str, str] = field(default_factory=dict)
    n_items: dict[str, int] = field(default_factory=dict)
    alternative_treatment: list[dict] = field(default_factory=list)
    items_per_task: dict[str, int] | None = None
    sections: dict[str, Any] = field(default_factory=dict)
    report: list[str] = field(default_factory=list)
    weights: dict[str, dict] = field(default_factory=dict)  # slot -> what it loaded (pipeline.weights_of)

    def as_dict(self) -> dict:
        """The results dict the writers read (introspection/outputs/run_outputs.py): sections at the top level, named
        under "sections"; the report section's lines under "report_section"."""
        out = {"cells": self.cells, "paired_tests": self.paired_tests, "pairs": self.pairs, "models": self.models,
               "n_items": self.n_items, "alternative_treatment": self.alternative_treatment}
        if self.weights:
            out["weights"] = self.weights
        if self.items_per_task is not None:
            out["tasks"] = self.items_per_task
        clash = set(self.sections) & (set(out) | {"sections", "report_section", "store"})
        if clash:
            raise ValueError(f"experiment sections {sorted(clash)} would overwrite results keys; rename them")
        return out | self.sections | {"sections": list(self.sections), "report_section": self.report}


@dataclass
class NoOptions:
    """An experiment without settings of its own."""


@dataclass(frozen=True)
class Experiment:
    """One experiment: `run(ctx, options)` composes pipeline steps on the run's context (cfg, store, run_dir,
    executor); `options` is the dataclass `experiment.options` is read into (its `check()`, when defined, raises
    a one-line ValueError for a bad value); `render(result, run_dir)` returns the markdown lines of its report
    section; `check(cfg, options)` is its own start check (a one-line ValueError, before any model loads);
    `finetunes(options)` names the model slots it finetunes (the start checks refuse a server model there
    without a fine-tuning route)."""

    name: str
    run: Callable[[RunContext, Any], ExperimentResult]
    options: type = NoOptions
    render: Callable[[ExperimentResult, Path], list[str]] | None = None
    summary: str = ""  # one line for listings
    check: Callable[[DictConfig, Any], None] | None = None
    finetunes: Callable[[Any], tuple[str, ...]] = lambda options: ("m1", "m2")


def model_slot(value: str, key: str) -> str:
    """A model slot named by an option (e.g. experiment.options.target), or a one-line ValueError."""
    if value not in ("m1", "m2"):
        raise ValueError(f"{key} '{value}' is not a model slot; valid: m1, m2")
    return value


def registry() -> dict[str, Experiment]:
    """experiment.name -> Experiment, for every module of this package that defines EXPERIMENT."""
    found: dict[str, Experiment] = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        experiment = getattr(module, "EXPERIMENT", None)
        if experiment is None:
            continue
        if experiment.name in found:
            raise ValueError(f"experiment name '{experiment.name}' is defined twice ({module.__name__} and another "
                             f"module of {__name__}); give each experiment its own name")
        found[experiment.name] = experiment
    return found


def parse_options(experiment: Experiment, raw: DictConfig | dict | None) -> Any:
    """`experiment.options` as the experiment's typed options: unknown keys, wrongly typed values and values its
    check() refuses raise one-line ValueErrors that name the key and what is valid."""
    raw = OmegaConf.to_container(raw, resolve=True) if isinstance(raw, DictConfig) else dict(raw or {})
    valid = [f.name for f in dataclasses.fields(experiment.options)]
    unknown = sorted(set(raw) - set(valid))
    if unknown:
        raise ValueError(f"unknown experiment.options {unknown} for {experiment.name}; valid: {', '.join(valid) or 'none'}")
    try:
        options = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(experiment.options), raw))
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        given = raw.get(key.split("[")[0].split(".")[0])
        reason = str(e).splitlines()[0]
        raise ValueError(f"experiment.options.{key} (given {given!r}) is not valid for {experiment.name}: {reason}") from None
    check = getattr(options, "check", None)
    if check is not None:
        check()
    return options
