"""Multi-rank finetuning (finetune.multi_gpu). No GPU here: the ranks are two CPU processes (an accelerate
MULTI_CPU config, started by torchrun), which exercises the rank entry point, rank 0's result and the
store path that FSDP/DeepSpeed use under `accelerate launch` on a GPU node."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from introspection.config import FinetuneConfig, ModelEntry
from introspection.finetune.data import write_rows
from introspection.finetune.distributed import (
    LAUNCHERS_DIR,
    accelerate_config_path,
    check_multi_gpu,
    launch_command,
)
from introspection.models import resolve_model
from introspection.stages import ModelRef, finetune_model
from introspection.store import Store, digest

CPU_CONFIG = """compute_environment: LOCAL_MACHINE
distributed_type: MULTI_CPU
mixed_precision: 'no'
num_machines: 1
machine_rank: 0
num_processes: 2
use_cpu: true
rdzv_backend: static
same_network: true
"""


def rows(n: int) -> list[dict]:
    words = ["red", "blue", "green", "amber"]
    return [{"prompt": [{"role": "user", "content": f"What is the first character of {words[i % 4]} {i}?"}],
             "completion": [{"role": "assistant", "content": words[i % 4][0]}]} for i in range(n)]


def finetune_cfg(**over) -> dict:
    cfg = OmegaConf.to_container(OmegaConf.structured(FinetuneConfig(name="t")), resolve=True)
    cfg.update(epochs=1.0, batch_size=2, learning_rate=1e-3, lora={"r": 4, "alpha": 8, "dropout": 0.0,
                                                                   "target_modules": ["all-linear"]})
    cfg.update(over)
    return cfg


def test_every_strategy_has_a_shipped_accelerate_config():
    for strategy in ("ddp", "fsdp", "deepspeed"):
        assert accelerate_config_path({"multi_gpu": strategy}).parent == LAUNCHERS_DIR


def test_launch_command_runs_this_module_on_n_ranks(tmp_path):
    fsdp = accelerate_config_path({"multi_gpu": "fsdp"})
    command = launch_command(fsdp, 4, tmp_path / "p.json")
    assert command[1:3] == ["-m", "accelerate.commands.launch"]
    assert command[command.index("--config_file") + 1] == str(fsdp)
    assert command[command.index("--num_processes") + 1] == "4"
    assert command[-3:] == ["-m", "introspection.finetune.distributed", str(tmp_path / "p.json")]
    cpu = tmp_path / "cpu.yaml"
    cpu.write_text(CPU_CONFIG)
    command = launch_command(cpu, 2, tmp_path / "p.json")  # CPU ranks: torchrun (accelerate would need mpirun)
    assert command[1:3] == ["-m", "torch.distributed.run"] and command[command.index("--nproc_per_node") + 1] == "2"


def test_a_model_with_one_gpu_is_refused_in_one_line():
    with pytest.raises(ValueError, match=r"model\.m2\.gpus=1; set model\.m2\.gpus to 2 or more"):
        check_multi_gpu({"multi_gpu": "fsdp"}, {"m1": {"gpus": 4}, "m2": {"gpus": 1}})


def test_gpu_strategies_need_the_gpus_on_this_machine():
    import torch

    if torch.cuda.device_count() >= 4:
        pytest.skip(reason="this machine has 4 GPUs: nothing to refuse")
    with pytest.raises(RuntimeError, match=r"needs 4 CUDA GPUs .* has \d"):
        check_multi_gpu({"multi_gpu": "fsdp"}, {"m1": {"gpus": 4}, "m2": {"gpus": 2}})


def test_deepspeed_without_its_package_says_how_to_install_it():
    import importlib.util

    if importlib.util.find_spec("deepspeed") is not None:
        pytest.skip(reason="deepspeed is installed here: nothing to refuse")
    with pytest.raises(ModuleNotFoundError, match="pip install deepspeed"):
        check_multi_gpu({"multi_gpu": "deepspeed"}, {"m1": {"gpus": 4}, "m2": {"gpus": 4}})


def test_a_missing_accelerate_config_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.yaml \(finetune\.accelerate_config\) does not exist"):
        accelerate_config_path({"multi_gpu": "ddp", "accelerate_config": str(tmp_path / "nope.yaml")})


def test_two_ranks_train_one_adapter_into_the_store(tmp_path, tiny_model_dir):
    """Both ranks train together (world size 2, each on half of every batch); rank 0 saves; the calling
    process seals the artifact. A second call reuses it without launching anything."""
    config = tmp_path / "cpu.yaml"
    config.write_text(CPU_CONFIG)
    store = Store(tmp_path / "store")
    entry = asdict(ModelEntry(name="tiny", source="local", path=str(tiny_model_dir), dtype="float32", gpus=2))
    base = ModelRef("tiny", entry, asdict(resolve_model(ModelEntry(**entry), store.root, where="test")))
    train_rows = rows(8)
    rows_path = tmp_path / "rows.jsonl"
    write_rows(train_rows, rows_path)
    cfg = finetune_cfg(multi_gpu="ddp", accelerate_config=str(config))

    tuned = finetune_model(store, base, rows_path, digest(train_rows), cfg, "tiny[self]")

    adapter = Path(tuned.adapter_dir)
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    folder = adapter.parent
    assert sorted(p.name for p in folder.iterdir()) == ["_manifest.json", "adapter"]  # no payload/result left
    info = store.info("adapters", tuned.adapter_key)
    assert info["world_size"] == 2 and info["processes"] == 2 and info["multi_gpu"] == "ddp"
    # 8 rows, 2 per rank per step, 2 ranks: 2 optimizer steps (one rank alone would take 4)
    assert info["n_steps"] == 2
    lineage = json.loads((adapter / "lineage.json").read_text())
    assert lineage["n_steps"] == 2

    runs = store.worker_runs
    again = finetune_model(store, base, rows_path, digest(train_rows), cfg, "tiny[self]")
    assert again.adapter_key == tuned.adapter_key and store.worker_runs == runs
