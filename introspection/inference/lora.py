"""LoRA adapters for serving: read an adapter's rank, and fold an adapter into its base model.

vLLM needs `max_lora_rank` at engine start, so the rank is read from adapter_config.json
(`r`, and the largest value in `rank_pattern`). On CPU a merged checkpoint serves ~3x faster than
LoRARequest with identical outputs (docs/measurements.md), so merged folders are built once and cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # values vLLM accepts for max_lora_rank (>= 8)
MERGE_INFO = "merge_info.json"
# Safetensors shards of a merged model: saving gathers one shard at a time in host memory (transformers'
# default, 50GB, would hold a third of a 70B model there at once).
MERGED_SHARD_SIZE = "5GB"


class AdapterError(ValueError):
    """An adapter folder that cannot be served (message is one line)."""


def read_adapter_config(adapter_dir: str | Path) -> dict[str, Any]:
    path = Path(adapter_dir) / "adapter_config.json"
    if not path.is_file():
        raise AdapterError(f"adapter folder {adapter_dir} has no adapter_config.json (not a PEFT adapter)")
    return json.loads(path.read_text())


def adapter_rank(adapter_dir: str | Path) -> int:
    """The largest LoRA rank in the adapter: `r`, or a bigger per-module value from `rank_pattern`."""
    cfg = read_adapter_config(adapter_dir)
    if "r" not in cfg:
        raise AdapterError(f"adapter {adapter_dir}: adapter_config.json has no 'r' (only LoRA is supported)")
    ranks = [int(cfg["r"])] + [int(v) for v in (cfg.get("rank_pattern") or {}).values()]
    return max(ranks)


def vllm_max_lora_rank(rank: int) -> int:
    """Round a rank up to the next value vLLM accepts for `max_lora_rank`."""
    for supported in VLLM_LORA_RANKS:
        if rank <= supported:
            return supported
    raise AdapterError(f"LoRA rank {rank} exceeds vLLM's largest max_lora_rank {VLLM_LORA_RANKS[-1]}; train with "
                       f"finetune.lora.r<={VLLM_LORA_RANKS[-1]}, or serve with inference.lora_serving=merge or inference=hf")


def adapter_modules_to_save(adapter_dir: str | Path) -> list[str]:
    return list(read_adapter_config(adapter_dir).get("modules_to_save") or [])


def adapter_digest(adapter_dir: str | Path) -> str:
    """sha256 over the adapter's config and weight files (names and contents)."""
    folder = Path(adapter_dir)
    digest = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        if p.is_file() and (p.name.startswith("adapter_") or p.suffix == ".safetensors"):
            digest.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return digest.hexdigest()


def merge_dtype(entry_dtype: str, on_gpu: bool) -> str:
    """The dtype a model entry's merge runs in: the entry's dtype; `auto` is the checkpoint's own on a GPU
    (merge_adapter reads it) and float32 on a CPU, as the demo's merges always were (CPUs without bf16
    units emulate it, docs/measurements.md)."""
    return entry_dtype if entry_dtype != "auto" or on_gpu else "float32"


def checkpoint_dtype(dtype: str, base_path: str | Path, revision: str | None = None) -> str:
    """`dtype`, with `auto` resolved to the dtype the checkpoint's config.json records (float32 where it
    records none, as transformers loads such a checkpoint), so a merge key always names a real dtype."""
    if dtype != "auto":
        return dtype
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(base_path), revision=revision)
    found = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    return str(found).removeprefix("torch.") if found is not None else "float32"


def merge_adapter(base_path: str | Path, adapter_dir: str | Path, out_dir: str | Path, dtype: str = "float32",
                  revision: str | None = None) -> Path:
    """Write base + adapter merged (`merge_and_unload`) as a plain checkpoint at out_dir; return out_dir.

    Cached as a sealed folder (introspection.core.store.sealed_folder): if out_dir holds a merge of this base and
    this adapter content that still matches its manifest, nothing is done; a folder whose files changed
    since (or an unsealed one from an older version) is rebuilt, never served. Built under a temporary name,
    renamed when complete, under a file lock; a killed build's folder is removed by the next one.
    `dtype` is the dtype the merge is loaded, computed and saved in ("auto": the checkpoint's own, resolved
    before keying, so a float32 merge is never served for a bf16 request); `revision` is a hub base's
    commit sha (ResolvedModel.revision), so the base merged is the base that was keyed.
    Where this process sees CUDA GPUs the model loads straight onto them (device_map=auto spreads it over
    every visible GPU: a 70B bf16 model over a side's 4 GPUs, never in host memory as a whole); on a CPU it
    loads in host memory. Saved as safetensors shards of MERGED_SHARD_SIZE.
    """
    from introspection.core.store import sealed_folder

    info = merge_info(base_path, adapter_dir, dtype, revision)

    def build(tmp: Path) -> None:
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        t0 = time.perf_counter()
        on_gpu = torch.cuda.is_available()
        log.info("merging adapter %s into %s in %s on %s", adapter_dir, base_path, info["dtype"],
                 f"{torch.cuda.device_count()} GPU(s)" if on_gpu else "the CPU")
        placement = {"device_map": "auto"} if on_gpu else {}
        base = AutoModelForCausalLM.from_pretrained(str(base_path), dtype=getattr(torch, info["dtype"]),
                                                    revision=revision, **placement)
        # PEFT computes each layer's delta in the adapter's fp32 and adds it to the weight in its own dtype.
        merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload(progressbar=True)
        # The base tokenizer (not a training copy saved beside the adapter) keeps the chat template
        # identical to the unmerged model's.
        tokenizer = AutoTokenizer.from_pretrained(str(base_path), revision=revision)
        merged.save_pretrained(tmp, max_shard_size=MERGED_SHARD_SIZE)
        tokenizer.save_pretrained(tmp)
        (tmp / MERGE_INFO).write_text(json.dumps(info))
        log.info("merged model written to %s in %.1f s", out_dir, time.perf_counter() - t0)

    return sealed_folder(Path(out_dir), build, info, accept=lambda folder: _merge_matches(folder, info))


def merge_info(base_path: str | Path, adapter_dir: str | Path, dtype: str = "float32",
               revision: str | None = None) -> dict[str, str]:
    """What a merged folder was built from, saved in it as merge_info.json and compared before every use;
    `dtype` as the merge runs in it (auto resolved to the checkpoint's)."""
    info = {"base": str(base_path), "adapter_sha256": adapter_digest(adapter_dir),
            "dtype": checkpoint_dtype(dtype, base_path, revision)}
    if revision is not None:  # a hub base; left out otherwise, so folders merged before still match
        info["revision"] = revision
    return info


def merged_folder_ready(base_path: str | Path, adapter_dir: str | Path, out_dir: str | Path, dtype: str = "float32",
                        revision: str | None = None) -> bool:
    """True when out_dir already holds this merge, intact: merge_adapter would return at once (a caller can
    skip starting a process for it)."""
    from introspection.core.store import sealed_folder_ok

    out_dir = Path(out_dir)
    return sealed_folder_ok(out_dir) and _merge_matches(out_dir, merge_info(base_path, adapter_dir, dtype, revision))


def _merge_matches(out_dir: Path, info: dict[str, str]) -> bool:
    path = out_dir / MERGE_INFO
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()) == info
    except json.JSONDecodeError:
        return False
