"""Helpers shared by test modules (import them from here, never from another test module)."""

from __future__ import annotations

from pathlib import Path

# The whole experiment at toy sizes: seconds of model work per stage on a CPU.
TINY_SIZES = ["tasks=smoke", "logger=none", "inference=hf",
              "tasks.n_train_items=8", "tasks.n_test_items=6", "tasks.n_finetune_per_property=8",
              "inference.max_tokens=12", "inference.max_tokens_hypothetical=4",
              # tiny pairs pin their finetune settings (other pairs default to the paper's LoRA)
              "finetune=demo", "finetune.multi_gpu=none",
              "finetune.epochs=1", "finetune.batch_size=4", "finetune.lora.r=4", "finetune.lora.alpha=8"]


def tiny_side(slot: str, path: Path | str, name: str) -> list[str]:
    """One side of the pair (model.m1 or model.m2) as a local tiny model from tests/tiny_model.py."""
    return [f"model.{slot}.source=local", f"model.{slot}.path={path}", f"model.{slot}.name={name}",
            f"model.{slot}.chat_template=null", f"model.{slot}.dtype=float32"]


def tiny_overrides(tiny_pair: tuple[Path, Path], store: Path) -> list[str]:
    """Overrides of `python -m introspection.main` for the pair (tiny_a, tiny_b) and this artifact store."""
    a, b = tiny_pair
    return [*TINY_SIZES, f"store_dir={store}", *tiny_side("m1", a, "tiny_a"), *tiny_side("m2", b, "tiny_b")]
