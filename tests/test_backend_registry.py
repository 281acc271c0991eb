"""The backend registry (introspection/inference/registry.py): every `<name>_backend.py` module of the inference
package that defines BACKEND is a backend, and the factory, the start's validation and the answers' key read it.
A backend added as one module is found, validated and started without any other file naming it."""

from __future__ import annotations

import sys
from dataclasses import asdict

import pytest

from introspection.core.config import InferenceConfig, ModelEntry
from introspection.inference import make_backend, registry
from introspection.inference.base import BackendSpec
from tests.helpers import compose_cfg
from tests.helpers.checks import assert_one_line


def raised(exc_type, fn, *args, **kw) -> str:
    with pytest.raises(exc_type) as info:
        fn(*args, **kw)
    return str(info.value)


def test_the_engines_and_the_sources_they_serve():
    specs = registry.backends()
    assert {"vllm", "hf"} <= set(specs)
    assert registry.engine_names()[:2] == ["vllm", "hf"]  # the schema's default first
    assert all(isinstance(s, BackendSpec) for s in specs.values())
    assert registry.backend_for("hub", "hf").name == "hf"
    assert registry.backend_for("embedded", "vllm").name == "vllm"
    assert specs["vllm"].device_wide and not specs["hf"].device_wide  # the profile's memory reading, as before
    for source in registry.served_sources():
        assert source not in ("hub", "local", "embedded")  # weights sources stay the engines'


def test_an_unknown_engine_or_source_fails_in_one_line():
    assert_one_line(raised(ValueError, registry.backend_for, None, "tgi"), "unknown inference backend 'tgi'",
                    "inference.backend", "valid: vllm, hf")
    cfg = compose_cfg(["inference.backend=tgi"])
    assert_one_line(raised(ValueError, registry.check_backend_choices, cfg), "inference.backend='tgi'", "valid: vllm, hf")
    cfg = compose_cfg(["model.m2.source=s3"])
    assert_one_line(raised(ValueError, registry.check_backend_choices, cfg), "model.m2.source='s3'",
                    "valid: hub, local, embedded")
    registry.check_backend_choices(compose_cfg([]))  # the default config passes


@pytest.fixture
def echo_backend(tmp_path, monkeypatch):
    """A backend added the way the docs say: one module `echo_backend.py` beside the others (here in a
    temporary folder on the package's search path)."""
    import introspection.inference as package

    (tmp_path / "echo_backend.py").write_text('''
from introspection.inference.base import BackendSpec, make_answer


class EchoBackend:
    serving = "base"

    def __init__(self, model, cfg):
        self.model, self.cfg = model, cfg

    def chat(self, requests, sampling):
        return [make_answer(r.request_id, [r.messages[-1]["content"][::-1]], ["stop"], [], self.cfg.aggregation)
                for r in requests]

    def close(self):
        pass


def _load(model, cfg, entry, adapter_path=None, work_dir=None, samplings=None):
    return EchoBackend(model, cfg)


def _check(cfg, slot):
    if cfg.model[slot].name == "refused":
        raise ValueError(f"model.{slot}.name=refused is not served by echo")


BACKEND = BackendSpec(name="echo", summary="answers each prompt reversed", load=_load, on_devices=False,
                      check_config=_check)
''')
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    registry.backends.cache_clear()
    yield
    registry.backends.cache_clear()
    sys.modules.pop("introspection.inference.echo_backend", None)


def test_a_backend_is_one_module(echo_backend, tiny_model_dir, tmp_path):
    from introspection.core.types import ChatRequest, Sampling
    from introspection.stages.answers import AnswerJob, answer_key
    from introspection.stages.model_ref import ModelRef
    from introspection.weights.resolve import resolve_model

    assert "echo" in registry.engine_names()
    cfg = compose_cfg(["inference.backend=echo"])
    registry.check_backend_choices(cfg)  # accepted at start without any other file naming it
    refused = compose_cfg(["inference.backend=echo", "model.m1.name=refused"])
    assert_one_line(raised(ValueError, registry.check_backend_choices, refused), "model.m1.name=refused")

    entry = ModelEntry(name="tiny", source="local", path=str(tiny_model_dir))
    resolved = resolve_model(entry, tmp_path)
    backend = make_backend("echo", resolved, InferenceConfig(name="x", backend="echo"), entry)
    answers = backend.chat([ChatRequest("r0", [{"role": "user", "content": "abc"}])], Sampling())
    assert [a.text for a in answers] == ["cba"]
    # Its answers are keyed by its name, and (off this machine's devices) without the inference dtype.
    model = ModelRef("tiny", asdict(entry), asdict(resolved))
    job = AnswerJob("x", [ChatRequest("r0", [{"role": "user", "content": "abc"}])], Sampling())
    keys = {name: answer_key(model, job, InferenceConfig(name="x", backend=name)) for name in ("echo", "hf")}
    assert keys["echo"] != keys["hf"]
