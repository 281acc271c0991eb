"""Check that a finetune's output folder really holds what PEFT / transformers load, before the store seals it.

A multi-rank save can go wrong without any error: under FSDP with a sharded state dict, transformers'
Trainer.save_model writes nothing, while rank 0 still writes its lineage. Sealed, such a folder would be
reused by every rerun and fail only at inference. So the folder is checked first, cheaply: the base model
is built on the meta device (no weights read, no memory), PEFT adds the adapter that adapter_config.json
describes, and the tensors PEFT would load (names and shapes) are compared with the safetensors headers.
"""

from __future__ import annotations

import json
from pathlib import Path

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


def _saved_shapes(files: list[Path]) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape, read from the safetensors headers only (no tensor data is loaded)."""
    from safetensors import safe_open

    shapes = {}
    for path in files:
        with safe_open(str(path), framework="pt") as handle:
            for name in handle.keys():
                shapes[name] = tuple(handle.get_slice(name).get_shape())
    return shapes


def _meta_base(base_path: str):
    """The base model's modules on the meta device: shapes without weights."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(base_path)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def expected_adapter_shapes(adapter_dir: Path, base_path: str) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every LoRA tensor PEFT loads for this adapter_config.json onto the base."""
    from peft import PeftConfig, get_peft_model, get_peft_model_state_dict

    config = PeftConfig.from_pretrained(str(adapter_dir))
    config.inference_mode = True
    model = get_peft_model(_meta_base(base_path), config, low_cpu_mem_usage=True)
    state = get_peft_model_state_dict(model, save_embedding_layers=False)
    return {name: tuple(tensor.shape) for name, tensor in state.items()}


def check_adapter(adapter_dir: Path, base_path: str) -> None:
    """Raise a one-line ValueError unless PEFT can load the adapter in adapter_dir onto the base."""
    adapter_dir = Path(adapter_dir)
    where = f"adapter folder {adapter_dir} (finetuned from {base_path})"
    missing = [name for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS) if not (adapter_dir / name).is_file()]
    if missing:
        raise ValueError(f"{where} has no {' and no '.join(missing)}: the trainer saved no adapter (a multi-GPU save "
                         "must gather the full state dict); nothing was stored, rerun the finetune")
    try:
        json.loads((adapter_dir / ADAPTER_CONFIG).read_text())
        saved = _saved_shapes([adapter_dir / ADAPTER_WEIGHTS])
    except (ValueError, OSError) as exc:  # damaged JSON or safetensors header
        raise ValueError(f"{where} cannot be read: {exc}; nothing was stored, rerun the finetune") from None
    expected = expected_adapter_shapes(adapter_dir, base_path)
    absent = sorted(set(expected) - set(saved))
    if absent:
        raise ValueError(f"{where} lacks {len(absent)} of the {len(expected)} LoRA tensors PEFT loads (first: "
                         f"{absent[0]}); nothing was stored, rerun the finetune")
    wrong = [(name, saved[name], shape) for name, shape in sorted(expected.items()) if saved[name] != shape]
    if wrong:
        name, got, want = wrong[0]
        raise ValueError(f"{where}: {len(wrong)} LoRA tensors do not fit the base model and adapter_config.json "
                         f"(first: {name} has shape {list(got)}, PEFT needs {list(want)}); nothing was stored, "
                         "rerun the finetune")
    extra = sorted(name for name in set(saved) - set(expected) if "lora_" in name)
    if extra:
        raise ValueError(f"{where} holds {len(extra)} LoRA tensors that adapter_config.json and the base model do "
                         f"not describe (first: {extra[0]}); nothing was stored, rerun the finetune")


def check_full_model(model_dir: Path, base_path: str) -> None:
    """Raise a one-line ValueError unless model_dir holds complete weights of the base's architecture."""
    model_dir = Path(model_dir)
    where = f"model folder {model_dir} (finetuned from {base_path})"
    weights = sorted(model_dir.glob("*.safetensors"))
    if not (model_dir / "config.json").is_file() or not weights:
        what = "config.json" if not (model_dir / "config.json").is_file() else "*.safetensors weights"
        raise ValueError(f"{where} has no {what}: the trainer saved no model (a multi-GPU save must gather the full "
                         "state dict); nothing was stored, rerun the finetune")
    saved = _saved_shapes(weights)
    saved_elements = sum(_numel(shape) for shape in saved.values())
    needed = sum(p.numel() for p in _meta_base(base_path).parameters())  # tied weights counted once, as saved
    if saved_elements < needed:  # more is harmless (saved buffers); less is a partial or sharded save
        raise ValueError(f"{where} holds {saved_elements:,} weights but the model has {needed:,}: a partial save; "
                         "nothing was stored, rerun the finetune")


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for size in shape:
        count *= size
    return count


def check_saved_model(folder: Path, base_path: str, merged: bool) -> None:
    """The check for a finetune's output: full weights when merged (finetune=full), else a LoRA adapter."""
    if merged:
        check_full_model(folder, base_path)
    else:
        check_adapter(folder, base_path)
