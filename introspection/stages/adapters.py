"""The finetune stage: a base model trained on rows into an adapter (or full weights), built by a spawned worker,
by every rank of a multi-GPU launch, or by a server's fine-tuning API."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path

from introspection.core import devices
from introspection.core.payload import to_payload
from introspection.core.profile import Profile, finetune_work, make_record
from introspection.core.store import Store, digest
from introspection.finetune.checkpoints import discard as discard_checkpoints
from introspection.finetune.time_limit import finetune_in_flight
from introspection.stages.finetune_settings import adapter_key, settings_for_model
from introspection.stages.model_ref import ModelRef
from introspection.stages.worker_runs import run_in_subprocess, wait_for_live_builders

log = logging.getLogger(__name__)


def finetune_model(store: Store, base: ModelRef, rows_path: Path, rows_key: str, finetune_cfg, label: str, *,
                   profile: Profile | None = None) -> ModelRef:
    """Finetune `base` on the rows; returns the finetuned model (base + adapter)."""
    if base.entry.get("source") == "server" and finetune_cfg.get("api") == "openai":  # trained by its service
        from introspection.finetune.openai_finetune import finetune_server_model

        entry, resolved = finetune_server_model(store, base, rows_path, rows_key, finetune_cfg, label)
        return ModelRef(label, entry, resolved)
    if base.entry.get("source") == "server":  # an adapter of the weights it serves, trained here, served there
        trained = finetune_model(store, served_weights(store, base), rows_path, rows_key, finetune_cfg, label,
                                 profile=profile)
        if trained.adapter_key is None:  # finetune=full: new weights, not an adapter (refused at start)
            raise ValueError(f"{label}: finetune.method={finetune_cfg.get('method')} made complete weights, which the server "
                             "of a served model cannot load; use finetune.method=lora or qlora")
        return base.with_adapter(label, Path(trained.adapter_dir), trained.adapter_key)
    started = time.time()  # for the profile's record of a finetune that is not the worker's (reused, multi-GPU)
    cfg = settings_for_model(finetune_cfg, base)
    key = adapter_key(base, rows_key, cfg)
    if store.get("adapters", key) is None:
        wait_for_live_builders(store, "adapters", [key])  # then reused, unless that job failed
    if store.get("adapters", key) is None:
        log.info("finetuning %s on %s (learning rate %g, batch %d per device x %d accumulation, multi_gpu %s, "
                 "gradient checkpointing %s)", base.label, rows_path, cfg["learning_rate"], cfg["batch_size"],
                 cfg["gradient_accumulation_steps"], cfg["multi_gpu"], cfg["gradient_checkpointing"])
        payload = to_payload({"store_root": store.root, "key": key, "model": base, "rows_path": rows_path,
                              "finetune": cfg, "label": label})
        # Slurm's time-limit signal waits for this finetune to checkpoint before the job is requeued.
        with finetune_in_flight(f"finetuning {label}"):
            if cfg.get("multi_gpu", "none") == "none":
                from introspection.stages.worker import finetune_worker

                # The worker builds under the key's lock and reports computed, or reused when another job
                # sealed the adapter while it waited for the lock.
                run_in_subprocess(store, finetune_worker, payload, f"finetuning {label}",
                                  gpus=devices.finetune_devices(cfg, base.entry), profile=profile)  # one: no DataParallel
            else:  # every rank trains together under `accelerate launch`; this process holds the store's lock
                from introspection.finetune.distributed import finetune_on_ranks

                store.count_worker_run()
                n = int(base.entry["gpus"])
                built = len(store.computed)
                store.get_or_build("adapters", key, lambda folder: finetune_on_ranks(payload, folder, n))  # counts it
                trained = f"adapters/{key[:12]}" in store.computed[built:]  # (the other side's thread may add too)
                _record_finetune(profile, store, label, base, started, reused=not trained, key=key)
    else:
        store.count_reused("adapters", key)
        _record_finetune(profile, store, label, base, started, reused=True)
    folder = store.get("adapters", key)
    if folder is None:
        raise RuntimeError(f"finetuning {label} finished without writing its adapter")
    discard_checkpoints(store.root, key)  # sealed: nothing left to resume
    if store.info("adapters", key).get("merged"):  # finetune=full: the folder holds complete weights
        resolved = {**base.resolved, "path": str(folder / "adapter"), "fingerprint": digest([base.fingerprint, key])}
        return ModelRef(label, base.entry, resolved)
    return base.with_adapter(label, folder / "adapter", key)


def served_weights(store: Store, model: ModelRef) -> ModelRef:
    """The open weights a server model's `weights` names, as a model to finetune (inference/server_lora.py):
    the same weights give the same fingerprint, so the adapter an in-process run trained is reused."""
    from introspection.core.config import ModelEntry
    from introspection.inference.server_lora import served_weights_entry
    from introspection.weights.resolve import resolve_model

    entry = served_weights_entry(ModelEntry(**model.entry))
    resolved = resolve_model(entry, store.root, where=f"{model.label} weights")
    return ModelRef(model.label, asdict(entry), asdict(resolved))


def _record_finetune(profile: Profile | None, store: Store, label: str, base: ModelRef, started: float, reused: bool,
                     key: str = "") -> None:
    """The profile's record of a finetune this process saw from outside: reused (the wall is the lookup), or
    trained on several GPUs by `accelerate launch` (rows and tokens from the adapter's info; the ranks'
    memory is not measured here)."""
    if profile is None:
        return
    work = finetune_work({} if reused else store.info("adapters", key))
    record = make_record(f"finetune {label}", "finetune", base.label, started, time.time(), reused=reused, **work)
    record.peak_rss_gib = record.peak_gpu_gib = None  # this process's figures would be mistaken for the ranks'
    profile.add(record)
