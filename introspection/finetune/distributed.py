"""Multi-GPU finetuning: one `accelerate launch` per finetune, all ranks training one model together.

finetune.multi_gpu picks the strategy (ddp, fsdp, deepspeed) and with it an accelerate config from
launchers/ (finetune.accelerate_config names another). The number of processes is the model's `gpus`,
the same number the Slurm job asks for.

The store's lock stays with the calling process: it holds the artifact's lock and temporary folder,
launches the ranks into that folder and waits; rank 0 saves the adapter and a small result file there,
and the caller seals the artifact. So a multi-rank finetune is as atomic, shared and resumable as a
single-process one, and no rank ever touches the store.

Run as a module by accelerate: `python -m introspection.finetune.distributed PAYLOAD.json`.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from introspection.core.config import MULTI_GPU_STRATEGIES as STRATEGIES
from introspection.finetune.job import check_trained_folder, train_from_payload

ACCELERATE_CONFIGS = {"ddp": "accelerate_ddp.yaml", "fsdp": "accelerate_fsdp.yaml",
                      "deepspeed": "accelerate_deepspeed_zero3.yaml"}
LAUNCHERS_DIR = Path(__file__).resolve().parents[2] / "launchers"
RESULT_FILE = "rank0_result.json"
PAYLOAD_FILE = "ranks_payload.json"
# What accelerate reports on the ranks for each strategy (DDP is MULTI_GPU on GPUs, MULTI_CPU on CPU ranks).
EXPECTED_DISTRIBUTED_TYPE = {"fsdp": "FSDP", "deepspeed": "DEEPSPEED"}

log = logging.getLogger(__name__)


def accelerate_config_path(finetune_cfg) -> Path:
    """The accelerate config file for finetune.multi_gpu (or finetune.accelerate_config when set)."""
    strategy = finetune_cfg.get("multi_gpu", "none")
    if strategy not in ACCELERATE_CONFIGS:
        raise ValueError(f"finetune.multi_gpu={strategy!r} is not valid; valid: {', '.join(STRATEGIES)}")
    named = finetune_cfg.get("accelerate_config")
    path = Path(named).expanduser() if named else LAUNCHERS_DIR / ACCELERATE_CONFIGS[strategy]
    if not path.is_file():
        source = "finetune.accelerate_config" if named else f"the default for finetune.multi_gpu={strategy}"
        raise FileNotFoundError(f"accelerate config {path} ({source}) does not exist; point "
                                "finetune.accelerate_config at one (examples in launchers/)")
    return path


def _uses_cpu(config_path: Path) -> bool:
    """True for an accelerate config that trains on CPU processes (used by the tests; no GPU needed)."""
    import yaml

    settings = yaml.safe_load(config_path.read_text()) or {}
    return bool(settings.get("use_cpu")) or settings.get("distributed_type") == "MULTI_CPU"


def check_multi_gpu(finetune_cfg, entries: dict[str, dict]) -> None:
    """Fail at start, in one line, when a multi-GPU finetune cannot run here (before any stage runs)."""
    strategy = finetune_cfg.get("multi_gpu", "none")
    if strategy == "none":
        return
    config_path = accelerate_config_path(finetune_cfg)
    for side, entry in entries.items():
        if entry["gpus"] < 2:
            raise ValueError(f"finetune.multi_gpu={strategy} trains on the model's GPUs, but model.{side}.gpus="
                             f"{entry['gpus']}; set model.{side}.gpus to 2 or more, or use finetune.multi_gpu=none")
    if strategy == "deepspeed":
        import importlib.util

        if importlib.util.find_spec("deepspeed") is None:
            raise ValueError("finetune.multi_gpu=deepspeed needs the deepspeed package: pip install deepspeed "
                                      "(or use finetune.multi_gpu=fsdp, which needs nothing extra)")
    if _uses_cpu(config_path):
        return
    import torch

    have = torch.cuda.device_count()
    need = max(entry["gpus"] for entry in entries.values())
    if have < need:
        raise ValueError(f"finetune.multi_gpu={strategy} needs {need} CUDA GPUs (model gpus) but this machine "
                           f"has {have}; run it in a GPU job (hydra/launcher=slurm) or use finetune.multi_gpu=none")


def launch_command(config_path: Path, n_processes: int, payload_path: Path) -> list[str]:
    """`accelerate launch` of this module on n_processes ranks.

    A CPU config goes through torchrun instead: accelerate starts several CPU ranks only through mpirun,
    which is rarely installed; torchrun gives the same ranks (gloo), which the Trainer joins itself."""
    entry = ["-m", "introspection.finetune.distributed", str(payload_path)]
    if _uses_cpu(config_path):
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n_processes),
                *entry]
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config_path),
            "--num_processes", str(n_processes), "--num_machines", "1", "--main_process_port", "0", *entry]


def finetune_on_ranks(payload: dict, folder: Path, n_processes: int) -> dict:
    """Train on n_processes ranks into `folder` (the store's temporary artifact folder); return its info.

    The ranks see exactly n_processes CUDA devices of this side (none for CPU ranks), run in a process
    group of their own and are stopped, with a one-line error, when they outlive their time limits
    (introspection/core/child_process.py: the whole run, or a short grace after rank 0 wrote its result)."""
    from introspection.core.child_process import limits, run_groups_environment, wait_bounded
    from introspection.core.devices import child_environment

    config_path = accelerate_config_path(payload["finetune"])
    bounds = limits()  # before the launch: a bad setting leaves nothing running
    payload_path = folder / PAYLOAD_FILE
    payload_path.write_text(json.dumps({**payload, "out_dir": str(folder), "ranks": n_processes}))
    command = launch_command(config_path, n_processes, payload_path)
    what = f"finetuning {payload['label']} on {n_processes} processes"
    devices = child_environment(0 if _uses_cpu(config_path) else n_processes, what)
    env = {**os.environ, **devices, **run_groups_environment(), "PYTHONUNBUFFERED": "1"}
    result = folder / RESULT_FILE
    from introspection.finetune.checkpoints import started_with_signal_pending

    with started_with_signal_pending():  # Slurm's time-limit signal: the ranks checkpoint, the launcher lives on
        proc = subprocess.Popen(command, env=env, start_new_session=True)  # its own group: stopped as one

    def wait(seconds: float) -> int | None:
        try:
            return proc.wait(seconds)
        except subprocess.TimeoutExpired:
            return None

    try:
        code = wait_bounded(wait, proc.pid, what, result, bounds)
    finally:
        payload_path.unlink(missing_ok=True)
    if code != 0 or not result.is_file():
        raise RuntimeError(f"{what} (accelerate launch --config_file {config_path}) failed with exit code {code}; "
                           "its log is above")
    info = json.loads(result.read_text())
    result.unlink()
    strategy = payload["finetune"]["multi_gpu"]
    ran = info.get("hyperparameters", {}).get("resolved", {}).get("distributed_type")
    if EXPECTED_DISTRIBUTED_TYPE.get(strategy) not in (None, ran):
        log.warning("finetune.multi_gpu=%s, but the ranks trained as %s (accelerate config %s)", strategy, ran,
                    config_path)
    check_trained_folder(payload, folder, info)  # rank 0 may have saved nothing usable: then nothing is sealed
    return {**info, "processes": n_processes, "multi_gpu": strategy}


def end_ranks() -> None:
    """Tear down this rank's process group, as Accelerator.end_training does (the Trainer's accelerator
    has no trackers to finish), so no rank leaves NCCL communicators behind at exit."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def main(argv: list[str]) -> None:
    """One rank: every rank trains; rank 0 also writes the result the caller stores as the artifact's info
    (whole, via a temporary name: the caller starts its exit grace when it appears); then every rank tears
    down its process group."""
    payload = json.loads(Path(argv[0]).read_text())
    out_dir = Path(payload["out_dir"])
    info = train_from_payload(payload, out_dir)
    if os.environ.get("RANK", "0") == "0":
        partial = out_dir / f".{RESULT_FILE}.partial"
        partial.write_text(json.dumps({**info, "world_size": int(os.environ.get("WORLD_SIZE", "1"))}, default=str))
        os.replace(partial, out_dir / RESULT_FILE)
    end_ranks()


if __name__ == "__main__":
    main(sys.argv[1:])
