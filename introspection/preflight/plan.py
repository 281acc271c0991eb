"""The pre-flight plan: what a run will compute and what it will roughly cost, before any model loads.

    python -m introspection.main model=llama3_70b tasks=all tasks.data_dir=DIR experiment.stop_after=plan
    python -m introspection.main experiment=calibration experiment.stop_after=plan    # any experiment

Offline, no GPU, seconds. The chosen experiment runs its own steps (introspection/experiments/) against the
recording executor of introspection/preflight/recorder.py, which counts per step the requests, prompt tokens,
generated tokens, training rows and tokens, engine starts and finetunes, and answers with placeholders; the
experiment stops at its scoring. Items, prompts and training rows are built exactly as the run would
(stages.build_items, ItemSet.object_requests / hypothetical_requests, the row selection of stages.prepare_rows).
Tokens are counted with the model's tokenizer when it is on this machine (a local folder, a converted embedded
model, the Hugging Face cache), else estimated from characters; the plan says which. Hours come from the rate
model of introspection/preflight/rates.py with the rates of conf/preflight/default.yaml (per GPU type and model size
class, each with its public source; overridable on the command line). A server model's steps
(model.mX.source=server: an API model) take no GPU: they are priced in tokens and dollars from
preflight.api_prices (each price with its date and source), its training at the epochs its job will run. The
plan counts a run from an empty store: artifacts already in the store would be reused by the real run.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

from introspection.core.store import Store, write_json_atomic
from introspection.paper.tasks.sizes import short_of_paper
from introspection.pipeline.steps import RunContext, build_items, schedule_sides
from introspection.preflight.recorder import END_OF_TURN_TOKENS, PlanRecorded, RecordingExecutor, Step

PLAN_FILE = "plan.json"  # the sweep table reads a job folder holding it as a planned job (introspection.outputs.sweep)

log = logging.getLogger(__name__)


def sides_makespan_hours(steps: list[Step], key: str = "hours") -> float:
    """The makespan when both sides run at once (pipeline.run_per_side): within each phase (one run_per_side
    call) the two sides side by side, the phase as long as its slower side; steps outside a phase one after
    another. key: the steps' hours (expected) or hours_max (bounds)."""
    phases: dict[int, dict[str, float]] = {}
    alone = 0.0
    for step in steps:
        if step.phase is None:
            alone += getattr(step, key)
        else:
            side = phases.setdefault(step.phase, {})
            side[step.side] = side.get(step.side, 0.0) + getattr(step, key)
    return alone + sum(max(sides.values()) for sides in phases.values())


def critical_path_hours(steps: list[Step]) -> float:
    """The longest chain of dependent steps: the makespan if independent steps ran at once."""
    finish: dict[str, float] = {}
    for step in steps:  # in run order, so every dependency is already timed
        finish[step.id] = step.hours + max((finish[d] for d in step.depends_on), default=0.0)
    return max(finish.values(), default=0.0)


# --- the plan -------------------------------------------------------------------------------------
def record_steps(cfg, store: Store, experiment, options, run_dir: Path | None = None) -> RecordingExecutor:
    """The experiment's steps, recorded and priced: it runs against the recording executor until its scoring."""
    planner = RecordingExecutor(cfg, store.root)
    try:
        experiment.run(RunContext(cfg, store, Path(run_dir or store.root), planner), options)
    except PlanRecorded:
        pass
    return planner


def make_plan(cfg, store: Store, experiment, options) -> dict:
    """The plan of `experiment` (an experiments.Experiment, with its parsed options) as a JSON-ready dict."""
    plan = build_items(cfg.tasks, store)
    planner = record_steps(cfg, store, experiment, options)
    steps = planner.steps
    pf = cfg.preflight
    job_gpus = planner.job_gpus()
    # The run's own rule (experiment.concurrent_sides), applied to the job's GPUs: both sides at once when they
    # hold model.m1.gpus + model.m2.gpus (preflight.gpus= the job's request), else one step after another.
    sides = schedule_sides(cfg, visible=[str(i) for i in range(job_gpus)])

    def makespan_of(key: str) -> float:
        return sides_makespan_hours(steps, key) if sides.concurrent else sum(getattr(s, key) for s in steps)

    makespan, makespan_max = makespan_of("hours"), makespan_of("hours_max")
    stages: dict[str, dict] = {}
    for s in steps:  # totals per stage, in run order
        total = stages.setdefault(s.stage, {"steps": 0, "requests": 0, "prompt_tokens": 0, "generated_tokens": 0,
                                            "generated_tokens_max": 0, "engine_starts": 0, "finetunes": 0,
                                            "training_rows": 0, "training_tokens": 0, "training_tokens_max": 0,
                                            "hours": 0.0, "hours_max": 0.0, "gpu_hours": 0.0})
        total["steps"] += 1
        for key in list(total)[1:]:
            total[key] += getattr(s, key)
    models = {}
    for slot, entry in planner.entries.items():
        counter = planner.counters[slot]
        models[slot] = {"name": entry["name"], "source": entry["source"], "path": entry["path"],
                        "tokens": counter.method, "tokenizer_counted": counter.counted, **planner.sizes[slot]}
        if planner.server[slot]:
            models[slot]["prices"] = planner.prices[slot]
    api_steps = [s for s in steps if planner.server[s.slot] and s.gpus == 0]  # a served model's TRL finetune takes GPUs
    return {
        "config": {"model": cfg.model.name, "tasks": cfg.tasks.name, "experiment": cfg.experiment.name,
                   "finetune": cfg.finetune.name, "inference_backend": cfg.inference.backend},
        "items": {"train": len(plan.train_items), "test": len(plan.test_items),
                  "tasks": {t: sum(1 for it in plan.train_items + plan.test_items if it.task == t) for t in plan.properties},
                  "properties": plan.properties, "rows_per_property": int(cfg.tasks.n_finetune_per_property),
                  # tasks whose source holds fewer items than the paper's split (docs/method.md §2)
                  "short_of_paper": short_of_paper(cfg.tasks, plan.train_items, plan.test_items)},
        "models": models,
        "bounds": {
            "generated_tokens": (f"expected: each answer at its task's expected length (preflight.answer_tokens: "
                                 f"hypothetical {planner.lengths.answer('', True):g}, object-level per task) + 1 "
                                 f"end-of-turn token; upper bound (<=): every answer at its cap (inference.max_tokens="
                                 f"{cfg.inference.max_tokens} object-level, inference.max_tokens_hypothetical="
                                 f"{cfg.inference.max_tokens_hypothetical} hypothetical); x {1 if cfg.inference.temperature <= 0 else int(cfg.inference.n_samples)} "
                                 f"generation(s) per request"),
            "training_rows": ("upper bound: every object-level answer compliant (a non-compliant answer gives no "
                              "row); selection, de-duplication and cap as the run does them"),
            "training_tokens": (f"prompt tokens + the expected answer (upper bound: the answer cap) + "
                                f"{END_OF_TURN_TOKENS} end-of-turn tokens per row, truncated at finetune.max_length="
                                f"{cfg.finetune.max_length}; x finetune.epochs={cfg.finetune.epochs:g} in the hours"),
            "store": "a run from an empty store (artifacts already there are reused by the real run)",
        },
        "notes": planner.notes,  # what the plan could not price, one line each
        "steps": [asdict(s) for s in steps],
        "stages": stages,
        "schedule": {"order": [s.id for s in steps], "depends_on": {s.id: s.depends_on for s in steps},
                     "concurrent_sides": sides.concurrent, "sides": sides.why},
        "estimate": {
            "gpu": pf.gpu, "job_gpus": job_gpus,
            "makespan_hours": makespan,  # as one job runs them: one after another, or both sides at once
            "makespan_hours_max": makespan_max,  # the same at the bounds (every answer at its cap)
            "job_gpu_hours": makespan * job_gpus,  # what the job holds for its whole makespan
            "job_gpu_hours_max": makespan_max * job_gpus,
            "step_gpu_hours": sum(s.gpu_hours for s in steps),  # what the steps use
            "critical_path_hours": critical_path_hours(steps),
            "assumptions": {"gpu": pf.gpu, "gpus": pf.gpus, "linear_scaling_with_gpus": True,
                            "rates_per_gpu": {planner.sizes[s]["size_class"]: planner.sizes[s]["rates"]
                                              for s in planner.sizes if planner.sizes[s]["rates"] is not None},
                            "answer_tokens": planner.lengths.table,
                            "source": "conf/preflight/default.yaml, each figure's public source there and in "
                                      "docs/measurements.md §7 (override: preflight.throughput.<gpu>.<class>.<key>=...)"},
        },
        # Server models: tokens and dollars (their steps take no GPU); dollars of priced steps only
        "api": {"steps": len(api_steps),
                "prompt_tokens": sum(s.prompt_tokens for s in api_steps),
                "generated_tokens": sum(s.generated_tokens for s in api_steps),
                "generated_tokens_max": sum(s.generated_tokens_max for s in api_steps),
                "training_tokens": sum(s.training_tokens for s in api_steps),
                "dollars": sum(s.dollars or 0.0 for s in api_steps),
                "dollars_max": sum(s.dollars_max or 0.0 for s in api_steps),
                "unpriced_steps": [s.id for s in api_steps if s.dollars is None]},
    }


def run_plan(cfg, run_dir: Path, experiment, options) -> None:
    """experiment.stop_after=plan: print the plan and write run_dir/plan.json; no model is loaded."""
    store = Store(cfg.store_dir)
    result = make_plan(cfg, store, experiment, options)
    path = Path(run_dir) / PLAN_FILE
    write_json_atomic(path, result)
    from introspection.preflight.text import format_plan

    print(format_plan(result))
    print(f"\nplan written to {path}")
