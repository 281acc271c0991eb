"""Finetuning a served model with TRL (introspection/inference/server_lora.py, server_checks.py, stages.finetune_model):
the adapter is trained here on the weights the entry names and loaded into the running server, which answers
with it.

Unit tests use the fake endpoint of tests/helpers/served.py (its load_lora_adapter route answers as vLLM's does)
for the start checks and the loading of adapters. The integration test starts a real `vllm serve --enable-lora`
of tiny_a and runs the whole tiny experiment with M1 served, in a copy of tiny_run's store: its matrix must equal
tiny_run's, every adapter reused (the same weights, rows and settings: one key) and only the served answers asked.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from introspection.cli import rewrite_model_sides
from introspection.core.config import FinetuneConfig, InferenceConfig, ModelEntry
from introspection.core.errors import ModelResolveError
from introspection.core.store import Store
from introspection.core.types import ChatRequest, Sampling
from introspection.experiments import parse_options, registry
from introspection.inference import make_backend
from introspection.inference.server_checks import check_finetune_route, check_server_entry, check_server_service
from introspection.inference.server_client import ServerClient, ServerError
from introspection.inference.server_lora import adapter_name, served_weights_entry
from introspection.stages.adapters import served_weights
from introspection.stages.finetune_settings import adapter_key, finetune_settings
from introspection.stages.model_ref import ModelRef
from introspection.weights.resolve import resolve_model
from tests.helpers import TINY_SIZES, compose_cfg, run_main, tiny_side
from tests.helpers.checks import assert_one_line
from tests.helpers.served import HAS_VLLM, FakeEndpoint, vllm_serve


@pytest.fixture
def endpoint():
    server = FakeEndpoint()
    yield server
    server.close()


def served_cfg(base_url: str, *extra: str, weights: str | None = "smollm2_135m_instruct"):
    return compose_cfg(rewrite_model_sides(["model.m1=vllm_serve_example", f"model.m1.base_url={base_url}",
                                            "model.m1.path=tiny-server", f"model.m1.weights={weights or 'null'}",
                                            *extra]))


def raised(fn, *args) -> str:
    with pytest.raises(ValueError) as info:
        fn(*args)
    return str(info.value)


def fake_adapter(folder: Path, rank: int = 4) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": rank, "peft_type": "LORA"}))
    (folder / "adapter_model.safetensors").write_bytes(str(folder).encode())  # one content per folder
    return folder


# --- the weights a server entry names --------------------------------------------------------------------------
def test_the_weights_resolve_like_an_open_model(tmp_path):
    served = ModelEntry(name="s", source="server", path="id", base_url="http://x/v1", revision="abc", params_b=7.0)
    kinds = {w: served_weights_entry(ModelEntry(**{**asdict(served), "weights": w})) for w in
             ("gemma3_270m", str(tmp_path), "./relative/folder", "org/model")}
    assert [(e.source, e.path) for e in kinds.values()] == [("embedded", "gemma3_270m"), ("local", str(tmp_path)),
                                                            ("local", "./relative/folder"), ("hub", "org/model")]
    assert kinds["org/model"].revision == "abc" and kinds["gemma3_270m"].revision is None  # the pin is the hub's
    assert {(e.name, e.params_b, e.chat_template) for e in kinds.values()} == {("s", 7.0, None)}
    with pytest.raises(ModelResolveError, match=r"names no model.m1.weights"):
        served_weights_entry(served, "model.m1")


def test_the_served_weights_train_under_the_open_models_adapter_key(tiny_model_dir, tmp_path):
    store = Store(tmp_path / "store")
    local = ModelEntry(name="tiny_a", source="local", path=str(tiny_model_dir), dtype="float32")
    served = ModelEntry(name="tiny_a_served", source="server", path="tiny_a", base_url="http://127.0.0.1:1/v1",
                        weights=str(tiny_model_dir))
    in_process = ModelRef("tiny_a", asdict(local), asdict(resolve_model(local, store.root)))
    server = ModelRef("tiny_a_served", asdict(served), asdict(resolve_model(served, store.root)))
    weights = served_weights(store, server)
    assert weights.resolved["path"] == str(tiny_model_dir.resolve()) and weights.label == "tiny_a_served"
    settings = finetune_settings(OmegaConf.structured(FinetuneConfig(name="t", batch_size=4)), weights.entry)
    assert adapter_key(weights, "rows", settings) == adapter_key(in_process, "rows", settings)
    assert server.fingerprint != in_process.fingerprint  # its answers stay keyed by the endpoint and model id


# --- the start checks --------------------------------------------------------------------------------------------
def test_a_served_model_finetuned_with_trl_needs_its_weights():
    message = raised(check_finetune_route, served_cfg("http://127.0.0.1:1/v1", weights=None), "m1")
    assert_one_line(message, "model.m1 (vllm_serve_example) is a server model", "finetunes it with TRL",
                    "model.m1.weights is not set", "finetune=openai", "experiment=untrained_self")
    assert check_finetune_route(served_cfg("http://127.0.0.1:1/v1"), "m1") == "lora"
    assert check_finetune_route(served_cfg("http://127.0.0.1:1/v1", "finetune=openai"), "m1") == "openai"
    # an experiment that does not finetune the slot (its own Experiment.finetunes) needs no weights
    untrained = served_cfg("http://127.0.0.1:1/v1", "experiment=untrained_self", weights=None)
    experiment = registry()["untrained_self"]
    finetuned = "m1" in experiment.finetunes(parse_options(experiment, untrained.experiment.options))
    assert check_finetune_route(untrained, "m1", finetuned) is None


def test_a_full_finetune_or_a_further_training_of_a_served_model_is_refused():
    message = raised(check_finetune_route, served_cfg("http://127.0.0.1:1/v1", "finetune.method=full"), "m1")
    assert_one_line(message, "finetune.method=full cannot finetune model.m1", "only LoRA adapters",
                    "finetune.method=lora or qlora")
    shift = served_cfg("http://127.0.0.1:1/v1", "experiment=behavior_shift", "experiment.options.target=m1",
                       "experiment.options.source=m2")
    experiment = registry()["behavior_shift"]  # its own start check refuses a served target it trains further
    options = parse_options(experiment, shift.experiment.options)
    assert_one_line(raised(experiment.check, shift, options), "experiment=behavior_shift trains model.m1",
                    "experiment.options.target=m2")
    experiment.check(served_cfg("http://127.0.0.1:1/v1", "experiment=behavior_shift", "finetune=openai",
                                "experiment.options.target=m1", "experiment.options.source=m2"), options)


@pytest.mark.parametrize("lora, advice", [("absent", "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True"),
                                          ("disabled", "LoRA is not enabled")])
def test_a_server_that_takes_no_adapters_fails_at_start_saying_how_to_start_it(endpoint, lora, advice):
    endpoint.lora = lora
    message = raised(check_server_service, served_cfg(endpoint.base_url, "model.m1.api_key_env=null",
                                                      "finetune.lora.r=12"), "m1")
    assert_one_line(message, f"model.m1.base_url={endpoint.base_url}", advice, "--enable-lora --max-lora-rank 16")
    endpoint.lora = "enabled"
    check_server_service(served_cfg(endpoint.base_url, "model.m1.api_key_env=null"), "m1")
    assert [load["lora_path"] for load in endpoint.loads] == ["/nonexistent/introspection-start-probe"] * 2


def test_weights_given_as_a_missing_folder_fail_at_every_start(tmp_path):
    message = raised(check_server_entry, served_cfg("http://127.0.0.1:1/v1", weights=str(tmp_path / "nowhere")), "m1")
    assert_one_line(message, f"model.m1.weights='{tmp_path / 'nowhere'}'", "is not a folder here", "hub id")
    check_server_entry(served_cfg("http://127.0.0.1:1/v1", weights=str(tmp_path)), "m1")


# --- adapters loaded into the server -----------------------------------------------------------------------------
def test_an_adapter_is_loaded_once_and_named_in_the_requests(endpoint, tmp_path):
    endpoint.lora = "enabled"
    entry = ModelEntry(name="served", source="server", path="tiny-server", base_url=endpoint.base_url,
                       weights=str(tmp_path))
    adapter = fake_adapter(tmp_path / "a" / "adapter")
    resolved = resolve_model(entry, tmp_path)
    cfg = InferenceConfig(name="test", backend="hf")
    request = [ChatRequest("r0", [{"role": "user", "content": "ab"}])]
    for _ in range(2):  # the second backend finds it listed: not loaded again
        backend = make_backend("hf", resolved, cfg, entry, adapter_path=str(adapter))
        assert backend.chat(request, Sampling(max_tokens=4))[0].text == "ba"
        backend.close()
    name = adapter_name("tiny-server", str(adapter))
    assert name.startswith("tiny-server+lora-") and endpoint.loads == [{"lora_name": name, "lora_path": str(adapter)}]
    assert [r["model"] for r in endpoint.requests] == [name, name]
    other = fake_adapter(tmp_path / "b" / "adapter")  # other weights: another name
    assert adapter_name("tiny-server", str(other)) != name


def test_a_refused_load_says_what_to_do(endpoint, tmp_path):
    entry = ModelEntry(name="served", source="server", path="tiny-server", base_url=endpoint.base_url)
    adapter = fake_adapter(tmp_path / "adapter", rank=4)
    resolved, cfg = resolve_model(entry, tmp_path), InferenceConfig(name="test", backend="hf")
    assert_one_line(raised(make_backend, "hf", resolved, cfg, entry, str(adapter)), "no weights named")
    weighted = ModelEntry(**{**asdict(entry), "weights": str(tmp_path)})
    endpoint.lora = "disabled"
    with pytest.raises(ServerError) as info:
        make_backend("hf", resolved, cfg, weighted, adapter_path=str(adapter))
    assert_one_line(str(info.value), "LoRA is not enabled", "--enable-lora --max-lora-rank 8")


# --- the whole experiment with one side served by a real `vllm serve` ------------------------------------------
@pytest.mark.integration
@pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed")
def test_a_mixed_pair_with_a_served_side_gives_the_in_process_matrix(tiny_pair, tiny_run, warm_store, tmp_path):
    tiny_a, tiny_b = tiny_pair
    with vllm_serve(tiny_a, "tiny_a", tmp_path, "--enable-lora", "--max-lora-rank", "8",
                    env={"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}) as base_url:
        run_main([f"hydra.run.dir={tmp_path / 'run'}", *TINY_SIZES, f"store_dir={warm_store}",
                  "model.m1=vllm_serve_example", "model.m1.name=tiny_a_served", "model.m1.path=tiny_a",
                  f"model.m1.base_url={base_url}", f"model.m1.weights={tiny_a}", "model.m1.max_model_len=512",
                  "model.m1.dtype=float32", *tiny_side("m2", tiny_b, "tiny_b")])
        client = ServerClient(base_url, None, timeout_s=5, max_retries=0)
        listed = {m["id"] for m in client.get("models")["data"]}
        client.close()
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    as_in_process = json.loads(json.dumps(results["matrix"]).replace('"tiny_a_served', '"tiny_a'))
    assert as_in_process == tiny_run.results["matrix"]
    computed = results["store"]["computed"]
    assert computed and all(c.startswith("answers/") for c in computed)  # every adapter reused, tiny_b's answers too
    assert len([i for i in listed if i.startswith("tiny_a+lora-")]) == 2  # tiny_a[self] and tiny_a[cross:tiny_b]
