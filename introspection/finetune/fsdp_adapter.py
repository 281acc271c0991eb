"""Saving a LoRA adapter trained under FSDP without gathering the frozen base weights.

transformers' Trainer.save_model under FSDP takes the model's FULL_STATE_DICT (accelerate's
get_state_dict): every shard of every weight, the frozen base included, is gathered onto rank 0's host
memory (~145 GB for a 70B model in bf16), and PeftModel.save_pretrained then keeps the adapter (~1.7 GB).
torch's get_model_state_dict(ignore_frozen_params=True) drops the frozen weights only after gathering them.

Here only the trainable parameters are gathered, one FSDP unit at a time:
- FSDP1 (accelerate's default, fsdp_version 1): transformers wraps each LoRA layer in an FSDP unit of its
  own (PEFT's fsdp_auto_wrap_policy, set by Trainer for a PeftModel), so a unit's flat parameter is
  trainable (LoRA) or frozen (base), never both under use_orig_params=false. Only units whose flat
  parameter requires grad are unsharded (FSDP.summon_full_params, recurse=False), one at a time. A
  unit that mixes both (use_orig_params=true with another wrap policy) is gathered whole, with a warning:
  still one unit, never the model.
- FSDP2 (fully_shard): every parameter is a DTensor; each trainable one is gathered alone (full_tensor).
Rank 0 then writes the adapter file and its config as PeftModel.save_pretrained lays them out. Every
rank must call `save_fsdp_adapter` (the gathers are collective).
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

WRAPPER_PREFIXES = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")


def is_fsdp_adapter(trainer) -> bool:
    """Whether `trainer` trains a PEFT adapter under FSDP."""
    if not getattr(trainer, "is_fsdp_enabled", False):
        return False
    from peft import PeftModel

    return isinstance(trainer.accelerator.unwrap_model(trainer.model), PeftModel)


def clean_name(name: str) -> str:
    """A parameter's name without the wrappers' path segments (FSDP, activation checkpointing, compile)."""
    for prefix in WRAPPER_PREFIXES:
        name = name.replace(prefix, "")
    return name


def _is_rank0() -> bool:
    import torch.distributed as dist

    return not dist.is_initialized() or dist.get_rank() == 0


def _attribute(module, dotted: str):
    path, _, attr = dotted.rpartition(".")
    return getattr(module.get_submodule(path) if path else module, attr)


def adapter_state_dict(wrapped) -> dict:
    """The trainable parameters of the FSDP-wrapped model, whole, on CPU, named as in the unwrapped model:
    on rank 0; the other ranks take part in the gathers and get {}."""
    from torch.distributed.tensor import DTensor

    rank0 = _is_rank0()
    if any(isinstance(p, DTensor) for p in wrapped.parameters()):  # FSDP2: one gather per trainable parameter
        state = {}
        for name, param in wrapped.named_parameters():
            if param.requires_grad:
                full = param.full_tensor() if isinstance(param, DTensor) else param
                if rank0:
                    state[clean_name(name)] = full.detach().to("cpu", copy=True)
        return state
    return _fsdp1_adapter_state_dict(wrapped, rank0)


def _fsdp1_adapter_state_dict(wrapped, rank0: bool) -> dict:
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    state = {}
    for prefix, unit in wrapped.named_modules():  # the same order on every rank: the gathers pair up
        if not isinstance(unit, FSDP):
            continue
        flat = unit._flat_param  # this unit's own parameters, flattened (nested units have theirs)
        if flat is None or not flat.requires_grad:
            continue  # frozen weights only: never gathered
        originals = flat._params  # use_orig_params=true: the original parameters, each with its requires_grad
        trainable = [True] * len(flat._fqns) if originals is None else [p.requires_grad for p in originals]
        if not all(trainable):
            log.warning("FSDP unit %s holds frozen and trainable parameters: it is gathered whole to save the "
                        "adapter (wrap LoRA layers in units of their own, as PEFT's fsdp_auto_wrap_policy does)",
                        clean_name(prefix) or "(root)")
        # One LoRA matrix per unit (megabytes): unsharded where it lives, then copied to CPU by rank 0.
        with FSDP.summon_full_params(unit, recurse=False, writeback=False):
            if not rank0:
                continue
            for fqn, keep in zip(flat._fqns, trainable, strict=True):
                if keep:
                    name = clean_name(f"{prefix}.{fqn}" if prefix else fqn)
                    state[name] = _attribute(unit.module, fqn).detach().to("cpu", copy=True)
    return state


def adapter_file_tensors(state: dict, adapter_name: str) -> dict:
    """The adapter file's tensors: PEFT stores `...q_proj.lora_A.weight` for the model's
    `...q_proj.lora_A.<adapter name>.weight` (get_peft_model_state_dict's documented format)."""
    out = {}
    for name, tensor in state.items():
        parts = name.split(".")
        out[".".join(part for part in parts if part != adapter_name)] = tensor.contiguous()
    return out


def save_fsdp_adapter(wrapped, peft_model, out_dir: Path, tokenizer, is_main: bool) -> dict:
    """Gather the adapter (collective: every rank calls this) and write it, with its config and the tokenizer,
    from the main process into out_dir, as PeftModel.save_pretrained lays it out. Returns what was gathered
    (empty off rank 0).

    PeftModel.save_pretrained(state_dict=...) itself cannot be used here: it picks the adapter's entries by
    module paths, and under nested FSDP units those paths hold `_fsdp_wrapped_module` segments that the
    state dict's names do not (it saved an empty adapter in tests/test_multi_gpu.py)."""
    state = adapter_state_dict(wrapped)
    if not is_main:
        return state
    if not state:
        raise RuntimeError("the FSDP-wrapped model has no trainable parameter to save as an adapter")
    from safetensors.torch import save_file

    adapter_name = peft_model.active_adapter
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(adapter_file_tensors(state, adapter_name), str(out_dir / "adapter_model.safetensors"),
              metadata={"format": "pt"})
    config = peft_model.peft_config[adapter_name]
    training_mode = config.inference_mode
    config.inference_mode = True  # as PeftModel.save_pretrained writes it: loaded for inference by default
    try:
        config.save_pretrained(str(out_dir))
    finally:
        config.inference_mode = training_mode
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out_dir))
    return state
