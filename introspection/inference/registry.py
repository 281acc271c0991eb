"""The backend registry: every module of this package named `<name>_backend.py` that defines
`BACKEND = BackendSpec(...)` (introspection/inference/base.py) is a backend. Adding one is that module plus its
config file (conf/inference/<name>.yaml for an engine chosen with inference=<name>; a catalogue entry in
conf/model/llm/ for a model source such as `server`); the factory, the start's validation of
inference.backend and model.mX.source, and each backend's own start checks read this registry
(docs/api_models.md, "Adding a backend").

Discovery imports only the `*_backend` modules, which import their engines (vLLM, torch, httpx) inside
functions, so listing the backends costs milliseconds.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from functools import cache

from introspection.inference.base import BackendSpec

BACKEND_MODULE_SUFFIX = "_backend"
PACKAGE = __name__.rsplit(".", 1)[0]  # introspection.inference (imported before this module; not imported here)


@cache
def backends() -> dict[str, BackendSpec]:
    """name -> BackendSpec of every backend module of this package."""
    found: dict[str, BackendSpec] = {}
    for info in sorted(pkgutil.iter_modules(sys.modules[PACKAGE].__path__), key=lambda m: m.name):
        if not info.name.endswith(BACKEND_MODULE_SUFFIX):
            continue
        module = importlib.import_module(f"{PACKAGE}.{info.name}")
        spec = getattr(module, "BACKEND", None)
        if not isinstance(spec, BackendSpec):
            raise TypeError(f"{module.__name__} is named like a backend but defines no BACKEND = BackendSpec(...)")
        if spec.name in found:
            raise ValueError(f"backend name {spec.name!r} is defined twice ({module.__name__} and another module)")
        found[spec.name] = spec
    return found


def engine_names() -> list[str]:
    """Values of inference.backend: the engines that load weights here (the schema's default first)."""
    from introspection.core.config import InferenceConfig

    default = InferenceConfig.backend
    return sorted((s.name for s in backends().values() if s.source is None), key=lambda n: (n != default, n))


def served_sources() -> dict[str, BackendSpec]:
    """model.mX.source -> the backend that answers every model of that source (e.g. server)."""
    return {s.source: s for s in backends().values() if s.source is not None}


def backend_for(source: str | None, engine: str) -> BackendSpec:
    """The backend that answers a model of `source`: the one serving that source, else the engine
    inference.backend names (`engine`); a one-line ValueError for an unknown engine."""
    served = served_sources().get(source or "")
    if served is not None:
        return served
    specs = backends()
    if engine not in specs or specs[engine].source is not None:
        raise ValueError(f"unknown inference backend {engine!r} (inference.backend); valid: {', '.join(engine_names())}")
    return specs[engine]


def check_backend_choices(cfg) -> None:
    """At every start: inference.backend names an engine, each model.mX.source is a known source, and the
    backend of each model accepts its entry (its check_config). One-line ValueError otherwise."""
    from introspection.weights.resolve import SOURCES

    engine = cfg.inference.backend
    if engine not in engine_names():
        raise ValueError(f"inference.backend={engine!r} is not valid; valid: {', '.join(engine_names())}")
    for slot in ("m1", "m2"):
        source = cfg.model[slot].source
        if source not in SOURCES:
            raise ValueError(f"model.{slot}.source={source!r} is not valid; valid: {', '.join(SOURCES)}")
        spec = backend_for(source, engine)
        if spec.check_config is not None:
            spec.check_config(cfg, slot)


def check_backend_services(cfg, finetuned: tuple[str, ...] = ("m1", "m2")) -> None:
    """Once models will run: each model's backend checks what it needs beyond the config (a server's key,
    reachability and model list; a fine-tuning route for the slots the experiment finetunes), in slot order."""
    for slot in ("m1", "m2"):
        spec = backend_for(cfg.model[slot].source, cfg.inference.backend)
        if spec.check_service is not None:
            spec.check_service(cfg, slot, slot in finetuned)
