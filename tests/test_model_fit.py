"""Checks that need the resolved weights (converted or found only when the run resolves its models) run
right after resolution and before any inference: a prompt longer than the context, a LoRA rank above the
hidden size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from introspection.checks.model_checks import check_models_fit
from introspection.stages.model_ref import ModelRef
from tests.helpers import run_main, tiny_overrides

ROOT = Path(__file__).resolve().parents[1]


def test_a_prompt_longer_than_the_context_stops_before_any_inference(tiny_model_dir, tmp_path):
    store = tmp_path / "store"
    args = [f"hydra.run.dir={tmp_path / 'run'}", *tiny_overrides((tiny_model_dir, tiny_model_dir), store),
            "model.m2.name=tiny_b2", "model.m1.max_model_len=64"]
    proc = run_main(args, check=False, spawn=True)  # its exit code and stderr are what is tested
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "model.m1.max_model_len=64" in errors[0] and "prompt tokens" in errors[0], errors
    assert "Traceback" not in proc.stderr
    assert not (store / "artifacts" / "answers").exists()  # no model was asked anything


def _ref(folder: Path) -> ModelRef:
    resolved = {"name": "tiny", "path": str(folder), "chat_template": None, "fingerprint": "x"}
    return ModelRef("tiny", {}, resolved)


def test_lora_rank_above_the_hidden_size_is_caught_once_the_config_is_on_disk(tiny_model_dir):
    hidden = json.loads((tiny_model_dir / "config.json").read_text())["hidden_size"]
    cfg = OmegaConf.create({"finetune": {"method": "lora", "lora": {"r": hidden + 1}}})
    with pytest.raises(ValueError, match=f"finetune.lora.r={hidden + 1} exceeds the hidden size {hidden} of model.m1"):
        check_models_fit(cfg, {"m1": _ref(tiny_model_dir)})
    cfg.finetune.lora.r = hidden
    check_models_fit(cfg, {"m1": _ref(tiny_model_dir)})  # at the limit: fine
