"""Helpers shared by test modules (import them from here, never from another test module).

tests/test_hygiene.py fails when a test module imports another one. Submodules: `checks` (what a run
must leave behind: one-line errors, a consistent store, no secrets), `builders` (a store build killed
mid-way, run in a process of its own), `session` (the session's own cache folders, see tests/conftest.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

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


def run_main(args: list[str]) -> subprocess.CompletedProcess:
    """`python -m introspection.main ARGS` from the repository; asserts exit code 0."""
    proc = subprocess.run([sys.executable, "-m", "introspection.main", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def compose_cfg(overrides: list[str]):
    """The experiment config as the entry point composes it (conf/config.yaml plus the overrides)."""
    from hydra import compose, initialize_config_dir

    from introspection.cli import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)
