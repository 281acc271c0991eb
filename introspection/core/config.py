"""Structured configs: one dataclass per config group, registered in Hydra's ConfigStore.

Every YAML under conf/ names its schema in its defaults list, so a misspelt key or a value of the
wrong type fails when the config is composed, before any model is loaded.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from introspection.core.hydra_job import sweep_group

# finetune.multi_gpu / model.mX.multi_gpu values (finetune/distributed.py implements them; "auto" is also
# valid for finetune.multi_gpu). Here, not there, so the schema imports no implementation module.
MULTI_GPU_STRATEGIES = ("none", "ddp", "fsdp", "deepspeed")


@dataclass
class ModelEntry:
    """One model under study and where its weights come from."""

    name: str = MISSING  # short label used in tables, e.g. "smollm2_135m"
    source: str = "hub"  # hub | local | embedded | server (an OpenAI-compatible endpoint: docs/api_models.md)
    path: str = MISSING  # hub id, local folder, embedded key (smollm2_135m_instruct, gemma3_270m), or server model id
    revision: Optional[str] = None  # hub revision, recorded in the model fingerprint
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16; auto: the model's (GPU), devices.inference_dtype (CPU)
    tensor_parallel_size: int = 1
    max_model_len: int = 2048
    chat_template: Optional[str] = None  # None: the tokenizer's own; "gemma": Gemma turns; else a .jinja path
    trust_remote_code: bool = False
    gpus: int = 1  # GPUs a job for this model asks Slurm for (vLLM's tensor parallel ranks and finetune ranks)
    params_b: Optional[float] = None  # billions of parameters; finetune.gradient_checkpointing=auto reads it
    # How this model finetunes on its `gpus` when finetune.multi_gpu=auto: none | ddp | fsdp | deepspeed
    multi_gpu: str = "none"
    # Memory of each of the job's GPUs in GB (1e9 bytes), for the start's memory check (introspection/checks/memory_fit.py)
    # where no GPU is visible (a login node); with GPUs visible their measured memory is used instead.
    gpu_memory_gb: float = 80.0
    # source=server: the endpoint up to /v1 (e.g. https://api.openai.com/v1), and the NAME of the environment
    # variable that holds its key (never the key; null: a server that needs none)
    base_url: Optional[str] = None
    api_key_env: Optional[str] = None
    # source=server: the weights the server runs (a local folder, a hub id at `revision`, or an embedded model's
    # key), so that finetune=lora|qlora trains an adapter here and the server answers with it loaded
    # (docs/api_models.md, "Finetuning a served model"); null: the server's model can only answer, or finetune=openai
    weights: Optional[str] = None


@dataclass
class ModelSetConfig:
    name: str = MISSING
    m1: ModelEntry = field(default_factory=ModelEntry)
    m2: ModelEntry = field(default_factory=ModelEntry)


@dataclass
class TaskSetConfig:
    name: str = MISSING
    train_tasks: list[str] = field(default_factory=list)  # held-in: the finetuning data comes from these
    test_tasks: list[str] = field(default_factory=list)  # held-out: every reported number comes from these
    # Optional per-task property lists; a task not named here uses every property its registry entry lists.
    properties: dict[str, list[str]] = field(default_factory=dict)
    n_train_items: int = 200  # object-level items per train task (train split)
    n_test_items: int = 100  # items per held-out task (val split)
    n_finetune_per_property: int = 100  # SFT rows per (task, property), as docs/method.md §5.1 step 2
    data_dir: Optional[str] = None  # folder of {train,val}_<source>.jsonl files; None: build or fetch
    seed: int = 0
    corrected_prompts: bool = False  # True: fix the original text's defects (docs/method.md §1.2, 1.3)
    # tasks=release: a folder (or .jsonl) of the authors' released rows; None there: the hub dataset
    release_path: Optional[str] = None
    from_release: bool = False  # True: items and properties come from the released rows
    # authors: compliance checks and property values as the authors' code | strict: see docs/method.md#9
    compliance: str = "authors"


@dataclass
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])


@dataclass
class OpenAIFinetuneSettings:
    """finetune.api=openai: the hyperparameters of a job of the OpenAI fine-tuning API (each an int/float or
    "auto", the service's choice) and how it is watched (introspection/finetune/openai_finetune.py)."""

    n_epochs: Any = "auto"
    batch_size: Any = "auto"
    learning_rate_multiplier: Any = "auto"
    suffix: Optional[str] = None  # up to 64 characters in the finetuned model's id (ft:<base>:<org>:<suffix>:<id>)
    poll_interval_s: float = 30.0  # seconds between two looks at the job's status
    timeout_h: float = 48.0  # give up waiting (the job goes on at the server; a rerun resumes it by its id)


@dataclass
class FinetuneConfig:
    name: str = MISSING
    method: str = "lora"  # lora | qlora | full
    lora: LoraSettings = field(default_factory=LoraSettings)
    epochs: float = 1.0
    learning_rate: float = 2e-4
    # Per-model rates by model name, replacing learning_rate for that model's finetunes (models learn a
    # format at different rates; finetune/demo.yaml tunes the two embedded ones).
    learning_rate_by_model: dict[str, float] = field(default_factory=dict)
    batch_size: Optional[int] = 8  # per device; null when effective_batch_size sets it
    # Rows per optimizer step across every rank: the per-device batch is derived from it, the model's rank
    # count and gradient_accumulation_steps (stages.finetune_settings). null: batch_size per device as given.
    effective_batch_size: Optional[int] = None
    gradient_accumulation_steps: int = 1
    max_length: int = 512
    warmup_ratio: float = 0.0
    lr_scheduler: str = "constant"
    seed: int = 42
    max_examples: Optional[int] = None  # cap on SFT rows after dedup (the training-size axis)
    # Own object-level rows mixed in per hypothetical row (0 = the paper); see stages.prepare_rows.
    object_anchor_ratio: float = 0.0
    dtype: str = "auto"  # auto: float32 on CPU, bfloat16 on GPU
    gradient_checkpointing: bool | str = False  # true | false | auto (on for models of 7B parameters and up)
    # Several GPUs per finetune via `accelerate launch` on the model's `gpus` ranks: none | ddp | fsdp | deepspeed,
    # or auto: the strategy the model's catalogue entry names (model.mX.multi_gpu)
    multi_gpu: str = "none"
    accelerate_config: Optional[str] = None  # None: launchers/accelerate_<multi_gpu>.yaml
    # A resumable checkpoint every this many optimizer steps (0: only when Slurm's time-limit signal comes), in
    # STORE/checkpoints/<adapter key>/ until the adapter is sealed: a killed job loses at most this much.
    checkpoint_every_steps: int = 50
    # How server models (model.mX.source=server) finetune: null (they cannot: the start refuses a run that would
    # finetune one) | openai (the OpenAI fine-tuning API at the model's base_url, with the settings below). Open
    # models always train with the TRL settings above (docs/api_models.md, "Finetuning API models").
    api: Optional[str] = None
    openai: OpenAIFinetuneSettings = field(default_factory=OpenAIFinetuneSettings)


@dataclass
class InferenceConfig:
    name: str = MISSING
    backend: str = "vllm"  # vllm | hf
    batch_size: int = 64  # requests per checkpointed batch (and per HF generate call)
    # Requests per checkpointed batch when a CUDA GPU is present (vLLM schedules thousands at once);
    # null: batch_size there too. worker.checkpoint_batch_size picks one.
    gpu_batch_size: Optional[int] = None
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 32  # object-level answers: every property reads at most the first three words
    max_tokens_hypothetical: int = 16  # hypothetical answers are one character, word or true/false
    n_samples: int = 1
    aggregation: str = "mode"  # mode-of-n (docs/method.md §1.4); strings whose samples all differ are dropped
    # Top-k log-probabilities of the first generated token, read only by experiment=calibration (its logprob
    # variant); every other answer asks for none (docs/method.md §1.4)
    top_logprobs: int = 5
    seed: int = 0
    gpu_memory_utilization: float = 0.85
    cpu_kv_cache_gib: float = 1.0  # vLLM on CPU: KV cache in RAM (1 GiB: ~23k tokens of SmolLM2, 29k of Gemma-3)
    enforce_eager: bool = False
    lora_serving: str = "auto"  # auto (merge on CPU, LoRARequest on GPU) | merge | adapter
    # Server models (model.mX.source=server): requests in flight at once, seconds to wait for one answer, and
    # retries (with exponential backoff) after a rate limit, a server error, a timeout or a dropped connection
    server_concurrency: int = 8
    server_timeout_s: float = 120.0
    server_max_retries: int = 6


@dataclass
class LoggerConfig:
    name: str = MISSING
    backend: str = "wandb"  # wandb | none
    project: str = "introspection"
    entity: Optional[str] = None
    mode: str = "auto"  # auto: online with credentials, else offline | online | offline
    group: Optional[str] = "${sweep_group:}"  # W&B group: the sweep's name in a multirun job, else None
    tags: list[str] = field(default_factory=list)
    log_training: bool = False  # also each finetune's training curves (TRL -> W&B), in this run's project and group


@dataclass
class ExperimentConfig:
    name: str = "cross_prediction"  # cross_prediction | calibration | behavior_shift | scaling
    noncompliant: str = "wrong"  # wrong: non-compliant predictions count as errors | exclude: drop the pair
    untrained_baseline: bool = True  # also score each base model predicting itself before training
    adjusted: bool = False  # distribution-matched accuracy beside the raw one (docs/method.md §4.4)
    stop_after: Optional[str] = None  # "build": only build and count the items (a dry run of the data)
    options: dict[str, Any] = field(default_factory=dict)  # experiment-specific settings
    # auto: the two models' independent steps at once, each on its own CUDA devices (model.mX.gpus of the
    # visible ones), when the job has devices for both; off, one device or a CPU: one after the other
    concurrent_sides: str = "auto"


@dataclass
class PreflightConfig:
    """Throughput assumptions of the pre-flight plan (conf/preflight/default.yaml; introspection/preflight/plan.py)."""

    name: str = MISSING
    gpu: str = "h100"  # a key of `throughput`
    gpus: Optional[int] = None  # None: each step's GPUs as the real run uses them
    # GPUs the job holds (hydra.launcher.gpus_per_node); None: the larger model's gpus (the launcher's default).
    # With model.m1.gpus + model.m2.gpus of them, the run (and this plan) takes both sides at once.
    job_gpus: Optional[int] = None
    chars_per_token: float = 4.0  # token estimate without a local tokenizer
    size_classes: dict[str, float] = field(default_factory=dict)  # class -> upper bound (billions)
    throughput: dict[str, Any] = field(default_factory=dict)  # gpu -> class -> rates and start seconds
    answer_tokens: dict[str, float] = field(default_factory=dict)  # expected answer tokens: hypothetical, object, <task>
    # Server models: model id -> $ per 1M input/output/training tokens (null: not found), as_of and source
    api_prices: dict[str, Any] = field(default_factory=dict)


@dataclass
class Config:
    model: ModelSetConfig = field(default_factory=ModelSetConfig)
    tasks: TaskSetConfig = field(default_factory=TaskSetConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    preflight: PreflightConfig = field(default_factory=PreflightConfig)
    store_dir: str = "${oc.env:INTROSPECTION_CACHE,${oc.env:HOME}/.cache/introspection}"
    seed: int = 0  # added to tasks.seed, inference.seed and finetune.seed (apply_seed): one knob for replicates


def default_cache_dir() -> Path:
    """The artifact store default, as in Config.store_dir (for code that runs without a composed config)."""
    return Path(os.environ.get("INTROSPECTION_CACHE", Path.home() / ".cache" / "introspection"))


def register_resolvers() -> None:
    """${max:a,b,...} (nulls ignored) and ${mul:a,b,...} size Slurm requests from the model entries
    (conf/hydra/launcher/slurm.yaml); ${sweep_group:} names the W&B group of a multirun job."""
    resolvers = {"max": lambda *xs: max(x for x in xs if x is not None), "mul": lambda *xs: math.prod(xs),
                 "sweep_group": sweep_group}
    for name, fn in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


def apply_seed(cfg) -> None:
    """Offset every component seed by the top-level `seed`, in place, once per run (main calls it).

    The component seeds stay the knobs for one step each: tasks.seed (which items, and which of them
    become finetuning rows), inference.seed (sampling), finetune.seed (row order, LoRA init, data order).
    `seed` moves all of them together, so `seed=0,1,2` gives replicates that differ in every seeded step.
    Adding (rather than hashing the two together) keeps seed=0 an identity: every artifact key of a
    config is the same as before `seed` existed. Each seed enters the keys of the artifacts it changes
    (items -> prompts -> answers; sampling; rows; adapters), so replicates never share those artifacts.
    """
    offset = int(cfg.seed)
    for group in ("tasks", "inference", "finetune"):
        cfg[group].seed = int(cfg[group].seed) + offset


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    cs.store(group="model", name="base_model_set", node=ModelSetConfig)
    cs.store(group="tasks", name="base_tasks", node=TaskSetConfig)
    cs.store(group="finetune", name="base_finetune", node=FinetuneConfig)
    cs.store(group="inference", name="base_inference", node=InferenceConfig)
    cs.store(group="logger", name="base_logger", node=LoggerConfig)
    cs.store(group="preflight", name="base_preflight", node=PreflightConfig)


register_resolvers()
register_configs()


# String settings with a fixed set of values: checked when the run starts, before any model loads.
CHOICES = {
    "experiment.noncompliant": ("wrong", "exclude"),
    "experiment.concurrent_sides": ("auto", "off"),
    "tasks.compliance": ("authors", "strict"),
    "logger.backend": ("wandb", "none"),
    "logger.mode": ("auto", "online", "offline", "disabled"),
    "finetune.method": ("lora", "qlora", "full"),
    "finetune.multi_gpu": (*MULTI_GPU_STRATEGIES, "auto"),
    "finetune.api": (None, "openai"),
    "model.m1.multi_gpu": MULTI_GPU_STRATEGIES,
    "model.m2.multi_gpu": MULTI_GPU_STRATEGIES,
    "inference.aggregation": ("mode", "first"),
    "inference.lora_serving": ("auto", "merge", "adapter"),
}
# inference.backend and model.mX.source are checked against the backend registry at start
# (introspection/inference/registry.py: check_backend_choices), which this schema module cannot import.


OPENAI_HYPERPARAMETERS = ("n_epochs", "batch_size", "learning_rate_multiplier")  # finetune.openai's


def openai_hyperparameters(settings) -> dict[str, Any]:
    """finetune.openai's n_epochs, batch_size and learning_rate_multiplier as a fine-tuning job takes them: "auto"
    (the service chooses) or a positive number (a whole one for epochs and batch); a one-line ValueError otherwise."""
    chosen = {}
    for name in OPENAI_HYPERPARAMETERS:
        value = settings[name]
        whole = name != "learning_rate_multiplier"
        valid = value == "auto" or (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
                                    and (not whole or float(value).is_integer()))
        if not valid:
            raise ValueError(f"finetune.openai.{name}={value!r} is not valid; valid: auto or a "
                             f"{'whole ' if whole else ''}number > 0")
        chosen[name] = value if value == "auto" or not whole else int(value)
    return chosen


def check_choices(cfg) -> None:
    """Raise a one-line ValueError for the first setting outside its valid values."""
    from omegaconf import OmegaConf

    for key, valid in CHOICES.items():
        value = OmegaConf.select(cfg, key)
        if value not in valid:
            raise ValueError(f"{key}={value!r} is not valid; valid: {', '.join('null' if v is None else v for v in valid)}")
    api = cfg.finetune.get("api")
    if api and not any(cfg.model[slot].source == "server" for slot in ("m1", "m2")):
        raise ValueError(f"finetune.api={api} trains server models (model.mX.source=server), but both models are "
                         f"open-weight ({cfg.model.m1.name}, {cfg.model.m2.name}) and train with TRL; use finetune=lora "
                         f"(or another TRL preset), or finetune.api=null")
    if api == "openai":
        openai_hyperparameters(cfg.finetune.openai)
    rates = {"finetune.learning_rate": cfg.finetune.learning_rate}
    rates |= {f"finetune.learning_rate_by_model.{name}": rate for name, rate in cfg.finetune.learning_rate_by_model.items()}
    for key, rate in rates.items():
        if not rate > 0:
            raise ValueError(f"{key}={rate!r} is not valid; valid: a number > 0")
