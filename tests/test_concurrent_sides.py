"""Both sides of a pair at once: with a device set for each model, the two models' base answers, self-finetunes
and self-answers run concurrently (one thread per side, each side's workers confined to its devices), and the
results equal those of the sequential order.

The machine has no GPU: the test pretends two devices by setting CUDA_VISIBLE_DEVICES=0,1 for this process
(as Slurm does for a job's GPUs); the workers see "0" or "1" and, finding no CUDA, run on the CPU with two
tiny random models."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from introspection.cli import CONF_DIR
from introspection.core import config as _config  # noqa: F401  (registers the structured configs)
from introspection.core import devices
from introspection.core.store import Store
from introspection.experiments import NoOptions
from introspection.pipeline.executor import SideSchedule, run_sides, schedule_sides
from introspection.stages import worker_runs
from tests.helpers import run_main, tiny_overrides

SPAWN_AND_WAIT = worker_runs.spawn_and_wait


def compose_cfg(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def test_sides_are_planned_from_the_visible_devices_and_the_models_gpus():
    cfg = compose_cfg(["model.m1.gpus=2", "model.m2.gpus=1"])
    assert schedule_sides(cfg, visible=["4", "5", "6", "7"]).device_sets == {"m1": ["4", "5"], "m2": ["6"]}
    assert not schedule_sides(cfg, visible=["4", "5"]).concurrent  # 2 + 1 devices needed
    assert not schedule_sides(cfg, visible=[]).concurrent  # a CPU
    assert not schedule_sides(compose_cfg([]), visible=["0"]).concurrent  # one device
    off = compose_cfg(["experiment.concurrent_sides=off"])
    assert not schedule_sides(off, visible=["0", "1"]).concurrent


def test_sequential_order_is_step_by_step_and_concurrent_sides_see_their_devices():
    order, seen = [], {}

    def step(name):
        def run(slot):
            order.append((name, slot))
            seen[(name, slot)] = devices.environment()
        return run

    run_sides(SideSchedule(None), [step("base"), step("self")])
    assert order == [("base", "m1"), ("base", "m2"), ("self", "m1"), ("self", "m2")]  # as the run always did
    assert all(env == {} for env in seen.values())
    order.clear()
    run_sides(SideSchedule({"m1": ["0"], "m2": ["1"]}), [step("base"), step("self")], device_slot=lambda s: s)
    assert seen[("base", "m1")] == seen[("self", "m1")] == {"CUDA_VISIBLE_DEVICES": "0"}
    assert seen[("base", "m2")] == seen[("self", "m2")] == {"CUDA_VISIBLE_DEVICES": "1"}
    assert [o for o in order if o[1] == "m1"] == [("base", "m1"), ("self", "m1")]  # each side in its own order
    assert devices.environment() == {}  # nothing leaks to the calling thread


def test_a_failing_side_is_raised_after_both_sides_end():
    finished = []

    def step(slot):
        if slot == "m1":
            raise ValueError("side m1 failed")
        time.sleep(0.2)
        finished.append(slot)

    with pytest.raises(ValueError, match="side m1 failed"):
        run_sides(SideSchedule({"m1": ["0"], "m2": ["1"]}), [step])
    assert finished == ["m2"]


def as_json(records: list[dict]) -> str:
    return json.dumps(records, sort_keys=True)


def run_recorded(monkeypatch, tiny_pair, store_dir: Path, run_dir: Path, extra: list[str]):
    """run_cross_prediction in this process; every worker start and end is recorded with the devices it got."""
    from introspection.experiments.cross_prediction import run_cross_prediction
    from introspection.pipeline.executor import LocalExecutor
    from introspection.pipeline.run_context import RunContext

    records = []
    original = SPAWN_AND_WAIT  # the real one, not a wrapper an earlier call of this function left in place

    def recorded(store_root, target, payload, what, *args, **kwargs):
        record = {"what": what, "devices": devices.environment().get("CUDA_VISIBLE_DEVICES"), "start": time.monotonic()}
        try:
            original(store_root, target, payload, what, *args, **kwargs)
        finally:
            record["end"] = time.monotonic()
            records.append(record)

    monkeypatch.setattr(worker_runs, "spawn_and_wait", recorded)
    cfg = compose_cfg([*tiny_overrides(tiny_pair, store_dir), *extra])
    store = Store(cfg.store_dir)
    result = run_cross_prediction(RunContext(cfg, store, run_dir, LocalExecutor()), NoOptions())
    answers = {p.parent.name: p.read_bytes() for p in (store.root / "artifacts" / "answers").glob("*/answers.jsonl")}
    adapters = sorted(p.name for p in (store.root / "artifacts" / "adapters").iterdir())
    return result, records, answers, adapters


def test_both_sides_at_once_start_together_and_equal_the_sequential_order(monkeypatch, tiny_pair, tiny_run, tmp_path):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # two workers share the two cores (and tiny_run's workers had one)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")  # two pretend devices, one per model (gpus: 1 each)
    at_once, records, answers, adapters = run_recorded(monkeypatch, tiny_pair, tmp_path / "a", tmp_path / "run_a", [])

    base = {r["devices"]: r for r in records if r["what"] in ("inference for tiny_a", "inference for tiny_b")}
    assert base["0"]["what"] == "inference for tiny_a" and base["1"]["what"] == "inference for tiny_b"
    # Both sides' base stages started before either finished.
    assert max(base["0"]["start"], base["1"]["start"]) < min(base["0"]["end"], base["1"]["end"])
    # Every worker ran on the device set of the model it loaded: M1's (and M1-based finetunes') on 0, M2's on 1.
    for r in records:
        label = r["what"].split(" ", 2)[-1]
        assert r["devices"] == ("0" if label.startswith("tiny_a") else "1"), r

    # The sequential order: tiny_run (tests/conftest.py), the same config on no devices, its workers recorded.
    seq_records = tiny_run.workers
    assert all(r["devices"] is None for r in seq_records)
    spans = sorted((r["start"], r["end"]) for r in seq_records)
    assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:], strict=False))  # one at a time

    # The same results: cells, paired tests and scored items (compared as JSON: an empty cell's accuracy is NaN,
    # which equals nothing, itself included); the same answers, byte for byte; the same adapters.
    in_turn = tiny_run.results | {"pairs": [json.loads(line) for line in
                                            (tiny_run.run_dir / "items.jsonl").read_text().splitlines()]}
    for part in ("cells", "paired_tests", "pairs", "alternative_treatment"):
        assert as_json(getattr(at_once, part)) == as_json(in_turn[part]), part
    store = tiny_run.store / "artifacts"
    seq_answers = {p.parent.name: p.read_bytes() for p in (store / "answers").glob("*/answers.jsonl")}
    assert answers == seq_answers and len(answers) >= 10
    assert adapters == sorted(p.name for p in (store / "adapters").iterdir()) and len(adapters) == 4
    assert sorted(r["what"] for r in records) == sorted(r["what"] for r in seq_records)


def test_the_preflight_plan_shows_the_schedule_and_its_makespan(tmp_path, tiny_pair):
    def plan(job_gpus: int) -> dict:
        run_dir = tmp_path / f"plan{job_gpus}"
        proc = run_main([f"hydra.run.dir={run_dir}", "experiment.stop_after=plan", f"preflight.job_gpus={job_gpus}",
                         *tiny_overrides(tiny_pair, tmp_path / "store")])
        return json.loads((run_dir / "plan.json").read_text()) | {"stdout": proc.stdout}

    one, two = plan(1), plan(2)  # a job of one GPU; of two, one per model (gpus: 1 each)
    assert [s["hours"] for s in one["steps"]] == [s["hours"] for s in two["steps"]]  # the same steps
    assert not one["schedule"]["concurrent_sides"] and two["schedule"]["concurrent_sides"]
    assert one["estimate"]["makespan_hours"] == pytest.approx(sum(s["hours"] for s in one["steps"]))
    hours = {(s["stage"], s["slot"]): s["hours"] for s in two["steps"]}
    side = {slot: sum(hours[(stage, slot)] for stage in ("base_answers", "self_finetune", "self_answers"))
            for slot in ("m1", "m2")}
    cross = {slot: hours[("cross_finetune", slot)] + hours[("cross_answers", slot)] for slot in ("m1", "m2")}
    assert two["estimate"]["makespan_hours"] == pytest.approx(max(side.values()) + max(cross.values()))
    assert two["estimate"]["makespan_hours"] < one["estimate"]["makespan_hours"]
    assert "both sides at once" in two["stdout"] and "steps one after another" in one["stdout"]
