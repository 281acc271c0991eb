"""A finetune's settings, checked and resolved before any model loads: the method, dtype, scheduler and
rows checked in one line each; the PEFT LoRA config and TRL's SFTConfig built from finetune.* (docs/method.md §5.4)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

METHODS = ("lora", "qlora", "full")
DTYPES = ("auto", "float32", "bfloat16", "float16")


# --------------------------------------------------------------------------------------------------
# Checks


def check_pad_token(tokenizer) -> None:
    """Fail unless the tokenizer has a pad token distinct from EOS and a chat template."""
    if tokenizer.pad_token_id is None:
        raise ValueError(
            "tokenizer has no pad token: set tokenizer.pad_token to an unused special token distinct from "
            f"eos {tokenizer.eos_token!r} (e.g. '<|endoftext|>' for SmolLM2)"
        )
    if tokenizer.pad_token_id == tokenizer.eos_token_id:
        # pad == eos is the classic way to train a model that never stops (its EOS gets masked as padding).
        raise ValueError(
            f"tokenizer pad token {tokenizer.pad_token!r} equals its eos token: set tokenizer.pad_token to an "
            "unused special token (e.g. '<|endoftext|>' for SmolLM2)"
        )
    if not tokenizer.chat_template:
        raise ValueError("tokenizer has no chat_template: pass the tokenizer that inference uses, template included")


def check_rows(rows: list[dict]) -> None:
    if not rows:
        raise ValueError("no training rows: build them with introspection.finetune.data.sft_rows")
    for index, row in enumerate(rows):
        prompt, completion = row.get("prompt"), row.get("completion")
        if not isinstance(prompt, list) or not isinstance(completion, list) or len(completion) != 1:
            raise ValueError(
                f"row {index}: expected TRL prompt-completion messages "
                f"{{'prompt': [...], 'completion': [{{'role': 'assistant', ...}}]}}, got keys {sorted(row)}"
            )
        if completion[0].get("role") != "assistant":
            raise ValueError(f"row {index}: completion role must be 'assistant', got {completion[0].get('role')!r}")


def check_config(cfg) -> None:
    if cfg.method not in METHODS:
        raise ValueError(f"finetune.method={cfg.method!r} is not valid; use one of {', '.join(METHODS)}")
    if cfg.dtype not in DTYPES:
        raise ValueError(f"finetune.dtype={cfg.dtype!r} is not valid; use one of {', '.join(DTYPES)}")
    if not 0.0 <= cfg.warmup_ratio < 1.0:
        raise ValueError(f"finetune.warmup_ratio={cfg.warmup_ratio} must be in [0, 1)")
    from transformers.trainer_utils import SchedulerType

    valid = [s.value for s in SchedulerType]
    if cfg.lr_scheduler not in valid:
        raise ValueError(f"finetune.lr_scheduler={cfg.lr_scheduler!r} is not valid; use one of {', '.join(valid)}")
    from introspection.core.config import MULTI_GPU_STRATEGIES

    if cfg.multi_gpu not in MULTI_GPU_STRATEGIES:
        raise ValueError(f"finetune.multi_gpu={cfg.multi_gpu!r} is not valid; use one of {', '.join(MULTI_GPU_STRATEGIES)}")


def require_cuda_for_qlora(method: str) -> None:
    import torch

    if method == "qlora" and not torch.cuda.is_available():
        raise ValueError("finetune=qlora needs a CUDA GPU (bitsandbytes 4-bit); on this machine use finetune=lora")


# --------------------------------------------------------------------------------------------------
# Resolved settings


def resolve_dtype(name: str, on_gpu: bool, method: str):
    import torch

    if name == "auto":
        # CPUs here have no bf16 units (bf16 ran 3.4x slower, docs/measurements.md), so fp32 on CPU.
        name = "bfloat16" if on_gpu else "float32"
    if name in ("bfloat16", "float16") and not on_gpu:
        raise ValueError(f"finetune.dtype={name} needs a GPU; use dtype=auto or float32 on CPU")
    if name == "float16" and method == "full":
        # Pure fp16 weights cannot be trained with AMP's grad scaler (it refuses to unscale fp16 grads).
        raise ValueError("finetune.dtype=float16 does not work with method=full; use bfloat16 or float32")
    return name, getattr(torch, name)


def lora_config(cfg):
    from peft import LoraConfig

    targets = list(cfg.lora.target_modules)
    # PEFT wants the string "all-linear", not a list holding it (it would look for a module of that name).
    target_modules: str | list[str] = "all-linear" if targets == ["all-linear"] else targets
    return LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=target_modules,
        bias="none",
        task_type="CAUSAL_LM",
        modules_to_save=None,  # vLLM cannot serve modules_to_save (lm_head / embeddings) adapters
    )


def planned_steps(n_rows: int, cfg) -> int:
    # Single process; under a multi-GPU launch the trainer's own count (recorded after training) is the truth.
    per_epoch = math.ceil(n_rows / (cfg.batch_size * cfg.gradient_accumulation_steps))
    return max(1, math.ceil(per_epoch * cfg.epochs))


def sft_config(cfg, output_dir: Path, *, on_gpu: bool, dtype_name: str, n_rows: int, report_to: str,
                progress: bool):
    from trl import SFTConfig

    planned = planned_steps(n_rows, cfg)
    scheduler = cfg.lr_scheduler
    if scheduler == "constant" and cfg.warmup_ratio > 0:
        # HF's "constant" schedule silently ignores warmup; honour the requested warmup instead.
        scheduler = "constant_with_warmup"
    return SFTConfig(
        output_dir=str(output_dir),
        num_train_epochs=cfg.epochs,
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        max_length=cfg.max_length,
        lr_scheduler_type=scheduler,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a float in [0, 1) is a ratio of total steps
        seed=cfg.seed,
        data_seed=cfg.seed,
        # SFTConfig defaults bf16=True; set precision explicitly from the resolved dtype.
        bf16=dtype_name == "bfloat16",
        fp16=dtype_name == "float16",
        use_cpu=not on_gpu,
        dataloader_pin_memory=on_gpu,
        # SFTConfig defaults gradient_checkpointing=True, which is slow on CPU for small models.
        gradient_checkpointing=cfg.gradient_checkpointing,
        completion_only_loss=True,  # loss on the answer (+ end-of-turn) only, never on the question
        assistant_only_loss=False,
        packing=False,
        save_strategy="no",  # only the final model is kept; no checkpoint-* folders
        logging_steps=max(1, planned // 25),
        logging_first_step=True,  # the first logged loss is the untrained baseline of the curve
        report_to=report_to,
        disable_tqdm=not progress,
    )


def plain_config(cfg) -> dict:
    if dataclasses.is_dataclass(cfg):
        return dataclasses.asdict(cfg)
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)  # a Hydra DictConfig


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("torch", "transformers", "trl", "peft", "accelerate", "datasets"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "absent"
    return out

