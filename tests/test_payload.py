"""The one encoding of worker payloads (introspection/core/payload.py): configs and records to plain data and back."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError

from introspection.core.config import FinetuneConfig, InferenceConfig, ModelEntry
from introspection.core.payload import config_from_payload, record_from_payload, to_payload
from introspection.core.types import ChatRequest, Sampling
from introspection.stages.model_ref import ModelRef
from introspection.weights.resolve import ResolvedModel


def test_configs_travel_as_plain_data_and_come_back_typed_by_their_schema():
    cfg = OmegaConf.structured(FinetuneConfig(name="lora", learning_rate=1e-3))
    cfg.lora.r = 4
    cfg.learning_rate_by_model = {"tiny": 5e-4}
    data = to_payload({"finetune": cfg, "rows_path": Path("/store/rows.jsonl")})
    assert json.loads(json.dumps(data)) == data  # JSON, as the ranks of a multi-GPU launch read it
    assert data["rows_path"] == "/store/rows.jsonl" and data["finetune"]["lora"]["r"] == 4
    back = config_from_payload(FinetuneConfig, json.loads(json.dumps(data["finetune"])))
    assert isinstance(back, DictConfig) and back == cfg
    assert back.lora.r == 4 and back.learning_rate == 1e-3 and back.learning_rate_by_model.tiny == 5e-4
    with pytest.raises(ConfigKeyError):  # a key the schema does not know is refused, not carried along
        config_from_payload(InferenceConfig, {"name": "x", "batch_sizes": 3})


def test_a_partial_config_gets_the_schema_defaults():
    back = config_from_payload(InferenceConfig, {"name": "hf", "backend": "hf", "batch_size": 2})
    assert back.backend == "hf" and back.batch_size == 2 and back.top_p == InferenceConfig.top_p


def test_records_come_back_as_their_dataclasses_equal_to_the_originals():
    entry = ModelEntry(name="tiny", source="local", path="/m/tiny", gpus=2)
    resolved = ResolvedModel("tiny", "/m/tiny", None, "f" * 64, revision="abc")
    model = ModelRef("tiny[self]", to_payload(OmegaConf.structured(entry)), to_payload(resolved), "/a/adapter", "k")
    sampling = Sampling(temperature=1.0, n_samples=3, max_tokens=5)
    request = ChatRequest("obj|t:0", [{"role": "user", "content": "hi"}])
    data = pickle.loads(pickle.dumps(to_payload({"model": model, "sampling": sampling, "request": request})))
    assert data["model"]["adapter_dir"] == "/a/adapter" and data["model"]["entry"]["gpus"] == 2
    assert record_from_payload(ModelEntry, data["model"]["entry"]) == entry
    assert record_from_payload(ResolvedModel, data["model"]["resolved"]) == resolved
    assert record_from_payload(Sampling, data["sampling"]) == sampling
    assert record_from_payload(ChatRequest, data["request"]) == request
