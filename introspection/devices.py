"""Which CUDA devices a model worker may use when the two sides of a pair run at once.

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
