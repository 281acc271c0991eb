"""Which CUDA devices each model-bound process may use, and what the CPU can do (the inference dtype that
`dtype: auto` means there).

Every process that loads a model is started with CUDA_VISIBLE_DEVICES naming exactly the devices it is
meant to use (`child_environment`), whether the two sides of a pair run one after the other or at once:
a single-process finetune, an HF-backend worker or a merge sees one device, vLLM its tensor_parallel_size
devices, a multi-rank finetune its `gpus` devices (`inference_devices`, `finetune_devices`). The devices
are taken from the front of its side's set: the set a thread running one side's steps confines itself to
(`confined_to`, both sides at once), else every device this process sees. A process seeing more than its
own devices is not harmless: transformers' Trainer counts every visible GPU (TrainingArguments.n_gpu),
multiplies the per-device batch by it and wraps the model in nn.DataParallel.

The ids are those of this process's own CUDA_VISIBLE_DEVICES when set (Slurm sets it to the job's GPUs),
so a child's set is always a subset of the job's. Without any visible device (a CPU machine) children
inherit the environment unchanged.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from functools import cache
from pathlib import Path

_local = threading.local()


def visible_devices() -> list[str]:
    """The CUDA devices this process may use: its CUDA_VISIBLE_DEVICES entries when set, else every device
    CUDA counts (none without a GPU or without torch)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip()]
    if not Path("/dev/nvidiactl").exists():  # no NVIDIA driver: no device, and no torch import (seconds) to learn it
        return []
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]  # counts through NVML: no CUDA context here
    except ImportError:
        return []


@contextmanager
def confined_to(device_set: list[str]):
    """Within the block, workers started by this thread see only `device_set`."""
    saved = getattr(_local, "devices", None)
    _local.devices = list(device_set)
    try:
        yield
    finally:
        _local.devices = saved


def environment() -> dict[str, str]:
    """This thread's whole side set inside `confined_to` (CUDA_VISIBLE_DEVICES), else none."""
    device_set = getattr(_local, "devices", None)
    return {} if device_set is None else {"CUDA_VISIBLE_DEVICES": ",".join(device_set)}


def side_devices() -> list[str]:
    """The devices this thread's model processes are taken from: its side's set inside `confined_to`,
    else every device this process sees."""
    device_set = getattr(_local, "devices", None)
    return list(device_set) if device_set is not None else visible_devices()


def child_environment(n_devices: int, what: str) -> dict[str, str]:
    """CUDA_VISIBLE_DEVICES for a process that uses `n_devices` devices (0: none; it computes on the CPU):
    the first n_devices of this thread's side set. Empty on a machine without visible devices; a one-line
    ValueError when the side has fewer devices than the process needs."""
    if n_devices < 0:
        raise ValueError(f"{what}: {n_devices} CUDA devices asked for; valid: 0 or more")
    available = side_devices()
    if not available:
        return {}  # a CPU machine: nothing to confine, and CUDA_VISIBLE_DEVICES stays as it was
    if len(available) < n_devices:
        raise ValueError(f"{what} needs {n_devices} CUDA devices but its side has {len(available)} "
                         f"(CUDA_VISIBLE_DEVICES={','.join(available)}); give the job more GPUs or lower the "
                         "model's gpus / tensor_parallel_size")
    return {"CUDA_VISIBLE_DEVICES": ",".join(available[:n_devices])}


def inference_devices(entry: dict, backend: str) -> int:
    """Devices an inference worker uses: vLLM shards the model over tensor_parallel_size of them; the
    transformers backend computes on one ("cuda", device 0)."""
    return int(entry.get("tensor_parallel_size") or 1) if backend == "vllm" else 1


def finetune_devices(finetune_cfg: dict, entry: dict) -> int:
    """Devices a finetune uses: one for a single-process finetune (multi_gpu none), else the model's `gpus`
    (one rank per device under `accelerate launch`)."""
    return 1 if finetune_cfg.get("multi_gpu", "none") == "none" else int(entry["gpus"])


# --- the CPU ---------------------------------------------------------------------------------------
CPU_NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # x86 flags of bfloat16 arithmetic in hardware


@cache  # the CPU does not change: read /proc/cpuinfo once, not at every answer key
def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU computes in bfloat16 natively (AMX or AVX512-BF16). Elsewhere (no such flag, or no
    /proc/cpuinfo) bfloat16 is emulated and was 3.4x slower than float32 (docs/measurements.md §2)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return any(flag in flags for flag in CPU_NATIVE_BF16_FLAGS)


def inference_dtype(entry_dtype: str, backend: str, on_gpu: bool) -> str:
    """The dtype an answer is computed in, as the answers' key records it. `auto` on a GPU stays vLLM's or
    transformers' own choice (the model's); on a CPU, vLLM computes in bfloat16 where the CPU has it
    natively (3.7x the requests/s of float32 there, the choice vLLM itself makes) and in float32
    elsewhere; transformers on a CPU in float32."""
    if entry_dtype != "auto" or on_gpu:
        return entry_dtype
    return "bfloat16" if backend == "vllm" and cpu_has_native_bf16() else "float32"
