"""Computed once: two runs of the entry point sharing one fresh store, started a moment apart, compute each
artifact exactly once between them (the second waits on the key's lock and reuses what the first sealed)
and finish with the same results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from introspection.core.store import MANIFEST, Store
from tests.helpers import tiny_overrides

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 600
# Smaller than tests/helpers.TINY_SIZES: two runs share two cores.
SMALLER = ["tasks.n_train_items=6", "tasks.n_test_items=4", "tasks.n_finetune_per_property=6"]


def start(tiny_pair, store: Path, run_dir: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "INTROSPECTION_FAULT"}
    env |= {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    args = [*tiny_overrides(tiny_pair, store), *SMALLER, f"hydra.run.dir={run_dir}"]
    run_dir.mkdir(parents=True)
    with open(run_dir.parent / f"{run_dir.name}.log", "w") as log:
        return subprocess.Popen([sys.executable, "-m", "introspection.main", *args], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def finished(proc: subprocess.Popen, run_dir: Path) -> dict:
    try:
        proc.wait(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
    log = (run_dir.parent / f"{run_dir.name}.log").read_text()
    assert proc.returncode == 0, log[-4000:]
    return json.loads((run_dir / "results.json").read_text())


def test_two_runs_on_one_store_compute_each_artifact_once(tiny_pair, tmp_path):
    store = tmp_path / "store"
    first = start(tiny_pair, store, tmp_path / "first")
    time.sleep(1.5)
    second = start(tiny_pair, store, tmp_path / "second")
    a, b = finished(first, tmp_path / "first"), finished(second, tmp_path / "second")

    assert a["matrix"] == b["matrix"] and a["cells"] == b["cells"]
    artifacts = sorted(f"{m.parent.parent.name}/{m.parent.name[:12]}" for m in (store / "artifacts").glob(f"*/*/{MANIFEST}"))
    assert len(artifacts) >= 10  # items, rows, adapters and answers of both models
    computed = a["store"]["computed"] + b["store"]["computed"]
    assert sorted(computed) == artifacts  # each one exactly once, by one of the two runs
    for run in (a, b):  # and every artifact a run used is counted once in it: computed or reused
        assert not set(run["store"]["computed"]) & set(run["store"]["reused"])
    assert all(Store._verify(m.parent) for m in (store / "artifacts").glob(f"*/*/{MANIFEST}"))
    assert not list((store / "partial").glob("*/*/*")), "partial batches left after both runs finished"
