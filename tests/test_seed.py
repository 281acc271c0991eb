"""The top-level `seed`: it moves every seeded step (items, sampling, rows, finetuning) and the keys of
what they produce, and seed=0 leaves every key as it was."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import introspection.core.config as config
from introspection.core.store import Store
from introspection.core.types import Answer
from introspection.stages.adapters import finetune_model
from introspection.stages.answers import AnswerJob, answer_key, sampling_for
from introspection.stages.finetune_settings import adapter_key, settings_for_model
from introspection.stages.items import build_items
from introspection.stages.model_ref import ModelRef
from introspection.stages.rows import prepare_rows

CONF = Path(__file__).resolve().parents[1] / "conf"
SMALL = ["tasks=smoke", "tasks.n_train_items=6", "tasks.n_test_items=4", "tasks.n_finetune_per_property=4"]


def compose_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


class NoAdapters:
    """A store in which every adapter already exists: finetune_model only computes its key."""

    def __init__(self) -> None:
        self.computed: list = []
        self.reused: list = []
        self.root = Path("/nonexistent-store")  # no checkpoints to discard there

    def get(self, kind, key):
        return Path("/adapters") / key

    def info(self, kind, key):
        return {}

    def count_reused(self, kind, key):
        self.reused.append(f"{kind}/{key[:12]}")


def artifact_keys(cfg, store_dir: Path, apply: bool = True) -> dict[str, str]:
    """Keys of every seeded artifact for the config's M1, with fixed (fake) weights and answers."""
    if apply:
        config.apply_seed(cfg)
    store = Store(store_dir)
    plan = build_items(cfg.tasks, store)
    entry = OmegaConf.to_container(cfg.model.m1, resolve=True)
    model = ModelRef(entry["name"], entry, {"fingerprint": "fixed-weights"})
    keys = {}
    for name, requests, hypothetical in (("object/train", plan.object_requests(plan.train_items), False),
                                         ("hypothetical/test", plan.hypothetical_requests(plan.test_items), True)):
        job = AnswerJob(name, requests, sampling_for(cfg.inference, hypothetical))
        keys[f"answers {name}"] = answer_key(model, job, cfg.inference)
    job = AnswerJob("sampled", plan.object_requests(plan.train_items)[:1], sampling_for(cfg.inference, False))
    keys["answers, same prompts"] = answer_key(model, job, cfg.inference)
    answers = {r.request_id: Answer(r.request_id, r.messages[-1]["content"].split()[-1] + " red blue")
               for r in plan.object_requests(plan.train_items)}
    rows, keys["rows"] = prepare_rows(store, plan, model, model, answers, cfg.tasks, cfg.finetune,
                                             predictor_answers=answers)
    keys["adapter"] = finetune_model(NoAdapters(), model, rows, keys["rows"], cfg.finetune, "m1[self]").adapter_key
    keys["adapter, same rows"] = adapter_key(model, "rows", settings_for_model(cfg.finetune, model))
    return keys


def test_the_top_level_seed_offsets_every_component_seed():
    cfg = compose_cfg("seed=0")
    before = (cfg.tasks.seed, cfg.inference.seed, cfg.finetune.seed)
    config.apply_seed(cfg)
    assert (cfg.tasks.seed, cfg.inference.seed, cfg.finetune.seed) == before
    cfg = compose_cfg("seed=3", "finetune.seed=7")
    config.apply_seed(cfg)
    assert (cfg.tasks.seed, cfg.inference.seed, cfg.finetune.seed) == (before[0] + 3, before[1] + 3, 10)


@pytest.mark.parametrize("base", [[], ["model=llama3_8b"]])
def test_seed_0_keeps_every_key_and_seed_1_changes_every_seeded_one(tmp_path, base):
    unseeded = artifact_keys(compose_cfg(*SMALL, *base), tmp_path / "a", apply=False)
    zero = artifact_keys(compose_cfg(*SMALL, *base, "seed=0"), tmp_path / "b")
    one = artifact_keys(compose_cfg(*SMALL, *base, "seed=1"), tmp_path / "c")
    assert zero == unseeded
    # Items and rows move with the seed; sampling and training settings do too, even on the same prompts/rows.
    assert all(one[k] != zero[k] for k in zero), {k: one[k] == zero[k] for k in zero}


def test_a_seed_sweep_gives_distinct_adapters_and_one_result_row_per_seed(seed_sweep):
    # `seed=0,1` on a copy of tiny_run's store, computed in the background (tests/helpers/background.py): seed=0 is
    # tiny_run's config, so that job reuses its artifacts; seed=1 computes its own.
    store, sweep = seed_sweep.store, seed_sweep.sweep_dir
    jobs = sorted(d.name for d in sweep.iterdir() if (d / "results.json").is_file())
    assert jobs == ["0", "1"]
    results = [json.loads((sweep / j / "results.json").read_text()) for j in jobs]
    used = [r["config"] for r in results]
    assert [(c["seed"], c["tasks"]["seed"], c["finetune"]["seed"]) for c in used] == [(0, 0, 42), (1, 1, 43)]
    assert results[0]["store"]["worker_runs"] == 0 < results[1]["store"]["worker_runs"]

    # Every adapter twice (once per seed), each pair with different weights.
    adapters: dict[str, list[bytes]] = {}
    for manifest in (store / "artifacts" / "adapters").glob("*/_manifest.json"):
        weights = manifest.parent / "adapter" / "adapter_model.safetensors"
        adapters.setdefault(json.loads(manifest.read_text())["info"]["label"], []).append(weights.read_bytes())
    assert sorted(adapters) == ["tiny_a[cross:tiny_b]", "tiny_a[self]", "tiny_b[cross:tiny_a]", "tiny_b[self]"]
    assert all(len(versions) == 2 and versions[0] != versions[1] for versions in adapters.values())

    # The sweep table: each matrix cell once per seed.
    with (sweep / "sweep_results.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["kind"] == "self" and r["predictor"] == "tiny_a"
                and r.get("task", "all") == "all" and r.get("property", "all") == "all"]
    assert sorted(r["seed"] for r in rows) == ["0", "1"]
