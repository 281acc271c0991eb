"""Train a model on hypothetical-question rows and write its adapter folder (docs/method.md §5.4).

The trainer is trainer.py's; this module runs it, checkpointing and resuming (checkpoints.py), and records
the run in lineage.json.

The output folder is written atomically: training happens in a hidden sibling folder that is renamed
into place only after the adapter (or full model), tokenizer and lineage.json are all saved.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from introspection.finetune.data import rows_hash
from introspection.finetune.sft_settings import check_config, require_cuda_for_qlora, versions
from introspection.finetune.trainer import build_trainer, progress_bars, save_trained

log = logging.getLogger(__name__)


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


def _last_logged(log_history: list[dict], key: str) -> float | None:
    for entry in reversed(log_history):
        if key in entry:
            return float(entry[key])
    return None


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

    check_config(cfg)
    require_cuda_for_qlora(cfg.method)  # fail before any model loading
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Deterministic name so that every process of a multi-GPU launch agrees on it.
    work_dir = out_dir.with_name(f".{out_dir.name}.partial")
    if _is_main_process():
        for stale in (work_dir, _aside_name(out_dir)):  # left over by a crashed or killed run
            shutil.rmtree(stale, ignore_errors=True)

    started = time.time()
    try:
        with progress_bars(progress):
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
                "versions": versions(),
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
