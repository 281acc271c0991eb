"""The TRL SFTTrainer a finetune runs (docs/method.md §5.4): the model loaded by method, how it is saved, and the
hyperparameters it resolved; training itself runs in training.py.

Methods: "lora" (PEFT adapter), "full" (all weights), "qlora" (4-bit base via bitsandbytes, CUDA only).
Rows are TRL conversational prompt-completion rows (see data.py), so the loss falls on the assistant
answer and its end-of-turn token only, rendered with the same chat template that inference uses.
Settings are checked and resolved in sft_settings.py; torch and TRL are imported lazily.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from introspection.finetune.batch import check_batch, trained_batch
from introspection.finetune.sft_settings import (
    check_config,
    check_pad_token,
    check_rows,
    lora_config,
    plain_config,
    planned_steps,
    require_cuda_for_qlora,
    resolve_dtype,
    sft_config,
)

log = logging.getLogger(__name__)

def trainer_dataset(rows: list[dict]):
    from datasets import Dataset

    # Only the two training columns: metadata (item_id, task, ...) stays out of Arrow typing.
    return Dataset.from_list([{"prompt": row["prompt"], "completion": row["completion"]} for row in rows])


def qlora_quantization_config():
    """The 4-bit settings of finetune=qlora (QLoRA's NF4 with double quantisation, bf16 compute).

    The packed 4-bit weights are stored in the compute dtype (bnb_4bit_quant_storage): FSDP shards only
    tensors of one float dtype, and DeepSpeed ZeRO-3 likewise, so without it QLoRA cannot be sharded."""
    import torch
    from transformers import BitsAndBytesConfig

    compute_dtype = torch.bfloat16
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
        bnb_4bit_quant_storage=compute_dtype,
    )


def _load_model(base_path: str, method: str, torch_dtype, revision: str | None = None):
    from transformers import AutoModelForCausalLM

    # revision: a hub model's resolved commit sha (introspection.weights.resolve), so training loads what the keys name.
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "revision": revision}
    if method == "qlora":
        quantization = qlora_quantization_config()
        kwargs["quantization_config"] = quantization
        # The unquantised parts (norms, embeddings) in the storage dtype too: FSDP needs one dtype throughout.
        kwargs["dtype"] = quantization.bnb_4bit_quant_storage
    return AutoModelForCausalLM.from_pretrained(base_path, **kwargs)


def gather_full_weights_for_saving(trainer) -> None:
    """Make trainer.save_model write the whole model (finetune=full) from rank 0 under FSDP (a LoRA adapter
    is gathered alone instead: save_trained).

    Trainer.save_model saves nothing under FSDP unless the state dict type is FULL_STATE_DICT (it then
    gathers the shards onto rank 0). A sharded type suits mid-training checkpoints, which this trainer
    never writes (save_strategy "no"), so the final save always gathers, whatever the accelerate config
    says. DeepSpeed ZeRO-3 gathers PEFT adapters in save_model itself; a full model needs the config's
    stage3_gather_16bit_weights_on_model_save (zero3_save_16bit_model), which the shipped configs set.
    Either way the store checks the saved folder before sealing it (finetune/adapter_check.py)."""
    if not trainer.is_fsdp_enabled:
        return
    plugin = trainer.accelerator.state.fsdp_plugin
    # set_state_dict_type keeps an existing (sharded) state_dict_config; the full type needs the full configs.
    plugin.state_dict_config = None
    plugin.optim_state_dict_config = None
    plugin.set_state_dict_type("FULL_STATE_DICT")


def save_trained(trainer, out_dir: Path) -> None:
    """Save the trained adapter (or full model) and the tokenizer into out_dir, from rank 0.

    A LoRA adapter under FSDP is gathered alone (finetune/fsdp_adapter.py): Trainer.save_model would
    gather the whole model, frozen base included (~145 GB for a 70B), onto rank 0 to keep ~1.7 GB."""
    from introspection.finetune.fsdp_adapter import is_fsdp_adapter, save_fsdp_adapter

    if is_fsdp_adapter(trainer):
        save_fsdp_adapter(trainer.model_wrapped, trainer.accelerator.unwrap_model(trainer.model), out_dir,
                          trainer.processing_class, is_main=trainer.is_world_process_zero())
        return
    gather_full_weights_for_saving(trainer)
    trainer.save_model(str(out_dir))


def score_labelled_positions_only_on_cpu() -> bool:
    """Make TRL's fused LM head score only the labelled (answer) positions on CPU, as it does on GPUs.

    TRL scores every position of the batch unless the device runs Triton (fixed tile shapes avoid
    recompiles on compiled backends such as Neuron), then zeroes the unlabelled ones. Nothing is compiled
    on CPU, and there the wasted projections dominate: for Gemma's 262k-token vocabulary they took ~78%
    of each step. The loss, entropy and token accuracy are the same either way (tests/test_finetune.py).
    Returns False, changing nothing, where TRL no longer has this switch.
    """
    import trl.trainer.utils as trl_utils

    decide = getattr(trl_utils, "_use_triton", None)
    if decide is None or hasattr(decide, "__wrapped_decide__"):  # absent, or switched already
        return decide is not None

    def compact_on_cpu(device) -> bool:
        return device.type == "cpu" or decide(device)

    compact_on_cpu.__wrapped_decide__ = decide
    trl_utils._use_triton = compact_on_cpu
    return True


def build_trainer(base_path: str, tokenizer, rows: list[dict], cfg, output_dir: Path, *,
                  report_to: str = "none", progress: bool = True, revision: str | None = None, ranks: int = 1):
    """The SFTTrainer `finetune` runs, plus its resolved hyperparameters (no training happens here).

    `ranks`: the processes training together (1, or the launch's process count); a trainer that would take
    another number of rows per optimizer step than cfg's batch x accumulation x ranks is refused
    (finetune/batch.py)."""
    import torch
    from trl import SFTTrainer

    check_config(cfg)
    require_cuda_for_qlora(cfg.method)
    check_pad_token(tokenizer)
    check_rows(rows)
    if report_to not in ("none", "wandb"):
        raise ValueError(f"report_to={report_to!r} is not valid; use none or wandb")
    on_gpu = torch.cuda.is_available()
    if not on_gpu and not score_labelled_positions_only_on_cpu():
        log.warning("this TRL scores every position in the LM head on CPU: finetuning large-vocabulary models is slow")
    dtype_name, torch_dtype = resolve_dtype(cfg.dtype, on_gpu, cfg.method)
    args = sft_config(cfg, output_dir, on_gpu=on_gpu, dtype_name=dtype_name, n_rows=len(rows),
                       report_to=report_to, progress=progress)
    peft_config = None if cfg.method == "full" else lora_config(cfg)
    model = _load_model(base_path, cfg.method, torch_dtype, revision)
    n_embeddings = model.get_input_embeddings().num_embeddings
    if tokenizer.pad_token_id >= n_embeddings:
        # A pad token added to the tokenizer has no embedding row; resizing would need modules_to_save (not servable).
        raise ValueError(
            f"tokenizer pad token {tokenizer.pad_token!r} (id {tokenizer.pad_token_id}) is outside the model's "
            f"{n_embeddings}-row embedding table: pick an existing unused special token as pad"
        )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=trainer_dataset(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    from introspection.core import faults

    if faults.armed("finetune-step"):
        trainer.add_callback(faults.trainer_callback())  # test hook: SIGKILL after step n (introspection/core/faults.py)
    kept = len(trainer.train_dataset)
    if kept == 0:
        raise ValueError(f"every row's prompt fills finetune.max_length={cfg.max_length}: nothing to train; raise it")
    if kept < len(rows):
        # TRL drops rows whose answer was cut off entirely by truncation; say so rather than train on fewer silently.
        log.warning("finetune.max_length=%d drops %d of %d rows (prompt too long)", cfg.max_length, len(rows) - kept,
                    len(rows))
    batch = trained_batch(trainer)
    check_batch(batch, cfg, ranks)  # before any training: never record a batch that was not trained with
    if not progress:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # it prints every log dict when tqdm is off
    hyperparameters = {
        **plain_config(cfg),
        "resolved": {
            "device": "cuda" if on_gpu else "cpu",
            "dtype": dtype_name,
            "bf16": args.bf16,
            "fp16": args.fp16,
            "lr_scheduler_type": str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)),
            "warmup_steps": args.warmup_steps,
            # Rows per optimizer step as the trainer takes them (per device x n_gpu x accumulation x ranks).
            "effective_batch_size": batch["effective_batch_size"],
            "per_device_train_batch_size": batch["per_device_train_batch_size"],
            "n_gpu": batch["n_gpu"],
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),  # this process's own (introspection/core/devices.py)
            "world_size": args.world_size,
            # How the ranks really trained (NO, MULTI_CPU, MULTI_GPU, FSDP, DEEPSPEED): accelerate picks it at launch.
            "distributed_type": trainer.accelerator.distributed_type.value,
            "optim": str(getattr(args.optim, "value", args.optim)),
            "weight_decay": args.weight_decay,
            "max_grad_norm": args.max_grad_norm,
            "adam_beta1": args.adam_beta1,
            "adam_beta2": args.adam_beta2,
            "adam_epsilon": args.adam_epsilon,
            "completion_only_loss": args.completion_only_loss,
            "loss_type": args.loss_type,
            "max_length": args.max_length,
            "truncation_mode": args.truncation_mode,
            "packing": args.packing,
            "logging_steps": args.logging_steps,
            "planned_steps": planned_steps(len(rows), cfg),
            "lora": None if peft_config is None else {
                "r": peft_config.r,
                "lora_alpha": peft_config.lora_alpha,
                "lora_dropout": peft_config.lora_dropout,
                # PEFT expands "all-linear" into full module paths; the distinct leaf names are what matter.
                "target_modules": sorted({name.rsplit(".", 1)[-1] for name in peft_config.target_modules})
                if isinstance(peft_config.target_modules, (set, list)) else peft_config.target_modules,
                "bias": peft_config.bias,
                "use_rslora": peft_config.use_rslora,
            },
            "trainable_parameters": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
            "chat_template_sha256": _sha256(tokenizer.chat_template),
            "pad_token": tokenizer.pad_token,
            "eos_token": tokenizer.eos_token,
        },
    }
    return trainer, hyperparameters


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()



@contextlib.contextmanager
def progress_bars(enabled: bool) -> Iterator[None]:
    """Silence the datasets / transformers progress bars when enabled is False; restore them after."""
    import datasets
    from transformers.utils import logging as hf_logging

    if enabled:
        yield
        return
    datasets_on = datasets.is_progress_bar_enabled()
    transformers_on = hf_logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if datasets_on:
            datasets.enable_progress_bars()
        if transformers_on:
            hf_logging.enable_progress_bar()

