"""The batch a finetune trains with, read back from the trainer, and the check that it is the configured one.

transformers' Trainer decides the rows per optimizer step itself: per-device batch x max(1, n_gpu) (the
GPUs this process sees: more than one means nn.DataParallel) x gradient accumulation x data-parallel
ranks (Trainer.get_total_train_batch_size). lineage.json records that number, and a finetune whose number
differs from the configured one stops before training instead of recording a batch it did not train with.
"""

from __future__ import annotations

import os


def trained_batch(trainer) -> dict:
    """How many rows each optimizer step of `trainer` takes, and what that product is made of."""
    args = trainer.args
    return {
        "effective_batch_size": int(trainer.get_total_train_batch_size(args)),
        "per_device_train_batch_size": int(args.per_device_train_batch_size),
        "n_gpu": int(args.n_gpu),  # GPUs of this process (DataParallel when more than one)
        "gradient_accumulation_steps": int(args.gradient_accumulation_steps),
        "world_size": int(args.world_size),
    }


def configured_batch(cfg, ranks: int) -> int:
    """Rows per optimizer step the config asks for: batch_size per device x accumulation x ranks."""
    return int(cfg.batch_size) * int(cfg.gradient_accumulation_steps) * int(ranks)


def check_batch(batch: dict, cfg, ranks: int) -> None:
    """A one-line ValueError unless the trainer's rows per optimizer step are the configured ones."""
    expected = configured_batch(cfg, ranks)
    effective = getattr(cfg, "effective_batch_size", None)
    if effective is not None and int(effective) != expected:
        raise ValueError(f"finetune.effective_batch_size={effective} but finetune.batch_size={cfg.batch_size} x "
                         f"gradient_accumulation_steps={cfg.gradient_accumulation_steps} x {ranks} rank(s) = {expected}; "
                         "resolve the settings with stages.finetune_settings")
    if batch["effective_batch_size"] == expected:
        return
    devices = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
    raise ValueError(
        f"the trainer would take {batch['effective_batch_size']} rows per optimizer step "
        f"({batch['per_device_train_batch_size']} per device x {max(1, batch['n_gpu'])} GPU(s) this process sees x "
        f"{batch['gradient_accumulation_steps']} accumulation x {batch['world_size']} process(es)), not the configured "
        f"{expected} (finetune.batch_size={cfg.batch_size} x gradient_accumulation_steps="
        f"{cfg.gradient_accumulation_steps} x {ranks} rank(s)); CUDA_VISIBLE_DEVICES={devices}: each finetune process "
        "must see exactly its own device (introspection/core/devices.py)")
