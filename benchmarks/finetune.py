"""Finetuning: our finetune stage (the real path) vs a plain TRL SFTTrainer script.

"Ours" is `stages.finetune_model` on a fresh store: it spawns the worker, which builds the trainer
(`finetune.trainer.build_trainer`), trains, saves the adapter and lineage, and the store checksums it.
"Raw" builds SFTConfig / LoraConfig / SFTTrainer by hand with the same hyperparameters on the same
rows, trains and saves. Both count training tokens the same way: the tokenised length of every row
the trainer kept, times the epochs (TRL's own `num_tokens`, logged beside it, counts the same
non-padding tokens), over the wall seconds of `trainer.train()`.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from benchmarks.common import TreeSampler, fresh_store, load1, model_ref, rate, settle, spawn_call, unique_dir


def bench_rows(n_rows: int, work: Path, seed: int = 42) -> list[dict]:
    """n_rows SFT rows shaped like the self-training data: hypothetical prompts about the demo's train
    items, answered with the property of the item's own text (a stand-in for a model's answer)."""
    from benchmarks.common import compose_config
    from introspection.finetune.data import sft_rows
    from introspection.paper.properties import get_property, property_value
    from introspection.stages.items import build_items

    cfg = compose_config(["tasks=demo"])
    n_props = max(1, min(len(v) for v in cfg.tasks.properties.values()))
    per_task = -(-n_rows // (n_props * len(cfg.tasks.train_tasks))) + 1
    cfg = compose_config(["tasks=demo", f"tasks.n_train_items={per_task}"])
    plan = build_items(cfg.tasks, fresh_store(work, "rows"))
    requests = {r.request_id: r for r in plan.hypothetical_requests(plan.train_items)}
    examples = []
    for it in plan.train_items:
        for name in plan.properties[it.task]:
            value = property_value(get_property(name), it.string, it.target)
            if value:
                examples.append({"prompt": requests[f"hyp|{it.item_id}|{name}"].messages, "completion": value,
                                 "item_id": it.item_id, "task": it.task, "property": name})
    rows = sft_rows(examples, max_examples=n_rows, seed=seed)
    if len(rows) < n_rows:
        raise ValueError(f"only {len(rows)} distinct rows could be built; lower --train-rows")
    return rows


def _num_tokens(log_history: list[dict]) -> float | None:
    values = [e["num_tokens"] for e in log_history if "num_tokens" in e]
    return float(values[-1]) if values else None


def measure_ours(work: Path, entry: dict, rows: list[dict], finetune: dict, interval: float) -> dict:
    from introspection.finetune.data import rows_hash, write_rows
    from introspection.stages.adapters import finetune_model

    store = fresh_store(work, "finetune-ours")
    model = model_ref(entry, store)
    rows_path = write_rows(rows, store.root / "bench_rows.jsonl")
    quiet, before = settle(), load1()
    with TreeSampler(os.getpid(), include_root=False, interval=interval) as rss:
        started = time.perf_counter()
        finetune_model(store, model, rows_path, rows_hash(rows), finetune, f"{model.label}[bench]")
        wall = time.perf_counter() - started
    folder = next((store.root / "artifacts" / "adapters").iterdir())
    info = json.loads((folder / "_manifest.json").read_text())["info"]
    lineage = json.loads((folder / "adapter" / "lineage.json").read_text())
    tokens = info["tokens_per_second"] * info["seconds"]
    return {"what": "stages.finetune_model (spawned worker, build_trainer, save, store)",
            "n_examples": info["n_examples"], "n_steps": info["n_steps"], "train_tokens": round(tokens),
            "trl_num_tokens": _num_tokens(lineage["log_history"]), "train_seconds": round(info["seconds"], 2),
            "tokens_per_second": round(info["tokens_per_second"], 1), "train_loss": info["train_loss"],
            "e2e_seconds": round(wall, 2), "examples_per_second_e2e": rate(info["n_examples"] * finetune["epochs"], wall),
            **rss.report(), "load1_before": before, "settle": quiet, "load1_after": load1()}


def measure_raw(work: Path, entry: dict, model, rows: list[dict], finetune: dict, interval: float) -> dict:
    payload = {"path": model.resolved["path"], "chat_template": model.resolved["chat_template"],
               "rows": [{"prompt": r["prompt"], "completion": r["completion"]} for r in rows],
               "finetune": finetune, "out_dir": str(unique_dir(work, "finetune-raw"))}
    quiet, before = settle(), load1()
    with TreeSampler(os.getpid(), include_root=False, interval=interval) as rss:
        result, wall = spawn_call(raw_trl, payload, "raw TRL SFTTrainer")
    return {**result, "e2e_seconds": round(wall, 2),
            "examples_per_second_e2e": rate(result["n_examples"] * finetune["epochs"], wall),
            **rss.report(), "load1_before": before, "settle": quiet, "load1_after": load1()}


# --- the raw script (runs in a spawned process; plain TRL / PEFT / transformers code) --------------
def raw_trl(p: dict) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    cfg = p["finetune"]
    if cfg["method"] not in ("lora", "full"):
        raise ValueError(f"the raw TRL baseline covers method lora and full, not {cfg['method']}")
    on_gpu = torch.cuda.is_available()
    tokenizer = AutoTokenizer.from_pretrained(p["path"])
    if p["chat_template"]:
        tokenizer.chat_template = p["chat_template"]
    model = AutoModelForCausalLM.from_pretrained(p["path"], dtype=torch.bfloat16 if on_gpu else torch.float32)
    n_rows = len(p["rows"])
    steps = math.ceil(math.ceil(n_rows / (cfg["batch_size"] * cfg["gradient_accumulation_steps"])) * cfg["epochs"])
    args = SFTConfig(
        output_dir=p["out_dir"], num_train_epochs=cfg["epochs"], learning_rate=cfg["learning_rate"],
        per_device_train_batch_size=cfg["batch_size"], gradient_accumulation_steps=cfg["gradient_accumulation_steps"],
        max_length=cfg["max_length"], lr_scheduler_type=cfg["lr_scheduler"], warmup_steps=cfg["warmup_ratio"],
        seed=cfg["seed"], data_seed=cfg["seed"], bf16=on_gpu, fp16=False, use_cpu=not on_gpu,
        dataloader_pin_memory=on_gpu, gradient_checkpointing=cfg["gradient_checkpointing"],
        completion_only_loss=True, packing=False, save_strategy="no", logging_steps=max(1, steps // 25),
        logging_first_step=True, report_to="none",
    )
    targets = list(cfg["lora"]["target_modules"])
    peft_config = None if cfg["method"] == "full" else LoraConfig(
        r=cfg["lora"]["r"], lora_alpha=cfg["lora"]["alpha"], lora_dropout=cfg["lora"]["dropout"],
        target_modules="all-linear" if targets == ["all-linear"] else targets, bias="none", task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(p["rows"]),
                         processing_class=tokenizer, peft_config=peft_config)
    n_tokens = sum(len(ids) for ids in trainer.train_dataset["input_ids"]) * cfg["epochs"]
    started = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - started
    trainer.save_model(p["out_dir"])
    return {"what": "trl.SFTTrainer(SFTConfig, LoraConfig) written by hand, train + save_model",
            "n_examples": len(trainer.train_dataset), "n_steps": int(trainer.state.global_step),
            "train_tokens": round(n_tokens), "trl_num_tokens": _num_tokens(trainer.state.log_history),
            "train_seconds": round(seconds, 2), "tokens_per_second": round(n_tokens / seconds, 1),
            "train_loss": _last_loss(trainer.state.log_history, float(output.training_loss)),
            "trl_train_runtime": output.metrics.get("train_runtime")}


def _last_loss(log_history: list[dict], fallback: float) -> float:
    """The last logged training loss, as our stage records it."""
    values = [e["loss"] for e in log_history if "loss" in e]
    return float(values[-1]) if values else fallback
