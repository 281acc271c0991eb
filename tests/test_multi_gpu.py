"""Multi-rank finetuning (finetune.multi_gpu). No GPU here: the ranks are two CPU processes (an accelerate
MULTI_CPU config, started by torchrun), which exercises the rank entry point, rank 0's result and the
store path that FSDP/DeepSpeed use under `accelerate launch` on a GPU node."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from introspection.core.config import FinetuneConfig, ModelEntry
from introspection.core.store import Store, digest
from introspection.finetune.data import write_rows
from introspection.finetune.distributed import (
    LAUNCHERS_DIR,
    accelerate_config_path,
    check_multi_gpu,
    launch_command,
)
from introspection.stages.adapters import finetune_model
from introspection.stages.model_ref import ModelRef
from introspection.weights.resolve import resolve_model

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
    with pytest.raises(ValueError, match=r"needs 4 CUDA GPUs .* has \d"):
        check_multi_gpu({"multi_gpu": "fsdp"}, {"m1": {"gpus": 4}, "m2": {"gpus": 2}})


def test_deepspeed_without_its_package_says_how_to_install_it():
    import importlib.util

    if importlib.util.find_spec("deepspeed") is not None:
        pytest.skip(reason="deepspeed is installed here: nothing to refuse")
    with pytest.raises(ValueError, match="pip install deepspeed"):
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


# --------------------------------------------------------------------------------------------------
# The shipped accelerate configs, rehearsed on two CPU ranks: each must leave an adapter PEFT loads.

# Errors a shipped config meets on CPU ranks, in the libraries' own words (seen in the ranks' log): the
# test skips with the line that holds one, and fails on any other error.
CPU_BLOCKERS = {
    # accelerate's FullyShardedDataParallelPlugin (fsdp_sync_module_states: true) looks for a GPU-type
    # device to initialise the shards on; and without that setting AcceleratorState still enables FSDP
    # only for GPU-type distributed types, so CPU ranks would train as MULTI_CPU (no sharding).
    "accelerate_fsdp.yaml": "There are currently no available devices found",
    # accelerate launch's DeepSpeed launcher needs the package; installed, AcceleratorState would still
    # not enable DeepSpeed on CPU ranks (it requires `not cpu`).
    "accelerate_deepspeed_zero3.yaml": "DeepSpeed is not installed",
}
# How accelerate must report the ranks' training for the rehearsal to count (DDP on CPU ranks is MULTI_CPU).
RAN_AS = {"accelerate_ddp.yaml": "MULTI_CPU", "accelerate_fsdp.yaml": "FSDP",
          "accelerate_deepspeed_zero3.yaml": "DEEPSPEED"}


def test_the_shipped_fsdp_config_saves_the_full_state_dict():
    import yaml

    fsdp = yaml.safe_load((LAUNCHERS_DIR / "accelerate_fsdp.yaml").read_text())
    # Trainer.save_model writes nothing under FSDP unless the state dict type is FULL_STATE_DICT.
    assert fsdp["fsdp_config"]["fsdp_state_dict_type"] == "FULL_STATE_DICT"


def _tiny_base(tmp_path, tiny_model_dir) -> tuple[Store, ModelRef]:
    store = Store(tmp_path / "store")
    entry = asdict(ModelEntry(name="tiny", source="local", path=str(tiny_model_dir), dtype="float32", gpus=2))
    return store, ModelRef("tiny", entry, asdict(resolve_model(ModelEntry(**entry), store.root, where="test")))


def _logits(model, input_ids):
    import torch

    with torch.no_grad():
        return model(input_ids=input_ids).logits


@pytest.mark.parametrize("config_name", sorted(RAN_AS))
def test_a_shipped_config_trains_on_two_cpu_ranks_an_adapter_peft_loads(config_name, tmp_path, tiny_model_dir, capfd):
    """The real launch path (accelerate launch --config_file launchers/<config>) on two CPU ranks."""
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    store, base = _tiny_base(tmp_path, tiny_model_dir)
    train_rows = rows(8)
    rows_path = tmp_path / "rows.jsonl"
    write_rows(train_rows, rows_path)
    strategy = {"accelerate_ddp.yaml": "ddp", "accelerate_fsdp.yaml": "fsdp"}.get(config_name, "deepspeed")
    cfg = finetune_cfg(multi_gpu=strategy, accelerate_config=str(LAUNCHERS_DIR / config_name))
    try:
        tuned = finetune_model(store, base, rows_path, digest(train_rows), cfg, "tiny[self]")
    except Exception:
        log = capfd.readouterr()
        blocker = CPU_BLOCKERS.get(config_name)
        seen = [line.strip() for line in (log.out + log.err).splitlines() if blocker and blocker in line]
        if seen:
            pytest.skip(reason=f"{config_name} cannot train on CPU ranks: {seen[-1]}")
        raise
    info = store.info("adapters", tuned.adapter_key)
    ran_as = info["hyperparameters"]["resolved"]["distributed_type"]
    if ran_as != RAN_AS[config_name]:
        pytest.skip(reason=f"{config_name}: accelerate ran the CPU ranks as {ran_as}, not {RAN_AS[config_name]}")
    assert info["world_size"] == 2 and info["n_steps"] == 2  # 8 rows, 2 per rank per step, 2 ranks

    adapter = Path(tuned.adapter_dir)
    saved = load_file(str(adapter / "adapter_model.safetensors"))
    lora_b = [tensor for name, tensor in saved.items() if "lora_B" in name]
    assert lora_b and all(t.abs().max() > 0 for t in lora_b)  # B starts at zero: every one of them was trained
    base_model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    input_ids = torch.tensor([[5, 40, 41, 42, 43, 2]])
    base_logits = _logits(base_model, input_ids)
    tuned_model = PeftModel.from_pretrained(base_model, adapter)
    tuned_logits = _logits(tuned_model, input_ids)
    assert not torch.allclose(tuned_logits, base_logits)
    merged_logits = _logits(tuned_model.merge_and_unload(), input_ids)
    torch.testing.assert_close(merged_logits, tuned_logits, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------------------------------
# The FSDP adapter save on two CPU ranks (FSDP1 on gloo, wrapped as transformers wraps a PeftModel: PEFT's
# fsdp_auto_wrap_policy). accelerate refuses FSDP on CPU ranks (CPU_BLOCKERS), so the ranks wrap the model
# themselves and call the save the trainer calls (finetune/fsdp_adapter.py). Every flat parameter FSDP
# all-gathers is recorded: during the save only LoRA units may be; the full state dict Trainer.save_model
# would take (the reference) gathers the frozen base too, which shows the recording sees such gathers.

FSDP_RANKS = r'''
import json, sys
from pathlib import Path

import torch
import torch.distributed as dist
from peft import LoraConfig, get_peft_model
from peft.utils.other import fsdp_auto_wrap_policy
from safetensors.torch import save_file
from torch.distributed.fsdp import FullStateDictConfig, FullyShardedDataParallel as FSDP, StateDictType
from torch.distributed.fsdp._flat_param import FlatParamHandle
from transformers import AutoModelForCausalLM

from introspection.finetune.fsdp_adapter import clean_name, save_fsdp_adapter

dist.init_process_group("gloo")
rank = dist.get_rank()
model_dir, outputs = sys.argv[1], Path(sys.argv[2])
gathered = []
all_gather = FlatParamHandle._all_gather_flat_param


def recorded(self, *args, **kwargs):
    flat = self.flat_param
    originals = flat._params if flat._params is not None else None
    gathered.append({"trainable": bool(flat.requires_grad) and (originals is None or all(p.requires_grad for p in originals)),
                     "numel": int(flat._unpadded_unsharded_size.numel()), "fqns": list(flat._fqns)})
    return all_gather(self, *args, **kwargs)


FlatParamHandle._all_gather_flat_param = recorded
for use_orig_params in (False, True):  # the shipped config's false, and true (FSDP then flattens originals' views)
    out = outputs / f"use_orig_params_{use_orig_params}"
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    wrapped = FSDP(peft_model, auto_wrap_policy=fsdp_auto_wrap_policy(peft_model), device_id=torch.device("cpu"),
                   use_orig_params=use_orig_params)
    optimizer = torch.optim.SGD([p for p in wrapped.parameters() if p.requires_grad], lr=0.5)
    ids = torch.tensor([[5, 40, 41, 42, 43, 2]]) + rank
    for _ in range(2):
        wrapped(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    gathered.clear()
    save_fsdp_adapter(wrapped, peft_model, out / "adapter", None, is_main=rank == 0)
    during_save = list(gathered)
    gathered.clear()
    with FSDP.state_dict_type(wrapped, StateDictType.FULL_STATE_DICT, FullStateDictConfig()):
        full = wrapped.state_dict()
    if rank == 0:
        save_file({clean_name(k): v.contiguous() for k, v in full.items() if "lora_" in k},
                  str(out / "reference.safetensors"))
        (out / "gathers.json").write_text(json.dumps({"save": during_save, "full_state_dict": list(gathered)}))
    dist.barrier()
dist.destroy_process_group()
'''


@pytest.fixture(scope="module")
def fsdp_saves(tmp_path_factory, tiny_model_dir) -> Path:
    """Two CPU ranks train a LoRA under FSDP (use_orig_params false, then true) and save it: the outputs."""
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("fsdp_saves")
    script = folder / "ranks.py"
    script.write_text(FSDP_RANKS)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(tiny_model_dir), str(folder)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return folder


@pytest.mark.parametrize("use_orig_params", [False, True])
def test_the_fsdp_adapter_save_gathers_no_frozen_weight_and_loads_as_trained(use_orig_params, fsdp_saves,
                                                                             tiny_model_dir):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from introspection.finetune.adapter_check import check_saved_model

    out = fsdp_saves / f"use_orig_params_{use_orig_params}"
    gathers = json.loads((out / "gathers.json").read_text())

    saved = gathers["save"]
    assert saved and all(g["trainable"] for g in saved), [g["fqns"] for g in saved if not g["trainable"]]
    frozen = [g for g in gathers["full_state_dict"] if not g["trainable"]]
    assert frozen and max(g["numel"] for g in saved) < max(g["numel"] for g in frozen)

    check_saved_model(out / "adapter", str(tiny_model_dir), merged=False)  # what the store checks before sealing
    reference = load_file(str(out / "reference.safetensors"))  # the trained LoRA tensors, as the full state dict has them
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    loaded = PeftModel.from_pretrained(base, out / "adapter")
    lora = {name: p for name, p in loaded.named_parameters() if "lora_" in name}
    assert len(lora) == len(reference) == len(saved) > 0  # one gather per LoRA matrix, and nothing else
    for name, tensor in reference.items():
        torch.testing.assert_close(lora[name], tensor, rtol=0, atol=0)
    assert any(t.abs().max() > 0 for name, t in reference.items() if "lora_B" in name)  # trained: B starts at zero
