"""Finetune a model on hypothetical-question rows with TRL's SFTTrainer (docs/method.md §5.4).

Methods: "lora" (PEFT adapter), "full" (all weights), "qlora" (4-bit base via bitsandbytes, CUDA only).
Rows are TRL conversational prompt-completion rows (see data.py), so the loss falls on the assistant
answer and its end-of-turn token only, rendered with the same chat template that inference uses.

The output folder is written atomically: training happens in a hidden sibling folder that is renamed
into place only after the adapter (or full model), tokenizer and lineage.json are all saved.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from introspection.finetune.batch import check_batch, trained_batch
from introspection.finetune.data import rows_hash

log = logging.getLogger(__name__)

METHODS = ("lora", "qlora", "full")
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class FinetuneResult:
    adapter_dir: str  # the finished output folder (a LoRA adapter, or full weights when merged)
    merged: bool  # True: adapter_dir holds complete model weights (method "full"); False: a PEFT adapter
    train_loss: float  # mean loss over the last logging window (the end-of-training fit)
    train_token_accuracy: float | None  # TRL's mean_token_accuracy over the last logging window
    n_examples: int
    n_steps: int
    seconds: float  # wall time of the training loop alone
    tokens_per_second: float  # non-padding tokens processed per second of training
    hyperparameters: dict  # every resolved value, defaults included (also in lineage.json)


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


def _check_rows(rows: list[dict]) -> None:
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


def _check_config(cfg) -> None:
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
    from introspection.config import MULTI_GPU_STRATEGIES

    if cfg.multi_gpu not in MULTI_GPU_STRATEGIES:
        raise ValueError(f"finetune.multi_gpu={cfg.multi_gpu!r} is not valid; use one of {', '.join(MULTI_GPU_STRATEGIES)}")


def _require_cuda_for_qlora(method: str) -> None:
    import torch

    if method == "qlora" and not torch.cuda.is_available():
        raise ValueError("finetune=qlora needs a CUDA GPU (bitsandbytes 4-bit); on this machine use finetune=lora")


# --------------------------------------------------------------------------------------------------
# Resolved settings


def _resolve_dtype(name: str, on_gpu: bool, method: str):
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


def _lora_config(cfg):
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


def _planned_steps(n_rows: int, cfg) -> int:
    # Single process; under a multi-GPU launch the trainer's own count (recorded after training) is the truth.
    per_epoch = math.ceil(n_rows / (cfg.batch_size * cfg.gradient_accumulation_steps))
    return max(1, math.ceil(per_epoch * cfg.epochs))


def _sft_config(cfg, output_dir: Path, *, on_gpu: bool, dtype_name: str, n_rows: int, report_to: str,
                progress: bool):
    from trl import SFTConfig

    planned = _planned_steps(n_rows, cfg)
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


def _plain_config(cfg) -> dict:
    if dataclasses.is_dataclass(cfg):
        return dataclasses.asdict(cfg)
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)  # a Hydra DictConfig


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("torch", "transformers", "trl", "peft", "accelerate", "datasets"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "absent"
    return out


# --------------------------------------------------------------------------------------------------
# Trainer


def _trainer_dataset(rows: list[dict]):
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

    # revision: a hub model's resolved commit sha (introspection.models), so training loads what the keys name.
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

    _check_config(cfg)
    _require_cuda_for_qlora(cfg.method)
    check_pad_token(tokenizer)
    _check_rows(rows)
    if report_to not in ("none", "wandb"):
        raise ValueError(f"report_to={report_to!r} is not valid; use none or wandb")
    on_gpu = torch.cuda.is_available()
    if not on_gpu and not score_labelled_positions_only_on_cpu():
        log.warning("this TRL scores every position in the LM head on CPU: finetuning large-vocabulary models is slow")
    dtype_name, torch_dtype = _resolve_dtype(cfg.dtype, on_gpu, cfg.method)
    args = _sft_config(cfg, output_dir, on_gpu=on_gpu, dtype_name=dtype_name, n_rows=len(rows),
                       report_to=report_to, progress=progress)
    peft_config = None if cfg.method == "full" else _lora_config(cfg)
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
        train_dataset=_trainer_dataset(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    from introspection import faults

    if faults.armed("finetune-step"):
        trainer.add_callback(faults.trainer_callback())  # test hook: SIGKILL after step n (introspection/faults.py)
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
        **_plain_config(cfg),
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
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),  # this process's own (introspection/devices.py)
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
            "planned_steps": _planned_steps(len(rows), cfg),
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


def _last_logged(log_history: list[dict], key: str) -> float | None:
    for entry in reversed(log_history):
        if key in entry:
            return float(entry[key])
    return None


@contextlib.contextmanager
def _progress_bars(enabled: bool) -> Iterator[None]:
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


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def finetune(base_path: str, tokenizer, rows: list[dict], cfg, out_dir: Path, *, report_to: str = "none",
             progress: bool = True, revision: str | None = None, checkpoint_dir: Path | None = None,
             ranks: int = 1) -> FinetuneResult:
    """Train `cfg.method` on `rows` from the model at `base_path`; write adapter/model + lineage.json to out_dir.
    `ranks`: the processes of a multi-rank launch training together (1: this process alone).

    An existing out_dir is replaced only after the new one is complete. With checkpoint_dir, training
    checkpoints there and resumes from its latest checkpoint (finetune/checkpoints.py); stopped by SIGUSR2,
    it raises FinetuneStopped and writes no out_dir.
    """
    from introspection.finetune import checkpoints

    _check_config(cfg)
    _require_cuda_for_qlora(cfg.method)  # fail before any model loading
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Deterministic name so that every process of a multi-GPU launch agrees on it.
    work_dir = out_dir.with_name(f".{out_dir.name}.partial")
    if _is_main_process():
        for stale in (work_dir, _aside_name(out_dir)):  # left over by a crashed or killed run
            shutil.rmtree(stale, ignore_errors=True)

    started = time.time()
    try:
        with _progress_bars(progress):
            trainer, hyperparameters = build_trainer(base_path, tokenizer, rows, cfg, work_dir, report_to=report_to,
                                                     progress=progress, revision=revision, ranks=ranks)
            n_tokens = sum(len(ids) for ids in trainer.train_dataset["input_ids"])
            resume = checkpoints.attach(trainer, checkpoint_dir, int(getattr(cfg, "checkpoint_every_steps", 0) or 0))
            train_started = time.time()
            output = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
            train_seconds = time.time() - train_started
            checkpoints.raise_if_stopped(trainer)
            save_trained(trainer, work_dir)  # adapter (or full model) + tokenizer with its chat template
            trainer.accelerator.wait_for_everyone()

        log_history = list(trainer.state.log_history)
        final_loss = _last_logged(log_history, "loss")
        result = FinetuneResult(
            adapter_dir=str(out_dir),
            merged=cfg.method == "full",
            train_loss=final_loss if final_loss is not None else float(output.training_loss),
            train_token_accuracy=_last_logged(log_history, "mean_token_accuracy"),
            n_examples=len(trainer.train_dataset),
            n_steps=int(trainer.state.global_step),
            seconds=train_seconds,
            tokens_per_second=n_tokens * cfg.epochs / max(train_seconds, 1e-9),
            hyperparameters=hyperparameters,
        )
        if trainer.is_world_process_zero():
            lineage = {
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "base_path": str(base_path),
                "method": cfg.method,
                "merged": result.merged,
                "n_rows": len(rows),
                "n_examples": result.n_examples,  # after TRL dropped rows fully masked by truncation
                "rows_hash": rows_hash(rows),
                "hyperparameters": hyperparameters,
                "versions": _versions(),
                "train_loss": result.train_loss,
                "train_loss_mean": float(output.training_loss),
                "train_token_accuracy": result.train_token_accuracy,
                "n_steps": result.n_steps,
                "resumed_from_step": checkpoints.step_of(resume) if resume else None,  # a requeued job's resume
                "train_seconds": round(train_seconds, 3),
                "total_seconds": round(time.time() - started, 3),
                "tokens_per_second": result.tokens_per_second,
                "log_history": log_history,
            }
            (work_dir / "lineage.json").write_text(json.dumps(lineage, indent=2, default=str) + "\n")
            _move_into_place(work_dir, out_dir)
        return result
    finally:
        if _is_main_process() and work_dir.exists():
            shutil.rmtree(work_dir, ignore_errors=True)  # a failed run leaves nothing behind


def _aside_name(out_dir: Path) -> Path:
    return out_dir.with_name(f".{out_dir.name}.old")


def _move_into_place(work_dir: Path, out_dir: Path) -> None:
    # os.replace cannot overwrite a non-empty folder: move the old one aside first, delete it last.
    old = None
    if out_dir.exists():
        old = _aside_name(out_dir)
        if old.exists():
            shutil.rmtree(old)
        os.replace(out_dir, old)
    os.replace(work_dir, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# Label mask


def label_mask_report(tokenizer, row: dict, max_length: int) -> dict:
    """Tokenise one row exactly as SFTTrainer does and report which tokens carry the loss.

    Runs TRL's own `SFTTrainer._prepare_dataset` (chat template, prompt/completion split, label
    building, truncation) on a one-row dataset; only the trainer object around it is a stand-in,
    because preparing data needs no model. Returns {"tokens", "trained", "trained_text",
    "input_ids", "labels"}.
    """
    from trl import SFTConfig, SFTTrainer

    check_pad_token(tokenizer)
    _check_rows([row])
    with tempfile.TemporaryDirectory() as scratch, _progress_bars(False):
        args = SFTConfig(output_dir=scratch, max_length=max_length, completion_only_loss=True, bf16=False,
                         use_cpu=True, report_to="none", packing=False)
        # The attributes _prepare_dataset reads from the trainer, set as SFTTrainer.__init__ sets them
        # for conversational prompt-completion rows with completion_only_loss=True.
        stand_in = SimpleNamespace(_tokenizer=tokenizer, completion_only_loss=True, chat_template=None)
        prepared = SFTTrainer._prepare_dataset(stand_in, _trainer_dataset([row]), tokenizer, args, False, None,
                                               "label_mask_report")
    if len(prepared) == 0:
        raise ValueError(f"the prompt alone fills max_length={max_length}: no answer token would be trained")
    input_ids = list(prepared[0]["input_ids"])
    labels = list(prepared[0]["labels"])
    trained = [label != -100 for label in labels]
    return {
        "tokens": [tokenizer.decode([token_id]) for token_id in input_ids],
        "trained": trained,
        "trained_text": tokenizer.decode([t for t, keep in zip(input_ids, trained, strict=True) if keep]),
        "input_ids": input_ids,
        "labels": labels,
    }
