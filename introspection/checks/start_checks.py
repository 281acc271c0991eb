"""Checks that run when a job starts, before any model or data work, so a misconfigured job (a 70B
pair on a cluster included) fails in seconds with one line, not after an hour of inference.

Each check raises a one-line ValueError naming the key, its value and what is valid (the entry point
turns it into `error: ...` and exit code 2; in a sweep job, into the job's error.txt and log line).

Three kinds, run in this order by `run_start_checks`:
- the config: keys added with `+` that the schema does not know, choices, numeric ranges, GPUs against
  tensor parallel size and the multi-GPU strategy, local model folders and chat template files, the LoRA
  rank against the hidden size (where the model's config is at hand; introspection/checks/model_checks.py), that
  every task's data can be found, and that each finetune, inference backend and merge fits the GPUs'
  memory (introspection/checks/memory_fit.py); then the chosen experiment's own check (Experiment.check, e.g.
  calibration's first-token logprobs);
- W&B: an online run's server can be reached (a few seconds' timeout);
- the machine: QLoRA's bitsandbytes and CUDA, hub weights present while offline, a CUDA device for a hub
  model, and the GPUs of a multi-GPU finetune. A dry run (`experiment.stop_after=build|plan`) loads no
  model, so it skips these: a plan for a GPU cluster can be made on a laptop.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import typing
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from introspection.checks.memory_fit import CPU_MAX_PARAMS_B, check_memory_fit
from introspection.checks.model_checks import (  # noqa: F401  (check_models_fit, model_config_here: re-exported)
    SLOTS,
    check_lora_rank,
    check_model_files,
    check_models_fit,
    model_config_here,
)

STOP_AFTER = {"build": "build and count the items", "plan": "print the pre-flight plan", "none": "run everything"}
SEED_MAX = 2**32 - 1  # numpy (used by transformers' set_seed) takes seeds in [0, 2**32)
_MISSING = object()


# --------------------------------------------------------------------------------------------------
# The config


def check_known_keys(cfg: DictConfig) -> None:
    """Keys added with `+key=value` must exist in the schema (introspection/core/config.py); a typo would
    otherwise be accepted and ignored. Dict-valued settings (e.g. experiment.options) take any key."""
    from introspection.core.config import Config

    _check_node(cfg, Config, "")


def _check_node(node: DictConfig, schema: type, prefix: str) -> None:
    hints = typing.get_type_hints(schema)
    fields = [f.name for f in dataclasses.fields(schema)]
    for key in node.keys():
        path = f"{prefix}{key}"
        if key not in fields:
            where = f"under {prefix[:-1]}" if prefix else "at the top level"
            raise ValueError(f"unknown config key '{path}' (command line: +{path}=...); valid keys {where}: "
                             f"{', '.join(fields)}")
        if dataclasses.is_dataclass(hints[key]) and isinstance(node[key], DictConfig):
            _check_node(node[key], hints[key], f"{path}.")


def check_stop_after(cfg: DictConfig) -> None:
    """A mistyped dry-run flag (stop_after=buld) must never start the real, expensive run."""
    value = cfg.experiment.stop_after
    if value is not None and value not in STOP_AFTER:
        valid = "; ".join(f"{name} ({what})" for name, what in STOP_AFTER.items())
        raise ValueError(f"experiment.stop_after={value!r} is not valid; valid: {valid}; null is none")


def _rule(test, text: str, optional: bool = False):
    return test, text, optional


AT_LEAST_1 = _rule(lambda v: v >= 1, "an integer >= 1")
POSITIVE = _rule(lambda v: v > 0, "a number > 0")
NON_NEGATIVE = _rule(lambda v: v >= 0, "a number >= 0")
FRACTION_BELOW_1 = _rule(lambda v: 0 <= v < 1, "a number in [0, 1)")
PROBABILITY_ABOVE_0 = _rule(lambda v: 0 < v <= 1, "a number in (0, 1]")
SEED = _rule(lambda v: 0 <= v <= SEED_MAX, f"an integer in [0, {SEED_MAX}]")
OPTIONAL_AT_LEAST_1 = _rule(lambda v: v >= 1, "an integer >= 1, or null", optional=True)
OPTIONAL_POSITIVE = _rule(lambda v: v > 0, "a number > 0, or null", optional=True)

RANGES = {
    "seed": SEED,
    "tasks.n_train_items": AT_LEAST_1,
    "tasks.n_test_items": AT_LEAST_1,
    "tasks.n_finetune_per_property": AT_LEAST_1,
    "tasks.seed": SEED,
    "finetune.lora.r": AT_LEAST_1,
    "finetune.lora.alpha": POSITIVE,
    "finetune.lora.dropout": FRACTION_BELOW_1,
    "finetune.epochs": POSITIVE,
    "finetune.learning_rate": POSITIVE,
    "finetune.batch_size": OPTIONAL_AT_LEAST_1,
    "finetune.effective_batch_size": OPTIONAL_AT_LEAST_1,
    "finetune.gradient_accumulation_steps": AT_LEAST_1,
    "finetune.max_length": AT_LEAST_1,
    "finetune.warmup_ratio": FRACTION_BELOW_1,
    "finetune.seed": SEED,
    "finetune.max_examples": OPTIONAL_AT_LEAST_1,
    "finetune.object_anchor_ratio": NON_NEGATIVE,
    "inference.batch_size": AT_LEAST_1,
    "inference.gpu_batch_size": OPTIONAL_AT_LEAST_1,
    "inference.temperature": NON_NEGATIVE,
    "inference.top_p": PROBABILITY_ABOVE_0,
    "inference.max_tokens": AT_LEAST_1,
    "inference.max_tokens_hypothetical": AT_LEAST_1,
    "inference.n_samples": AT_LEAST_1,
    "inference.top_logprobs": NON_NEGATIVE,
    "inference.seed": SEED,
    "inference.gpu_memory_utilization": PROBABILITY_ABOVE_0,
    "inference.cpu_kv_cache_gib": POSITIVE,
    "inference.server_concurrency": AT_LEAST_1,
    "inference.server_timeout_s": POSITIVE,
    "inference.server_max_retries": NON_NEGATIVE,
    "preflight.gpus": OPTIONAL_AT_LEAST_1,
    "preflight.chars_per_token": POSITIVE,
    **{f"model.{slot}.{key}": rule for slot in SLOTS for key, rule in (
        ("tensor_parallel_size", AT_LEAST_1), ("max_model_len", AT_LEAST_1), ("gpus", AT_LEAST_1),
        ("params_b", OPTIONAL_POSITIVE), ("gpu_memory_gb", POSITIVE))},
}


def check_ranges(cfg: DictConfig) -> None:
    """Every numeric setting within its valid range (the schema has already checked its type)."""
    rates = {f"finetune.learning_rate_by_model.{name}": POSITIVE for name in cfg.finetune.learning_rate_by_model}
    for key, (test, text, optional) in (RANGES | rates).items():
        if OmegaConf.select(cfg, key, default=_MISSING) is _MISSING:  # e.g. params_b of an older schema
            continue
        value = OmegaConf.select(cfg, key)
        if value is None and optional:
            continue
        if value is None or isinstance(value, bool) or not test(value):
            raise ValueError(f"{key}={value!r} is not valid; valid: {text}")


def check_property_lists(cfg: DictConfig) -> None:
    """tasks.properties.<task> names the properties asked about that task: an empty list asks nothing."""
    from introspection.paper.tasks import get_task

    for task_name, chosen in cfg.tasks.properties.items():
        if not list(chosen):
            valid = ", ".join(get_task(task_name, where=f"tasks.properties.{task_name}").properties)
            raise ValueError(f"tasks.properties.{task_name}=[] lists no property; list at least one, or remove the "
                             f"key to use all of the task's; valid: {valid}")


def check_tensor_parallel(cfg: DictConfig) -> None:
    """vLLM shards a model over tensor_parallel_size GPUs, taken from the `gpus` its job asks for."""
    for slot in SLOTS:
        entry = cfg.model[slot]
        tp, gpus = entry.tensor_parallel_size, entry.gpus
        if tp > gpus or gpus % tp:
            raise ValueError(f"model.{slot}.tensor_parallel_size={tp} does not fit model.{slot}.gpus={gpus} "
                             f"({entry.name}): vLLM shards the model over tensor_parallel_size of the job's GPUs, so "
                             f"tensor_parallel_size must divide gpus (at most gpus, gpus a multiple of it); set "
                             f"model.{slot}.gpus={tp} or model.{slot}.tensor_parallel_size="
                             f"{_largest_divisor_at_most(gpus, tp)}")


def _largest_divisor_at_most(n: int, limit: int) -> int:
    return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


def finetune_settings_by_slot(cfg: DictConfig) -> dict[str, dict]:
    """The finetune settings each model trains with (multi_gpu=auto resolved from its catalogue entry)."""
    from introspection.stages.finetune_settings import finetune_settings

    return {slot: finetune_settings(cfg.finetune, cfg.model[slot]) for slot in SLOTS}


def check_multi_gpu_strategy(cfg: DictConfig) -> None:
    """A model given several GPUs but finetuned in one process (multi_gpu none) would load whole onto one
    GPU: a 70B model in bf16 runs out of memory at the first finetune, after all of base inference."""
    method = cfg.finetune.method
    if method == "qlora":  # a 4-bit base is meant to fit one GPU
        return
    for slot, settings in finetune_settings_by_slot(cfg).items():
        gpus = cfg.model[slot].gpus
        if gpus > 1 and settings["multi_gpu"] == "none":
            strategy = f"finetune.multi_gpu={cfg.finetune.multi_gpu}"
            if cfg.finetune.multi_gpu == "auto":
                strategy += f" (model.{slot}.multi_gpu=none)"
            raise ValueError(f"model.{slot}.gpus={gpus} ({cfg.model[slot].name}) but {strategy} trains it in "
                             f"one process on one GPU (finetune="
                             f"{cfg.finetune.name}, method {method}); set finetune.multi_gpu=fsdp to train on all "
                             f"{gpus} GPUs, or finetune=qlora to fit one")


def check_task_data(cfg: DictConfig) -> None:
    """Every task's rows can be found: a file in tasks.data_dir, its generator, or its hub dataset (in the
    local cache when offline); tasks=release needs its release folder."""
    tasks = cfg.tasks
    if tasks.from_release:
        _check_release_source(tasks.release_path)
        return
    from introspection.paper.tasks import get_task

    data_dir = tasks.data_dir
    if data_dir is not None and not Path(data_dir).is_dir():
        raise ValueError(f"tasks.data_dir {data_dir!r} is not a folder; give the folder of {{train,val}}_<task>.jsonl "
                         "files, or tasks.data_dir=null to build or fetch the data")
    for role, split in (("train", "train"), ("test", "val")):
        for name in tasks[f"{role}_tasks"]:
            _check_task_source(get_task(name, where=f"tasks.{role}_tasks"), split, data_dir, f"tasks.{role}_tasks")


def check_data_dir_files(cfg: DictConfig) -> None:
    """A tasks.data_dir whose files match no task, or that lacks a file this run reads, is named in a
    warning: otherwise the run silently builds those tasks from their generators or the hub. (A task left
    with no source at all is an error of check_task_data.)"""
    import logging

    from introspection.paper.tasks import get_task
    from introspection.paper.tasks.loading import data_dir_coverage

    tasks = cfg.tasks
    if tasks.from_release or tasks.data_dir is None:
        return
    wanted = [(get_task(name), split) for role, split in (("train", "train"), ("test", "val"))
              for name in tasks[f"{role}_tasks"]]
    unmatched, missing = data_dir_coverage(tasks.data_dir, wanted)
    log = logging.getLogger("introspection")
    if unmatched:
        log.warning("tasks.data_dir %s: %s match%s no task (names are {train,val}_<task>.jsonl) and %s not read",
                    tasks.data_dir, ", ".join(unmatched), "es" if len(unmatched) == 1 else "",
                    "is" if len(unmatched) == 1 else "are")
    if missing:
        log.warning("tasks.data_dir %s has no %s: %s built by the task's generator or read from its hub dataset",
                    tasks.data_dir, ", ".join(missing), "that split is" if len(missing) == 1 else "those splits are")


def _check_task_source(task, split: str, data_dir: str | None, where: str) -> None:
    file_name = f"{split}_{task.source}.jsonl"
    if data_dir is not None and (Path(data_dir) / file_name).is_file():
        return
    if task.kind == "generated":  # built offline by a seeded generator
        return
    looked = f"{Path(data_dir) / file_name} does not exist" if data_dir else "tasks.data_dir is not set"
    if task.hf is None:
        raise ValueError(f"task '{task.name}' ({where}) has no data: {looked} and the task has no hub source; "
                         f"put {file_name} in tasks.data_dir")
    from introspection.paper.tasks.hub import hub_offline

    if hub_offline() and not _hub_dataset_cached(task.hf.repo):
        raise ValueError(f"task '{task.name}' ({where}): {looked}, and its hub dataset {task.hf.describe()} is "
                         f"offline (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE) and not cached; put {file_name} in "
                         "tasks.data_dir, or fetch it once online")


def _hub_dataset_cached(repo: str) -> bool:
    """A hub dataset in the local caches: the hub's file cache or the datasets library's own (no network)."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    hub_copy = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo, repo_type="dataset")
    datasets_cache = os.environ.get("HF_DATASETS_CACHE") or str(Path(constants.HF_HOME) / "datasets")
    datasets_copy = Path(datasets_cache) / repo.replace("/", "___")
    return hub_copy.is_dir() or datasets_copy.is_dir()


def _check_release_source(release_path: str | None) -> None:
    from introspection.paper.release import RELEASE_HUB_ID
    from introspection.paper.tasks.hub import hub_offline

    if release_path:
        if not Path(release_path).expanduser().exists():
            raise ValueError(f"tasks.release_path {release_path!r} does not exist; give a folder or .jsonl file of "
                             "release rows")
    elif hub_offline():
        raise ValueError(f"tasks=release needs tasks.release_path=<folder of release .jsonl files> while offline "
                         f"(or network access to the hub dataset {RELEASE_HUB_ID})")


def check_config(cfg: DictConfig) -> None:
    """Everything that can be judged from the config and the data folders alone."""
    from introspection.core.config import check_choices
    from introspection.inference.registry import check_backend_choices

    check_known_keys(cfg)
    check_stop_after(cfg)
    check_choices(cfg)
    check_backend_choices(cfg)  # inference.backend, model.mX.source, and each backend's own config checks
    check_ranges(cfg)
    check_property_lists(cfg)
    check_tensor_parallel(cfg)
    check_multi_gpu_strategy(cfg)
    check_memory_fit(cfg)
    check_model_files(cfg)
    check_lora_rank(cfg)
    check_task_data(cfg)
    check_data_dir_files(cfg)


# --------------------------------------------------------------------------------------------------
# The machine


def cuda_device_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def check_qlora(cfg: DictConfig) -> None:
    """QLoRA loads the base in 4 bits through bitsandbytes, which needs CUDA."""
    if cfg.finetune.method != "qlora":
        return
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ValueError("finetune=qlora needs the bitsandbytes package (4-bit base), which is not installed: "
                         "pip install bitsandbytes on the GPU machine, or use finetune=lora")
    if cuda_device_count() == 0:
        raise ValueError("finetune=qlora needs a CUDA GPU (bitsandbytes 4-bit); on this machine use finetune=lora")


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


WEIGHT_FILES = ("model.safetensors.index.json", "model.safetensors", "pytorch_model.bin.index.json",
                "pytorch_model.bin")


def hub_weights_cached(repo_id: str, revision: str | None) -> bool:
    """config.json and every weight file of a hub model in the local Hugging Face cache (no network)."""
    import json

    from huggingface_hub import try_to_load_from_cache

    def cached(name: str) -> str | None:
        path = try_to_load_from_cache(repo_id, name, revision=revision)
        return path if isinstance(path, str) else None

    if cached("config.json") is None:
        return False
    for name in WEIGHT_FILES:
        found = cached(name)
        if found is None:
            continue
        if not name.endswith(".index.json"):
            return True
        shards = set(json.loads(Path(found).read_text()).get("weight_map", {}).values())
        return bool(shards) and all(cached(shard) is not None for shard in shards)
    return False


def check_offline_weights(cfg: DictConfig) -> None:
    """With HF_HUB_OFFLINE=1 (a compute node without internet) every hub model must already be cached."""
    if not _offline():
        return
    for slot in SLOTS:
        entry = cfg.model[slot]
        if entry.source == "hub" and not hub_weights_cached(entry.path, entry.revision):
            raise ValueError(f"hub model {entry.path!r} ({'model.' + slot}.path) is not in the Hugging Face cache and "
                             "HF_HUB_OFFLINE=1; download it first (hf download "
                             f"{entry.path}) or unset HF_HUB_OFFLINE")


def _small_enough_for_cpu(cfg: DictConfig, slot: str) -> bool:
    params_b = OmegaConf.select(cfg, f"model.{slot}.params_b")
    return params_b is not None and params_b <= CPU_MAX_PARAMS_B


def check_cuda_for_hub_models(cfg: DictConfig) -> None:
    """Hub models are GPU models here: vLLM and TRL on a CPU cannot serve or train a 7B-70B model."""
    hub = [slot for slot in SLOTS if cfg.model[slot].source == "hub" and not _small_enough_for_cpu(cfg, slot)]
    if not hub or cuda_device_count() > 0:
        return
    slot = hub[0]
    entry = cfg.model[slot]
    raise ValueError(f"model.{slot} is the hub model {entry.path} ({entry.name}) but this machine has no CUDA device; "
                     f"run it on a GPU node (e.g. hydra/launcher=slurm), or use model=demo or a local model "
                     f"(model.{slot}.source=local model.{slot}.path=FOLDER)")


def check_multi_gpu_machine(cfg: DictConfig) -> None:
    """A multi-GPU finetune needs its ranks' GPUs (and deepspeed's package) on this machine."""
    from introspection.finetune.distributed import check_multi_gpu

    for slot, settings in finetune_settings_by_slot(cfg).items():
        check_multi_gpu(settings, {slot: cfg.model[slot]})


def check_machine(cfg: DictConfig) -> None:
    check_qlora(cfg)
    check_offline_weights(cfg)
    check_cuda_for_hub_models(cfg)
    check_multi_gpu_machine(cfg)


WANDB_TIMEOUT_S = 5.0


def check_wandb_reachable(cfg: DictConfig) -> None:
    """An online W&B run without network would wait, then fail after the work is done: test the
    connection now, for a few seconds, and name the offline switch."""
    import urllib.error
    import urllib.request

    from introspection.outputs.run_outputs import wandb_mode

    if cfg.logger.backend != "wandb" or wandb_mode(cfg.logger.mode) != "online":
        return
    url = os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai"
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=WANDB_TIMEOUT_S).close()
    except urllib.error.HTTPError:  # the server answered: reachable
        return
    except (OSError, ValueError) as exc:  # no route, no name, refused, timed out, or not a URL
        reason = getattr(exc, "reason", None) or exc
        switch = "WANDB_MODE=offline" if cfg.logger.mode == "auto" else "logger.mode=offline"
        raise ValueError(f"logger=wandb is online (logger.mode={cfg.logger.mode}) but {url} cannot be reached within "
                         f"{WANDB_TIMEOUT_S:.0f} s ({reason}); set {switch} and `wandb sync` the run later, or "
                         "logger=none") from None


def run_start_checks(cfg: DictConfig, experiment=None, options=None) -> None:
    """Every start check, cheapest first; the machine checks only when models will run. `experiment` (an
    experiments.Experiment, with its parsed options): its own check, and the model slots it finetunes."""
    check_config(cfg)
    if experiment is not None and experiment.check is not None:
        experiment.check(cfg, options)
    check_wandb_reachable(cfg)
    if cfg.experiment.stop_after in (None, "none"):
        check_machine(cfg)
        from introspection.inference.registry import check_backend_services

        finetuned = SLOTS if experiment is None else tuple(experiment.finetunes(options))
        check_backend_services(cfg, finetuned)  # a server model's key, endpoint and model id, within seconds


