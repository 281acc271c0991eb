"""Which CUDA devices a model worker may use when the two sides of a pair run at once, and what the CPU
can do (the inference dtype that `dtype: auto` means there).

A thread that runs one side's steps confines itself to a device set (`confined_to`); every worker process
it spawns (errors.spawn_and_wait) and every multi-GPU finetune it launches starts with
CUDA_VISIBLE_DEVICES set to that set (`environment`). Outside such a block workers inherit this process's
devices, as before. The ids are those of this process's own CUDA_VISIBLE_DEVICES when set (Slurm sets it
to the job's GPUs), so a child's set is always a subset of the job's.
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
    """The variables a worker started by this thread needs: CUDA_VISIBLE_DEVICES inside `confined_to`, else none."""
    device_set = getattr(_local, "devices", None)
    return {} if device_set is None else {"CUDA_VISIBLE_DEVICES": ",".join(device_set)}


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
