"""Every key is content: each field of a model entry and of the inference and finetune configs either enters
the keys of exactly the artifacts it changes, or is listed here as deliberately left out, with the reason.

The keys are computed with the stage functions themselves (no model runs): the base model's fingerprint,
the object-level and hypothetical answers, the SFT rows, the adapter, and the finetuned model's answers.
A field added to one of the dataclasses without a decision here fails `test_every_field_has_a_decision`.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, fields, replace

import pytest
from omegaconf import OmegaConf

from introspection.core.config import FinetuneConfig, InferenceConfig, LoraSettings, ModelEntry, TaskSetConfig
from introspection.core.store import Store
from introspection.core.types import Answer
from introspection.finetune.distributed import accelerate_config_path
from introspection.stages.answers import AnswerJob, answer_key, sampling_for
from introspection.stages.finetune_settings import adapter_key, finetune_settings
from introspection.stages.items import build_items
from introspection.stages.model_ref import ModelRef
from introspection.stages.rows import prepare_rows
from introspection.weights.resolve import resolve_model

ANSWERS = {"answers/object", "answers/hypothetical", "answers/finetuned"}
TRAINED = {"adapter", "answers/finetuned"}  # everything downstream of the adapter
WEIGHTS = {"fingerprint", *ANSWERS, "adapter"}  # the base model itself: every model-bound key
NOTHING: set[str] = set()

# The tiny config every case starts from: a hub entry with an explicit template (resolved without a download).
BASE_ENTRY = ModelEntry(name="tiny", source="hub", path="org/tiny", dtype="float32", chat_template="chatml")
BASE_INFERENCE = InferenceConfig(name="tiny", backend="hf", batch_size=4, max_tokens=12, max_tokens_hypothetical=4)
BASE_FINETUNE = FinetuneConfig(name="tiny", batch_size=4, max_examples=6, object_anchor_ratio=0.5,
                               lora=LoraSettings(r=4, alpha=8))
TASKS = TaskSetConfig(name="keys", train_tasks=["colors_long"], test_tasks=["animals_long"],
                      properties={"colors_long": ["first_character", "starts_with_vowel"],
                                  "animals_long": ["first_character"]},
                      n_train_items=6, n_test_items=2, n_finetune_per_property=6)

SAME_COMPUTATION = "changes how the same computation is scheduled, split or stored, not what is computed"

# field -> (the change tried, the keys it must change, why). A change may set a second field where the first
# only acts together with it (path with source). "MODEL_DIR" is replaced by a tiny local model folder.
MODEL_FIELDS = {
    "name": ({"name": "renamed"}, NOTHING, "a label for tables (its learning_rate_by_model rate is keyed as the rate)"),
    "source": ({"source": "local", "path": "MODEL_DIR"}, WEIGHTS, "resolves to other weights: their fingerprint"),
    "path": ({"path": "org/other"}, WEIGHTS, "other weights: their fingerprint (folder content or hub id)"),
    "revision": ({"revision": "abc123"}, WEIGHTS, "hub revision: the commit it resolves to is in the hub fingerprint"),
    "dtype": ({"dtype": "bfloat16"}, ANSWERS, "inference precision (finetuning uses finetune.dtype)"),
    "tensor_parallel_size": ({"tensor_parallel_size": 2}, NOTHING,
                             f"splits each layer over GPUs: {SAME_COMPUTATION} (reduction order at most)"),
    "max_model_len": ({"max_model_len": 4096}, NOTHING,
                      "sizes the engine's context and KV cache; a prompt and its answer must fit either way "
                      "(checked at start), so no answer depends on it"),
    "chat_template": ({"chat_template": "gemma"}, WEIGHTS, "what the model sees, in inference and training"),
    "trust_remote_code": ({"trust_remote_code": True}, WEIGHTS, "the repository's modelling code instead of transformers'"),
    "gpus": ({"gpus": 2}, NOTHING, "a launch setting (the Slurm request); it enters the adapter key as ranks only "
                                   "under a multi-GPU finetune without an effective batch (test below)"),
    "params_b": ({"params_b": 70.0}, NOTHING, "read only by gradient_checkpointing=auto, keyed as its resolved value"),
    "multi_gpu": ({"multi_gpu": "fsdp"}, NOTHING, "read only by finetune.multi_gpu=auto, keyed as its resolved value"),
    "gpu_memory_gb": ({"gpu_memory_gb": 40.0}, NOTHING, "read only by the start's memory check (memory_fit.py)"),
    "base_url": ({"base_url": "http://127.0.0.1:9/v1"}, NOTHING,
                 "read only for source=server, whose fingerprint names it (tests/test_server_backend.py)"),
    "api_key_env": ({"api_key_env": "OTHER_KEY"}, NOTHING, "which variable holds a server's key: a key authenticates, "
                                                           "it changes no answer"),
    "weights": ({"weights": "org/other"}, NOTHING, "read only for source=server: the open weights its TRL adapters "
                                                  "train on, keyed by their own fingerprint (tests/test_server_finetune.py)"),
}

INFERENCE_FIELDS = {
    "name": ({"name": "renamed"}, NOTHING, "the config's label"),
    "backend": ({"backend": "vllm"}, ANSWERS, "another engine: other numerics"),
    "batch_size": ({"batch_size": 7}, NOTHING, f"requests per checkpointed batch: {SAME_COMPUTATION}"),
    "gpu_batch_size": ({"gpu_batch_size": 4096}, NOTHING, f"requests per batch on a GPU: {SAME_COMPUTATION}"),
    "temperature": ({"temperature": 0.7}, ANSWERS, "sampling"),
    "top_p": ({"top_p": 0.9}, ANSWERS, "sampling"),
    "max_tokens": ({"max_tokens": 20}, {"answers/object"}, "object-level answers' length"),
    "max_tokens_hypothetical": ({"max_tokens_hypothetical": 8}, {"answers/hypothetical", "answers/finetuned"},
                                "hypothetical answers' length"),
    "n_samples": ({"n_samples": 3}, ANSWERS, "samples per prompt (mode-of-n)"),
    "aggregation": ({"aggregation": "first"}, ANSWERS, "how samples become one answer"),
    "top_logprobs": ({"top_logprobs": 2}, NOTHING, "only calibration's first-token job asks for logprobs (its "
                     "Sampling, with this k, is in that job's key); no answer here asks for any"),
    "seed": ({"seed": 1}, ANSWERS, "sampling seed"),
    "gpu_memory_utilization": ({"gpu_memory_utilization": 0.5}, NOTHING, f"engine memory: {SAME_COMPUTATION}"),
    "cpu_kv_cache_gib": ({"cpu_kv_cache_gib": 2.0}, NOTHING, f"KV cache size on CPU: {SAME_COMPUTATION}"),
    "enforce_eager": ({"enforce_eager": True}, NOTHING, f"CUDA graphs replay the same kernels: {SAME_COMPUTATION}"),
    "lora_serving": ({"lora_serving": "merge"}, NOTHING,
                     "W+BA merged or applied beside W: the same function, rounded differently (auto picks by device)"),
    "server_concurrency": ({"server_concurrency": 2}, NOTHING, f"requests in flight to a server: {SAME_COMPUTATION}"),
    "server_timeout_s": ({"server_timeout_s": 5.0}, NOTHING, "how long a server's answer is waited for, not what it is"),
    "server_max_retries": ({"server_max_retries": 0}, NOTHING, "how often a failed request is sent again"),
}

FINETUNE_FIELDS = {
    "name": ({"name": "renamed"}, NOTHING, "the config's label"),
    "method": ({"method": "full"}, TRAINED, "what is trained"),
    "lora.r": ({"lora.r": 8}, TRAINED, "adapter shape"),
    "lora.alpha": ({"lora.alpha": 16}, TRAINED, "adapter scale"),
    "lora.dropout": ({"lora.dropout": 0.1}, TRAINED, "regularisation"),
    "lora.target_modules": ({"lora.target_modules": ["q_proj"]}, TRAINED, "which layers are adapted"),
    "epochs": ({"epochs": 2.0}, TRAINED, "optimisation"),
    "learning_rate": ({"learning_rate": 1e-3}, TRAINED, "optimisation"),
    "learning_rate_by_model": ({"learning_rate_by_model": {"tiny": 1e-3}}, TRAINED,
                               "keyed as the rate it resolves to for this model (another model's entry: nothing)"),
    "batch_size": ({"batch_size": 2}, TRAINED, "rows per optimizer step"),
    "effective_batch_size": ({"effective_batch_size": 8, "batch_size": None}, TRAINED,
                             "rows per optimizer step (keyed only when set: older keys stay)"),
    "gradient_accumulation_steps": ({"gradient_accumulation_steps": 2}, TRAINED, "rows per optimizer step"),
    "max_length": ({"max_length": 256}, TRAINED, "truncation of training rows"),
    "warmup_ratio": ({"warmup_ratio": 0.1}, TRAINED, "learning-rate schedule"),
    "lr_scheduler": ({"lr_scheduler": "linear"}, TRAINED, "learning-rate schedule"),
    "seed": ({"seed": 43}, {"sft_rows", *TRAINED}, "which rows and their order; LoRA init and data order"),
    "max_examples": ({"max_examples": 4}, {"sft_rows", *TRAINED}, "how many rows"),
    "object_anchor_ratio": ({"object_anchor_ratio": 0.0}, {"sft_rows", *TRAINED}, "rows of the model's own answers"),
    "dtype": ({"dtype": "float32"}, TRAINED, "training precision"),
    "gradient_checkpointing": ({"gradient_checkpointing": True}, TRAINED,
                               "recomputes the same activations, but was always keyed: dropping it would change "
                               "every stored adapter key"),
    "multi_gpu": ({"multi_gpu": "ddp"}, TRAINED, "its accelerate config sets mixed precision and sharding"),
    "accelerate_config": ({"accelerate_config": "/nowhere/accelerate.yaml"}, NOTHING,
                          "read only under a multi-GPU strategy, where its content is keyed (test below)"),
    "checkpoint_every_steps": ({"checkpoint_every_steps": 7}, NOTHING,
                               "a resumed finetune trains the same adapter (tests/test_resume.py)"),
    # How a SERVER model finetunes: no TRL adapter reads them; a server model's job is keyed by them
    # (finetune/openai_finetune.py job_key, tests/test_openai_finetune.py)
    "api": ({"api": "openai"}, NOTHING, "which service trains a server model; an open model trains with TRL"),
    "openai.n_epochs": ({"openai.n_epochs": 2}, NOTHING, "an OpenAI job's setting (keyed in its job key)"),
    "openai.batch_size": ({"openai.batch_size": 16}, NOTHING, "an OpenAI job's setting (keyed in its job key)"),
    "openai.learning_rate_multiplier": ({"openai.learning_rate_multiplier": 2.0}, NOTHING,
                                        "an OpenAI job's setting (keyed in its job key)"),
    "openai.suffix": ({"openai.suffix": "mine"}, NOTHING, "a label in the finetuned model's id"),
    "openai.poll_interval_s": ({"openai.poll_interval_s": 1.0}, NOTHING, "how often the job is looked at"),
    "openai.timeout_h": ({"openai.timeout_h": 1.0}, NOTHING, "how long the job is waited for, not what it trains"),
}


def dataclass_fields(cls, prefix: str = "") -> set[str]:
    """Every field of a config dataclass; a nested dataclass (LoraSettings) by its own fields."""
    names = set()
    for f in fields(cls):
        default = getattr(cls(), f.name) if f.name != "name" else None
        if hasattr(default, "__dataclass_fields__"):
            names |= dataclass_fields(type(default), f"{prefix}{f.name}.")
        else:
            names.add(prefix + f.name)
    return names


def test_every_field_has_a_decision():
    assert dataclass_fields(ModelEntry) == set(MODEL_FIELDS)
    assert dataclass_fields(InferenceConfig) == set(INFERENCE_FIELDS)
    assert dataclass_fields(FinetuneConfig) == set(FINETUNE_FIELDS)


def changed(obj, change: dict, model_dir):
    """The dataclass with the change applied ("lora.r" reaches into the nested LoraSettings)."""
    flat = {k: (str(model_dir) if v == "MODEL_DIR" else v) for k, v in change.items() if "." not in k}
    for group in ("lora", "openai"):
        nested = {k.split(".", 1)[1]: v for k, v in change.items() if k.startswith(f"{group}.")}
        if nested:
            flat[group] = replace(getattr(obj, group), **nested)
    return replace(obj, **flat)


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    """A store and the plan and answers every key is computed from (generated items, fixed answers)."""
    store = Store(tmp_path_factory.mktemp("keys") / "store")
    tasks = OmegaConf.structured(TASKS)
    plan = build_items(tasks, store)
    words = ["Blue", "orange", "green", "indigo", "red", "amber"]
    answers = {f"obj|{it.item_id}": Answer(f"obj|{it.item_id}", f"{words[i % len(words)]} {i}")
               for i, it in enumerate(plan.train_items)}
    return store, plan, tasks, answers


def all_keys(setting, entry: ModelEntry, inference: InferenceConfig, finetune: FinetuneConfig) -> dict[str, str]:
    store, plan, tasks, answers = setting
    inference_cfg, finetune_cfg = OmegaConf.structured(inference), OmegaConf.structured(finetune)
    base = ModelRef(entry.name, asdict(entry), asdict(resolve_model(entry, store.root)))
    object_job = AnswerJob("object/train", plan.object_requests(plan.train_items), sampling_for(inference_cfg, False))
    hypothetical_job = AnswerJob("hypothetical/test", plan.hypothetical_requests(plan.test_items),
                                 sampling_for(inference_cfg, True))
    _, rows_key = prepare_rows(store, plan, base, base, answers, tasks, finetune_cfg, predictor_answers=answers)
    adapter = adapter_key(base, rows_key, finetune_settings(finetune_cfg, asdict(entry)))
    finetuned = base.with_adapter("tiny[self]", store.root / "adapter", adapter)
    return {"fingerprint": base.fingerprint, "answers/object": answer_key(base, object_job, inference_cfg),
            "answers/hypothetical": answer_key(base, hypothetical_job, inference_cfg), "sft_rows": rows_key,
            "adapter": adapter, "answers/finetuned": answer_key(finetuned, hypothetical_job, inference_cfg)}


def keys_that_changed(before: dict, after: dict) -> set[str]:
    return {name for name in before if before[name] != after[name]}


@pytest.fixture(scope="module")
def base_keys(setting):
    return all_keys(setting, BASE_ENTRY, BASE_INFERENCE, BASE_FINETUNE)


@pytest.fixture(scope="module", autouse=True)
def cached_hub_commits(tmp_path_factory):
    # A hub model is keyed by the commit its revision resolves to: offline, through the local Hugging Face
    # cache. A cache under tmp holds the commits of the hub entries used here (no network, no user cache).
    # Module scope, so it is in force before the module-scoped key fixtures are computed.
    from huggingface_hub import constants

    hub = tmp_path_factory.mktemp("hf") / "hub"
    for repo, ref, commit in (("org/tiny", "main", "1" * 40), ("org/tiny", "abc123", "2" * 40),
                              ("org/other", "main", "3" * 40)):
        repo_dir = hub / f"models--{repo.replace('/', '--')}"
        (repo_dir / "snapshots" / commit).mkdir(parents=True)
        (repo_dir / "snapshots" / commit / "config.json").write_text("{}")
        (repo_dir / "refs").mkdir(exist_ok=True)
        (repo_dir / "refs" / ref).write_text(commit)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setattr(constants, "HF_HUB_CACHE", str(hub))
        yield


@pytest.mark.parametrize("field_name", list(MODEL_FIELDS))
def test_a_model_entry_field_changes_exactly_its_keys(setting, base_keys, tiny_model_dir, field_name):
    change, expected, _why = MODEL_FIELDS[field_name]
    entry = changed(BASE_ENTRY, change, tiny_model_dir)
    assert keys_that_changed(base_keys, all_keys(setting, entry, BASE_INFERENCE, BASE_FINETUNE)) == expected


@pytest.mark.parametrize("field_name", list(INFERENCE_FIELDS))
def test_an_inference_field_changes_exactly_its_keys(setting, base_keys, field_name):
    change, expected, _why = INFERENCE_FIELDS[field_name]
    inference = changed(BASE_INFERENCE, change, None)
    assert keys_that_changed(base_keys, all_keys(setting, BASE_ENTRY, inference, BASE_FINETUNE)) == expected


@pytest.mark.parametrize("field_name", list(FINETUNE_FIELDS))
def test_a_finetune_field_changes_exactly_its_keys(setting, base_keys, field_name):
    change, expected, _why = FINETUNE_FIELDS[field_name]
    finetune = changed(BASE_FINETUNE, change, None)
    assert keys_that_changed(base_keys, all_keys(setting, BASE_ENTRY, BASE_INFERENCE, finetune)) == expected


def test_settings_that_act_together_enter_the_adapter_key(setting, tmp_path):
    """The entry's strategy and size under finetune.multi_gpu=auto, its GPUs as ranks without an effective
    batch, the accelerate config's content (not its path), and a per-model rate for another model."""
    def adapter(entry=BASE_ENTRY, **finetune):
        return all_keys(setting, entry, BASE_INFERENCE, replace(BASE_FINETUNE, **finetune))["adapter"]

    assert adapter(multi_gpu="auto") == adapter()  # the entry says none
    assert adapter(replace(BASE_ENTRY, multi_gpu="fsdp", gpus=2), multi_gpu="auto") == adapter(
        replace(BASE_ENTRY, gpus=2), multi_gpu="fsdp")
    assert adapter(replace(BASE_ENTRY, multi_gpu="fsdp", gpus=2), multi_gpu="auto") != adapter()
    assert adapter(replace(BASE_ENTRY, gpus=2), multi_gpu="ddp") != adapter(multi_gpu="ddp")  # 2x the rows per step
    # With an effective batch the ranks set the per-device batch, which is keyed already.
    assert adapter(replace(BASE_ENTRY, gpus=2), multi_gpu="ddp", batch_size=None, effective_batch_size=8) != adapter(
        multi_gpu="ddp", batch_size=None, effective_batch_size=8)
    large = replace(BASE_ENTRY, params_b=70.0)  # gradient_checkpointing=auto: on from 7B parameters
    assert adapter(large, gradient_checkpointing="auto") == adapter(gradient_checkpointing=True)
    assert adapter(gradient_checkpointing="auto") == adapter(gradient_checkpointing=False)
    default = accelerate_config_path({"multi_gpu": "ddp"})
    copy, edited = tmp_path / "copy.yaml", tmp_path / "edited.yaml"
    shutil.copy(default, copy)
    edited.write_text(default.read_text().replace("mixed_precision: bf16", "mixed_precision: 'no'"))
    assert edited.read_text() != default.read_text()
    assert adapter(multi_gpu="ddp", accelerate_config=str(copy)) == adapter(multi_gpu="ddp")
    assert adapter(multi_gpu="ddp", accelerate_config=str(edited)) != adapter(multi_gpu="ddp")
    assert adapter(learning_rate_by_model={"another_model": 1e-3}) == adapter()


def test_a_template_that_is_the_folders_own_is_keyed_by_the_folder(setting, tiny_model_dir, tmp_path):
    """The demo's Gemma names the template its converted folder already holds: its keys stay as before.
    The same text given for a folder whose own template differs is keyed."""
    from introspection.stages.model_ref import _own_template
    from introspection.weights.chat_templates import NAMED_TEMPLATES

    store = setting[0]
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    own = _own_template(str(folder))
    assert own and own != NAMED_TEMPLATES["gemma"]
    local = ModelEntry(name="tiny", source="local", path=str(folder), dtype="float32")
    plain = ModelRef("tiny", asdict(local), asdict(resolve_model(local, store.root)))
    assert ModelRef("tiny", plain.entry, {**plain.resolved, "chat_template": own}).fingerprint == plain.fingerprint
    other = {**plain.resolved, "chat_template": NAMED_TEMPLATES["gemma"]}
    assert ModelRef("tiny", plain.entry, other).fingerprint != plain.fingerprint


@pytest.mark.parametrize("native_bf16", [True, False])
def test_dtype_auto_is_keyed_as_the_dtype_this_machine_computes_in(setting, base_keys, monkeypatch, native_bf16):
    """`dtype: auto` on a CPU means bfloat16 for vLLM where the CPU has the instructions, else float32: its
    answers share their keys with the explicit dtype they are computed in, never with the other one."""
    from introspection.core import devices

    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda *args: native_bf16)
    monkeypatch.setattr(devices, "visible_devices", lambda: [])  # a CPU machine
    vllm = replace(BASE_INFERENCE, backend="vllm")
    keys = {dtype: all_keys(setting, replace(BASE_ENTRY, dtype=dtype), vllm, BASE_FINETUNE)
            for dtype in ("auto", "float32", "bfloat16")}
    computed_in = "bfloat16" if native_bf16 else "float32"
    other = "float32" if native_bf16 else "bfloat16"
    assert keys["auto"] == keys[computed_in]
    assert keys_that_changed(keys["auto"], keys[other]) == ANSWERS
    # transformers on a CPU computes `auto` in float32 whatever the CPU has
    hf_auto = all_keys(setting, replace(BASE_ENTRY, dtype="auto"), BASE_INFERENCE, BASE_FINETUNE)
    assert hf_auto == base_keys
