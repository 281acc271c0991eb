"""The settings one model finetunes with (every `auto` resolved from its catalogue entry), and the key of the
adapter they train: what the start checks, the pre-flight plan and the finetune stage all read."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from introspection.core.store import digest
from introspection.stages.model_ref import ModelRef

# Bump when the finetune stage changes what it writes: old adapters then stop matching.
FINETUNE_VERSION = 1
GRADIENT_CHECKPOINTING_FROM_B = 7.0  # gradient_checkpointing=auto: on from this many billion parameters


def finetune_settings(finetune_cfg, entry) -> dict:
    """The finetune settings one model trains with, every `auto` resolved from its catalogue entry.

    - learning_rate: finetune.learning_rate_by_model[its name] when set, else finetune.learning_rate;
    - multi_gpu: auto -> the entry's own strategy (model.mX.multi_gpu, e.g. fsdp for the 70B entries);
    - gradient_checkpointing: auto -> on when the entry's params_b >= 7 (activations, not weights, fill
      the GPU at batch 16), off for smaller or unsized models;
    - batch_size: with finetune.effective_batch_size set, effective / (ranks x gradient_accumulation_steps),
      ranks being the entry's gpus under a multi-GPU strategy, else 1.
    Raises a one-line ValueError for a setting that cannot be resolved; main calls this at start.
    """
    cfg = OmegaConf.to_container(finetune_cfg, resolve=True) if not isinstance(finetune_cfg, dict) else dict(finetune_cfg)
    entry = OmegaConf.to_container(entry, resolve=True) if not isinstance(entry, dict) else entry
    name = entry["name"]
    rate = (cfg.get("learning_rate_by_model") or {}).get(name)
    if rate is not None:
        cfg["learning_rate"] = float(rate)
    if cfg.get("multi_gpu", "none") == "auto":
        cfg["multi_gpu"] = entry.get("multi_gpu") or "none"
    checkpointing = cfg.get("gradient_checkpointing", False)
    if checkpointing == "auto":
        params_b = entry.get("params_b")
        cfg["gradient_checkpointing"] = params_b is not None and params_b >= GRADIENT_CHECKPOINTING_FROM_B
    elif not isinstance(checkpointing, bool):
        raise ValueError(f"finetune.gradient_checkpointing={checkpointing!r} is not valid; valid: true, false, auto")
    effective = cfg.get("effective_batch_size")
    if effective is not None:
        cfg["batch_size"] = _per_device_batch(cfg, entry, int(effective))
    elif cfg.get("batch_size") is None:
        raise ValueError("finetune.batch_size and finetune.effective_batch_size are both null; set one "
                         "(e.g. finetune.effective_batch_size=16)")
    return cfg


def _per_device_batch(cfg: dict, entry: dict, effective: int) -> int:
    """Per-device batch for an effective batch across every rank; a one-line error when it does not divide,
    or when an explicit per-device batch_size disagrees (an equal one is accepted: resolving is idempotent)."""
    ranks = int(entry["gpus"]) if cfg["multi_gpu"] != "none" else 1
    accumulation = int(cfg.get("gradient_accumulation_steps", 1))
    per_step = ranks * accumulation
    if effective < 1 or accumulation < 1 or effective % per_step:
        raise ValueError(f"finetune.effective_batch_size={effective} is not divisible by {ranks} rank(s) "
                         f"(model {entry['name']}: gpus={entry['gpus']}, multi_gpu={cfg['multi_gpu']}) x "
                         f"finetune.gradient_accumulation_steps={accumulation}; valid: a positive multiple of {per_step}")
    derived = effective // per_step
    given = cfg.get("batch_size")
    if given is not None and given != derived:
        raise ValueError(f"finetune.batch_size={given} (per device) and finetune.effective_batch_size={effective} "
                         f"(across {ranks} rank(s) x {accumulation} accumulation steps = {derived} per device) are "
                         "both set and disagree; set one and null the other, e.g. finetune.batch_size=null")
    return derived


def settings_for_model(finetune_cfg, model: ModelRef) -> dict:
    """finetune_settings for a ModelRef (the adapter key hashes the settings actually used)."""
    return finetune_settings(finetune_cfg, model.entry)


def adapter_key(base: ModelRef, rows_key: str, cfg: dict) -> str:
    """The adapter's key: base weights, rows and the resolved training settings."""
    # The rate used is in learning_rate; the per-model table itself is not hashed, nor the config's name.
    # checkpoint_every_steps: a resumed finetune trains the same adapter (tests/test_resume.py)
    # api, openai: how a SERVER model finetunes (finetune/openai_finetune.py keys its own jobs); no TRL adapter reads them
    unhashed = {"name", "multi_gpu", "accelerate_config", "learning_rate_by_model", "checkpoint_every_steps", "api",
                "openai"}
    # Settings added later enter the key only when set, so older keys (the demo's) stay valid.
    if cfg.get("effective_batch_size") is None:
        unhashed.add("effective_batch_size")
    content = {"v": FINETUNE_VERSION, "base": base.fingerprint, "rows": rows_key,
               "cfg": {k: v for k, v in cfg.items() if k not in unhashed}}
    strategy = cfg.get("multi_gpu", "none")
    if strategy != "none":  # the accelerate config sets mixed precision and sharding: other numerics
        content["multi_gpu"] = strategy
        content["accelerate_config"] = _accelerate_config_digest(cfg)
        if cfg.get("effective_batch_size") is None:  # rows per step = batch_size x ranks x accumulation
            content["ranks"] = int(base.entry["gpus"])
    return digest(content)


def _accelerate_config_digest(cfg: dict) -> str:
    """The content of the accelerate config a multi-GPU finetune launches with (the file, not its path)."""
    from introspection.finetune.distributed import accelerate_config_path

    path = Path(accelerate_config_path(cfg))
    try:
        return digest(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise OSError(f"cannot read the accelerate config {path} (finetune.accelerate_config): {e.strerror}") from None

