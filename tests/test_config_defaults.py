"""Defaults that fit the scale: the demo keeps its finetune, every other pair gets the paper's LoRA, and
each model's `auto` settings follow from its catalogue entry (GPUs, parameters, finetune strategy)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import introspection.core.config  # noqa: F401  (registers the schemas)
from introspection.cli import rewrite_model_sides
from introspection.stages.finetune_settings import adapter_key, finetune_settings
from introspection.stages.model_ref import ModelRef

CONF = Path(__file__).resolve().parents[1] / "conf"
LLM_DIR = CONF / "model" / "llm"


def compose_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=rewrite_model_sides(list(overrides)))


def settings(cfg, slot: str) -> dict:
    return finetune_settings(cfg.finetune, cfg.model[slot])


def test_the_demo_keeps_its_own_finetune():
    cfg = compose_cfg()
    ft = cfg.finetune
    assert cfg.model.name == "demo" and ft.name == "demo"
    # smollm2_135m_served: the same weights behind a vllm serve train at the same rate (the same adapters)
    assert dict(ft.learning_rate_by_model) == {"smollm2_135m": 5e-4, "gemma3_270m": 2e-3, "smollm2_135m_served": 5e-4}
    assert ft.object_anchor_ratio == 0.5 and ft.max_examples == 128
    assert ft.batch_size == 8 and ft.effective_batch_size is None and ft.gradient_checkpointing is False
    for slot, rate in (("m1", 5e-4), ("m2", 2e-3)):
        got = settings(cfg, slot)
        assert got["learning_rate"] == rate and got["batch_size"] == 8 and got["multi_gpu"] == "none"
        assert got["gradient_checkpointing"] is False


@pytest.mark.parametrize("overrides", [["finetune=full"], ["finetune=lora"]])
def test_a_command_line_finetune_wins_over_the_demo_pairs_choice(overrides):
    assert compose_cfg(*overrides).finetune.name == overrides[0].split("=")[1]


def test_swapping_one_side_of_the_demo_keeps_the_demo_finetune():
    cfg = compose_cfg("model.m1=llama3_1_8b")
    assert (cfg.model.m1.name, cfg.model.m2.name, cfg.finetune.name) == ("llama3_1_8b", "gemma3_270m", "demo")
    assert settings(cfg, "m1")["gradient_checkpointing"] is False  # the demo's explicit false, not auto


@pytest.mark.parametrize("pair", ["llama3_70b", "qwen2_5_72b", "llama3_8b", "qwen2_5_7b", "gemma", "mistral"])
def test_every_other_pair_defaults_to_the_papers_lora(pair):
    ft = compose_cfg(f"model={pair}", "tasks=all").finetune
    assert ft.name == "lora" and ft.method == "lora" and ft.lora.r == 32 and ft.epochs == 1
    assert ft.effective_batch_size == 16
    assert dict(ft.learning_rate_by_model) == {} and ft.object_anchor_ratio == 0 and ft.max_examples is None


def test_the_70b_pair_trains_under_fsdp_with_an_effective_batch_of_16():
    cfg = compose_cfg("model=llama3_70b", "tasks=all")
    for slot in ("m1", "m2"):
        got = settings(cfg, slot)
        assert got["multi_gpu"] == "fsdp" and cfg.model[slot].gpus == 4
        assert got["batch_size"] * cfg.model[slot].gpus * got["gradient_accumulation_steps"] == 16
        assert got["batch_size"] == 4 and got["gradient_checkpointing"] is True
        assert got["learning_rate"] == cfg.finetune.learning_rate


def test_one_gpu_pairs_train_16_per_device_with_checkpointing_from_7b():
    cfg = compose_cfg("model=llama3_8b")
    for slot in ("m1", "m2"):
        got = settings(cfg, slot)
        assert (got["multi_gpu"], got["batch_size"], got["gradient_checkpointing"]) == ("none", 16, True)
    small = compose_cfg("finetune=lora")  # the demo's 135M/270M models under the LoRA settings
    assert [settings(small, s)["gradient_checkpointing"] for s in ("m1", "m2")] == [False, False]
    assert compose_cfg("model=llama3_8b", "finetune=qlora").finetune.multi_gpu == "none"
    qlora = settings(compose_cfg("model=llama3_70b", "finetune=qlora"), "m1")
    assert (qlora["multi_gpu"], qlora["batch_size"], qlora["gradient_accumulation_steps"]) == ("none", 4, 4)


def test_every_catalogue_entry_states_what_it_needs():
    from introspection.finetune.distributed import STRATEGIES

    entries = {p.stem: OmegaConf.load(p) for p in sorted(LLM_DIR.glob("*.yaml"))}
    assert entries
    for name, entry in entries.items():
        if entry.source == "server":  # answered over HTTP (docs/api_models.md): an endpoint, not GPUs
            assert entry.base_url.startswith(("http://", "https://")) and "api_key_env" in entry, name
            continue
        for key in ("gpus", "tensor_parallel_size", "params_b", "multi_gpu"):
            assert key in entry, f"{name} lacks {key}"
        assert entry.params_b > 0 and entry.multi_gpu in STRATEGIES and entry.gpus % entry.tensor_parallel_size == 0
        assert (entry.multi_gpu == "none") == (entry.gpus == 1), name  # several GPUs: a strategy that uses them


def test_the_finetune_settings_fail_in_one_line_when_they_cannot_be_resolved():
    cfg = compose_cfg("model=llama3_70b", "finetune.effective_batch_size=18")
    with pytest.raises(ValueError, match=r"effective_batch_size=18 is not divisible by 4 rank\(s\).*multiple of 4"):
        settings(cfg, "m1")
    both = compose_cfg("model=llama3_8b", "finetune.batch_size=8")
    with pytest.raises(ValueError, match="finetune.batch_size=8 .* and finetune.effective_batch_size=16 .* both set and disagree"):
        settings(both, "m1")
    neither = compose_cfg("model=llama3_8b", "finetune.effective_batch_size=null")
    with pytest.raises(ValueError, match="both null"):
        settings(neither, "m1")
    odd = compose_cfg("model=llama3_8b", "finetune.gradient_checkpointing=sometimes")
    with pytest.raises(ValueError, match="gradient_checkpointing='sometimes' is not valid; valid: true, false, auto"):
        settings(odd, "m1")
    # Resolving twice gives the same settings (a batch_size equal to the derived one is accepted).
    resolved = settings(compose_cfg("model=llama3_70b"), "m1")
    assert finetune_settings(resolved, compose_cfg("model=llama3_70b").model.m1) == resolved
    # Per device as given, once the effective batch is switched off.
    given = compose_cfg("model=llama3_8b", "finetune.effective_batch_size=null", "finetune.batch_size=2")
    assert settings(given, "m1")["batch_size"] == 2


def test_a_strategy_given_on_the_command_line_replaces_the_entrys():
    cfg = compose_cfg("model=llama3_70b", "finetune.multi_gpu=ddp", "finetune.gradient_checkpointing=false")
    got = settings(cfg, "m2")
    assert (got["multi_gpu"], got["gradient_checkpointing"], got["batch_size"]) == ("ddp", False, 4)


# Keys the code computed before the defaults moved (and before `seed` was used), for a fixed base and rows:
# new settings must not leak into the demo's adapter keys, or every stored demo adapter would retrain.
DEMO_ADAPTER_KEYS = {
    (): {"m1": "a4c8dbd5288f818b954d8d901a0858857b6b068311efbb1fc35656e4ede9730c",
         "m2": "792f5fda830598bdb788324d9c0c03af10c4e75c86553546420b25cc48d04251"},
    ("finetune.batch_size=4", "finetune.lora.r=4"): {
        "m1": "bf3f47010b66721823e03650211bcddc7ee01f471a932e7f8d3fd42dcd340ab1",
        "m2": "d6416641b5ca5710ef7049789c83a55132296a9a7d635a07cb4c67fc2054ef73"},
}


@pytest.mark.parametrize("overrides", list(DEMO_ADAPTER_KEYS))
def test_the_demos_adapter_keys_are_the_ones_computed_before(overrides):
    cfg = compose_cfg(*overrides)
    for slot, expected in DEMO_ADAPTER_KEYS[overrides].items():
        entry = OmegaConf.to_container(cfg.model[slot], resolve=True)
        base = ModelRef(entry["name"], entry, {"fingerprint": "base-weights"})
        assert adapter_key(base, "rows-key", finetune_settings(cfg.finetune, entry)) == expected


def test_an_effective_batch_enters_the_adapter_key():
    cfg = compose_cfg("model=llama3_8b")
    entry = OmegaConf.to_container(cfg.model.m1, resolve=True)
    base = ModelRef(entry["name"], entry, {"fingerprint": "base-weights"})
    lora = finetune_settings(cfg.finetune, entry)
    assert adapter_key(base, "r", lora) != adapter_key(base, "r", {**lora, "effective_batch_size": 32})


# --- requests per checkpointed batch -----------------------------------------------------------------
@pytest.mark.parametrize("inference, cpu, gpu", [("vllm", 128, 4096), ("hf", 32, 32)])
def test_checkpointed_batches_are_thousands_on_a_gpu_and_unchanged_on_a_cpu(inference, cpu, gpu):
    from introspection.stages.worker import checkpoint_batch_size

    cfg = compose_cfg(f"inference={inference}").inference
    assert checkpoint_batch_size(cfg, on_gpu=False) == cpu and checkpoint_batch_size(cfg, on_gpu=True) == gpu
    unset = compose_cfg(f"inference={inference}", "inference.gpu_batch_size=null", "inference.batch_size=7").inference
    assert checkpoint_batch_size(unset, on_gpu=True) == checkpoint_batch_size(unset, on_gpu=False) == 7


@pytest.mark.parametrize("on_gpu, batches", [(False, 3), (True, 1)])
def test_the_answer_worker_checkpoints_in_the_batches_of_its_device(tiny_model_dir, tmp_path, monkeypatch, on_gpu,
                                                                    batches):
    """Seven requests: three batch files of at most 3 on a CPU, one of 7 where a GPU is seen (the device
    check is replaced; the tiny model itself runs on the CPU either way)."""
    from dataclasses import asdict

    from introspection.core.config import ModelEntry
    from introspection.core.store import Store
    from introspection.core.types import ChatRequest, Sampling
    from introspection.stages import worker
    from introspection.stages.answers import AnswerJob, answer_key
    from introspection.weights.resolve import resolve_model

    monkeypatch.setattr(worker, "_cuda_available", lambda: on_gpu)
    store = Store(tmp_path / "store")
    entry = ModelEntry(name="tiny", source="local", path=str(tiny_model_dir), dtype="float32")
    model = ModelRef("tiny", asdict(entry), asdict(resolve_model(entry, store.root)))
    requests = [ChatRequest(f"r{i}", [{"role": "user", "content": f"say {i}"}]) for i in range(7)]
    inference = {"name": "hf", "backend": "hf", "batch_size": 3, "gpu_batch_size": 8, "max_tokens": 2, "top_logprobs": 0}
    job = AnswerJob("object/train", requests, Sampling(max_tokens=2, top_logprobs=0))
    job.key = answer_key(model, job, OmegaConf.create({"aggregation": "mode", "backend": "hf"}))
    worker.answer_worker({"store_root": str(store.root), "model": asdict(model), "inference": inference,
                          "jobs": [{"name": job.name, "key": job.key, "sampling": asdict(job.sampling),
                                    "requests": [asdict(r) for r in requests]}]})
    info = store.info("answers", job.key)
    assert (info["batches"], info["batch_size"], info["n"]) == (batches, 3 if not on_gpu else 8, 7)


def test_every_plan_rate_row_is_valid_and_the_paper_preset_is_the_default_name():
    """Each machine kind and size class of conf/preflight/default.yaml prices work (rates_for validates the row),
    every task of tasks=all has an expected answer length, and `tasks=all` is the paper's sizes."""
    from introspection.preflight.rates import AnswerLengths, rates_for

    cfg = compose_cfg("model=llama3_70b", "tasks=all")
    pf = cfg.preflight
    bounds = dict(pf.size_classes)
    for gpu, classes in pf.throughput.items():
        for size in classes:
            got_size, rates = rates_for(bounds[size], OmegaConf.merge(pf, {"gpu": gpu}))
            assert got_size == size and rates["engine_start_s"] > 0, (gpu, size)
    lengths = AnswerLengths(pf.answer_tokens)
    for task in list(cfg.tasks.train_tasks) + list(cfg.tasks.test_tasks):
        assert task in pf.answer_tokens, task  # no task of the paper falls back to the generic length
        assert 1 <= lengths.answer(task, hypothetical=False) <= 64
    assert (cfg.tasks.n_finetune_per_property, compose_cfg("tasks=all_small").tasks.n_finetune_per_property) == (1000, 100)
