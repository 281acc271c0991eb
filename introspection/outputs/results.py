"""results.json as types: the accuracy cells, the paired tests and the run's results, shared by the writer
(introspection/outputs/run_outputs.py: results.json, matrix.csv, W&B) and the readers (introspection/outputs/report.py,
introspection/outputs/sweep.py).

The JSON field names and values are those results.json has always had; a file written before
`schema_version` existed reads as version 0. Each record keeps the dict it was read from (`record`), so it is
written back key for key, with any field it has beyond the typed ones (e.g. `noncompliant` on the cells of
the other treatment, `mcnemar_p_holm` on per-task tests). Bump SCHEMA_VERSION when a field changes meaning
or is renamed or removed (docs/usage.md, Outputs); added fields need no bump.
"""

from __future__ import annotations

import builtins
import json
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
POOLED = "all"  # the task or property of a cell pooled over every task or property
ADJUSTED = "adjusted"  # the task of a distribution-matched cell (docs/method.md §4.4)
NAN = float("nan")


class NewerSchema(ValueError):
    """A results.json written by a newer version of this code (its schema_version is above SCHEMA_VERSION)."""


class _Record:
    """A typed view over one stored dict: typed fields read from it, `record` written back unchanged."""

    record: dict

    def __post_init__(self) -> None:
        if not self.record:  # built in code rather than read: its record is its fields
            object.__setattr__(self, "record", {f.name: getattr(self, f.name) for f in fields(self) if f.name != "record"})

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        if not isinstance(d, dict):
            raise ValueError(f"a {cls.__name__} is a JSON object, got {type(d).__name__} {d!r:.60}")
        names = {f.name for f in fields(cls)} - {"record"}
        required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
        missing = [k for k in required if k not in d]
        if missing:
            raise ValueError(f"a {cls.__name__} lacks {', '.join(missing)} (has {', '.join(d) or 'nothing'})")
        return cls(**{k: v for k, v in d.items() if k in names}, record=dict(d))

    def to_dict(self) -> dict[str, Any]:
        return dict(self.record)

    def get(self, key: str, default: Any = None) -> Any:
        """A stored field, typed or not (e.g. `noncompliant` on the other treatment's cells)."""
        return self.record.get(key, default)


@dataclass(frozen=True)
class Cell(_Record):
    """One accuracy cell: `predictor` predicting `target`'s behaviour, as `kind` (self, cross, untrained,
    old_behavior, ...), on one task and property or pooled over them (POOLED), or the distribution-matched
    variant (task ADJUSTED)."""

    predictor: str
    target: str
    kind: str
    task: str = POOLED
    property: str = POOLED
    accuracy: float = NAN
    ci_low: float = NAN
    ci_high: float = NAN
    se: float | None = None
    n: int = 0
    ci_method: str | None = None
    mode_baseline: float = NAN
    compliance: float = NAN
    flag: str | None = None  # why the number says nothing about introspection; None: informative
    record: dict = field(default_factory=dict, repr=False, compare=False)

    @builtins.property  # `property` is a field name in this class
    def is_headline(self) -> bool:
        """Pooled over every task and property: the run's matrix."""
        return self.task == POOLED and self.property == POOLED

    @builtins.property  # `property` is a field name in this class
    def pooled_over_tasks(self) -> bool:
        return self.task == POOLED

    @builtins.property  # `property` is a field name in this class
    def is_adjusted(self) -> bool:
        return self.task == ADJUSTED


@dataclass(frozen=True)
class PairedTest(_Record):
    """Self- vs cross-prediction (or any two predictors) on identical items: delta = self minus cross."""

    target: str
    self_predictor: str | None = None
    cross_predictor: str | None = None
    label: str | None = None  # a comparison other than self vs cross names itself (e.g. new vs old behaviour)
    noncompliant: str | None = None
    task: str = POOLED
    n: int = 0
    self_accuracy: float = NAN
    cross_accuracy: float = NAN
    delta: float = NAN
    ci_low: float = NAN
    ci_high: float = NAN
    boot_ci_low: float = NAN
    boot_ci_high: float = NAN
    mcnemar_p: float = NAN
    mcnemar_p_holm: float | None = None  # per-task tests: Holm-adjusted across the tasks
    self_only: int = 0
    cross_only: int = 0
    flag: str | None = None
    record: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_pooled(self) -> bool:
        """Over every task (the per-task tests break it down)."""
        return self.task == POOLED


# results.json's fields in the order they are written; any other top-level key is an experiment's section.
FIELDS = ("schema_version", "experiment", "noncompliant", "compliance", "models", "n_items", "items_per_task",
          "matrix", "cells", "paired_tests", "alternative_treatment")
TRAILING = ("report_section", "store", "profile", "config")


@dataclass
class Results:
    """One run's results.json. `matrix` is the headline cells (those of `cells` pooled over task and property);
    `sections` the experiment's own results, each under its name (e.g. "calibration")."""

    experiment: str | None = None
    noncompliant: str | None = None
    compliance: str | None = None
    models: dict[str, str] | None = None
    n_items: dict[str, int] | None = None
    items_per_task: dict[str, int] | None = None
    matrix: list[Cell] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)
    paired_tests: list[PairedTest] = field(default_factory=list)
    alternative_treatment: list[Cell] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)
    report_section: list[str] = field(default_factory=list)
    store: dict | None = None
    profile: dict | None = None
    config: dict | None = None
    schema_version: int = SCHEMA_VERSION

    def headline(self) -> list[Cell]:
        return [c for c in self.cells if c.is_headline]

    def pooled_tests(self) -> list[PairedTest]:
        return [t for t in self.paired_tests if t.is_pooled]

    @classmethod
    def of_run(cls, run: dict[str, Any], **fields_: Any) -> Results:
        """The results dict a run assembles (ExperimentResult.as_dict, plus store and profile) as Results;
        `fields_` sets the rest (experiment, noncompliant, compliance, config)."""
        cells = [Cell.from_dict(c) for c in run.get("cells") or []]
        return cls(models=run.get("models"), n_items=run.get("n_items"), items_per_task=run.get("tasks"),
                   matrix=[c for c in cells if c.is_headline], cells=cells,
                   paired_tests=[PairedTest.from_dict(t) for t in run.get("paired_tests") or []],
                   alternative_treatment=[Cell.from_dict(c) for c in run.get("alternative_treatment") or []],
                   sections={k: run[k] for k in run.get("sections", ())}, report_section=run.get("report_section", []),
                   store=run.get("store"), profile=run.get("profile"), **fields_)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "results.json") -> Results:
        version = d.get("schema_version", 0)  # 0: written before results.json carried its version
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise ValueError(f"{where}: schema_version {version!r} is not valid; valid: an integer >= 0")
        if version > SCHEMA_VERSION:
            raise NewerSchema(f"{where}: schema_version {version} is newer than this code reads (up to "
                             f"{SCHEMA_VERSION}); read it with the introspection version that wrote it, or update")
        cells = [Cell.from_dict(c) for c in d.get("cells") or []]
        matrix = [Cell.from_dict(c) for c in d["matrix"]] if "matrix" in d else [c for c in cells if c.is_headline]
        return cls(experiment=d.get("experiment"), noncompliant=d.get("noncompliant"), compliance=d.get("compliance"),
                   models=d.get("models"), n_items=d.get("n_items"), items_per_task=d.get("items_per_task"),
                   matrix=matrix, cells=cells,
                   paired_tests=[PairedTest.from_dict(t) for t in d.get("paired_tests") or []],
                   alternative_treatment=[Cell.from_dict(c) for c in d.get("alternative_treatment") or []],
                   sections={k: v for k, v in d.items() if k not in FIELDS and k not in TRAILING},
                   report_section=d.get("report_section") or [], store=d.get("store"), profile=d.get("profile"),
                   config=d.get("config"), schema_version=version)

    def to_dict(self) -> dict[str, Any]:
        """results.json's content, in its order: the fields, the sections, then the report's lines, store
        counts, profile and config."""
        return {"schema_version": self.schema_version, "experiment": self.experiment,
                "noncompliant": self.noncompliant, "compliance": self.compliance, "models": self.models,
                "n_items": self.n_items, "items_per_task": self.items_per_task,
                "matrix": [c.to_dict() for c in self.matrix], "cells": [c.to_dict() for c in self.cells],
                "paired_tests": [t.to_dict() for t in self.paired_tests],
                "alternative_treatment": [c.to_dict() for c in self.alternative_treatment],
                **self.sections, "report_section": self.report_section, "store": self.store,
                "profile": self.profile, "config": self.config}


def load_results(path: Path) -> Results:
    """A results.json file as Results. One-line ValueErrors naming the file: NewerSchema when a newer version
    of this code wrote it; otherwise when it is not JSON or not results."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a results object (a JSON {type(data).__name__})")
    try:
        return Results.from_dict(data, where=str(path))
    except NewerSchema:
        raise
    except ValueError as e:
        if str(e).startswith(str(path)):
            raise
        raise ValueError(f"{path}: {e}") from None
