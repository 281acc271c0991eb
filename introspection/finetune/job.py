"""One finetune as a spawned process runs it: a plain-dict payload in (introspection/core/payload.py), a checked,
trained folder out.

Both the single-process worker (worker.finetune_worker) and every rank of a multi-GPU launch
(finetune/distributed.py) train through `train_from_payload`, and both check the saved folder with
`check_trained_folder` inside the store's build, so a folder that cannot be loaded is never sealed.
"""

from __future__ import annotations

import os
from pathlib import Path


def train_from_payload(payload: dict, folder: Path) -> dict:
    """Train the payload's model on its rows into folder/adapter; return the artifact's info.

    Also what every rank of a multi-GPU launch runs (finetune/distributed.py)."""
    from introspection.core.config import FinetuneConfig
    from introspection.core.payload import config_from_payload, record_from_payload
    from introspection.finetune import checkpoints
    from introspection.finetune.data import read_rows
    from introspection.finetune.training import finetune
    from introspection.weights.resolve import ResolvedModel, load_tokenizer

    checkpoints.stop_on_signal()  # Slurm's time-limit signal: checkpoint and stop, not die mid-step
    model = payload["model"]
    resolved = record_from_payload(ResolvedModel, model["resolved"])
    cfg = config_from_payload(FinetuneConfig, payload["finetune"])  # nested settings (lora, openai) typed too
    rows = read_rows(Path(payload["rows_path"]))
    tokenizer = load_tokenizer(resolved)
    # logger.log_training: the orchestrator set this switch and the W&B project, group, mode and folder
    # (tracking.training_logging); TRL's W&B callback reads them from the environment.
    report_to = "wandb" if os.environ.get("INTROSPECTION_WANDB_TRAINING") == "1" else "none"
    if report_to == "wandb":
        os.environ["WANDB_NAME"] = f"finetune {payload['label']}"
    # Checkpoints under the store, keyed by the adapter: a requeued job resumes where this one stopped.
    checkpoint_dir = checkpoints.checkpoint_folder(payload["store_root"], payload["key"])
    # ranks: the launch's process count (finetune/distributed.py), 1 in a single-process worker; the trainer
    # refuses to train with another batch than the configured one (finetune/batch.py).
    result = finetune(resolved.path, tokenizer, rows, cfg, folder / "adapter", report_to=report_to,
                      revision=resolved.revision, checkpoint_dir=checkpoint_dir, ranks=int(payload.get("ranks", 1)))
    return {"label": payload["label"], "base": model["label"], "merged": result.merged, "train_loss": result.train_loss,
            "train_token_accuracy": result.train_token_accuracy, "n_examples": result.n_examples,
            "n_steps": result.n_steps, "seconds": result.seconds, "tokens_per_second": result.tokens_per_second,
            "hyperparameters": result.hyperparameters}


def check_trained_folder(payload: dict, folder: Path, info: dict) -> dict:
    """Refuse (one-line ValueError) a trained folder that PEFT / transformers cannot load onto the base.

    Every finetune path calls this inside the store's build, so a failure seals nothing."""
    from introspection.finetune.adapter_check import check_saved_model

    check_saved_model(folder / "adapter", payload["model"]["resolved"]["path"], merged=bool(info["merged"]))
    return info
