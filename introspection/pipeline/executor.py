"""The executor that does the pipeline's work (introspection/pipeline/steps.py sends every model step here through
the run's context): locate the models, answer in worker processes, build rows and finetune, merge an adapter,
and run the two models' independent steps side by side when the job has a GPU set for each. Every artifact
goes through the store, so a rerun recomputes nothing. The pre-flight plan takes the same steps with
introspection/preflight/recorder.py instead, which records them and loads no model."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from omegaconf import OmegaConf

from introspection.checks.model_checks import check_models_fit
from introspection.core import devices
from introspection.core.store import digest
from introspection.core.types import Sampling
from introspection.paper import prompts
from introspection.pipeline.run_context import RunContext
from introspection.stages.adapters import finetune_model
from introspection.stages.answers import AnswerJob, run_answer_jobs, sampling_for
from introspection.stages.items import ItemSet
from introspection.stages.model_ref import ModelRef
from introspection.stages.rows import prepare_rows
from introspection.stages.worker_runs import run_in_subprocess

log = logging.getLogger("introspection")

SLOTS = ("m1", "m2")


class LocalExecutor:
    """Each step computed (or reused from the store) on this machine's devices."""

    def resolve_models(self, ctx: RunContext, plan: ItemSet | None) -> dict[str, ModelRef]:
        """Locate (or materialise) the weights of M1 and M2, then check that they fit the run (LoRA rank; with
        the plan, the longest prompts against max_model_len) before any inference."""
        from introspection.core.config import ModelEntry
        from introspection.weights.resolve import resolve_model

        def resolve(slot: str) -> ModelRef:
            entry = OmegaConf.to_container(ctx.cfg.model[slot], resolve=True)
            resolved = resolve_model(ModelEntry(**entry), ctx.store.root, where=f"model.{slot}")
            return ModelRef(entry["name"], entry, asdict(resolved))

        # Both at once: converting the embedded pair's GGUF files is mostly single-threaded (44 s together
        # instead of 64 s one after the other on 2 cores, docs/measurements.md); a first failure is raised
        # once both have ended, in slot order.
        check_distinct_names(ctx.cfg)
        with ThreadPoolExecutor(max_workers=len(SLOTS)) as pool:
            futures = {slot: pool.submit(resolve, slot) for slot in SLOTS}
        refs = {slot: future.result() for slot, future in futures.items()}
        check_models_fit(ctx.cfg, refs, plan)
        return refs

    def answer(self, ctx: RunContext, model: ModelRef, jobs: dict[str, tuple]) -> dict[str, dict]:
        """Named answer jobs {name: (requests, hypothetical? or a Sampling)} for one model in one worker process."""
        built = [AnswerJob(name, requests, how if isinstance(how, Sampling) else sampling_for(ctx.cfg.inference, how))
                 for name, (requests, how) in jobs.items()]
        run_answer_jobs(ctx.store, model, built, ctx.cfg.inference, profile=ctx.profile)
        return {job.name: job.answers for job in built}

    def train(self, ctx: RunContext, plan: ItemSet, predictor: ModelRef, target: ModelRef, target_answers: dict,
              finetune_cfg, predictor_answers: dict | None, label: str, kind: str) -> ModelRef:
        """`predictor` finetuned on hypothetical prompts answered with `target`'s behaviour (kind: self, cross)."""
        rows, rows_key = prepare_rows(ctx.store, plan, predictor, target, target_answers, ctx.cfg.tasks, finetune_cfg,
                                      predictor_answers=predictor_answers)
        return finetune_model(ctx.store, predictor, rows, rows_key, finetune_cfg, label, profile=ctx.profile)

    def train_on_rows(self, ctx: RunContext, base: ModelRef, rows: list[dict], rows_kind: str, info: dict, label: str,
                      kind: str, after: tuple = ()) -> ModelRef:
        """`base` finetuned on rows an experiment built itself (finetune.data.sft_rows), stored under a key of
        their content and `rows_kind`. `after`: the answers they came from (the plan's dependencies)."""
        from introspection.finetune.data import write_rows

        rows_key = digest({"kind": rows_kind, "normalizer": prompts.NORMALIZER_VERSION, "rows": rows})
        folder = ctx.store.get_or_build("sft_rows", rows_key, lambda d: write_rows(rows, d / "rows.jsonl") and None,
                                        info | {"n_rows": len(rows)})
        return finetune_model(ctx.store, base, folder / "rows.jsonl", rows_key, ctx.cfg.finetune, label,
                              profile=ctx.profile)

    def merge(self, ctx: RunContext, model: ModelRef) -> ModelRef:
        """A finetuned model as a new base: its adapter merged into the weights (in a worker process), in the
        model entry's dtype on the side's GPUs where it has them (lora.merge_adapter), float32 on a CPU."""
        from introspection.inference.lora import merge_dtype, merged_folder_ready
        from introspection.stages.worker import merge_worker

        out_dir = ctx.store.root / "merged" / model.fingerprint[:24]
        revision = model.resolved.get("revision")  # a hub base: the commit its key names
        dtype = merge_dtype(model.entry.get("dtype", "auto"), on_gpu=bool(devices.visible_devices()))
        if not merged_folder_ready(model.resolved["path"], model.adapter_dir, out_dir, dtype=dtype, revision=revision):
            run_in_subprocess(ctx.store, merge_worker, {"base_path": model.resolved["path"],
                                                        "adapter_dir": model.adapter_dir, "out_dir": str(out_dir),
                                                        "dtype": dtype, "revision": revision},
                              f"merging {model.label}", profile=ctx.profile)
        # A local folder now: no hub revision to load it at (its fingerprint still names the commit it came from).
        resolved = {**model.resolved, "path": str(out_dir), "fingerprint": model.fingerprint, "revision": None}
        return ModelRef(model.label, model.entry, resolved)

    def run_per_side(self, ctx: RunContext, steps: list[Callable[[str], None]], slots: tuple[str, ...],
                     device_slot: Callable[[str], str]) -> None:
        run_sides(schedule_sides(ctx.cfg), steps, slots, device_slot)

    def score(self, fn: Callable, *args, **kwargs):
        return fn(*args, **kwargs)


def check_distinct_names(cfg) -> None:
    if cfg.model.m1.name == cfg.model.m2.name:
        raise ValueError(f"model.m1.name and model.m2.name are both '{cfg.model.m1.name}'; give the two models "
                         "distinct names")


# --- both sides of the pair at once ---------------------------------------------------------------
@dataclass(frozen=True)
class SideSchedule:
    """Where each model's steps run: None for one after the other in this process's devices (as on a CPU or
    one GPU), else a device set per model slot (CUDA device ids, disjoint) for running the sides at once."""

    device_sets: dict[str, list[str]] | None = None
    why: str = ""

    @property
    def concurrent(self) -> bool:
        return self.device_sets is not None


def schedule_sides(cfg, visible: list[str] | None = None) -> SideSchedule:
    """experiment.concurrent_sides=auto: both sides at once when the job's visible CUDA devices hold a disjoint
    set of model.m1.gpus and model.m2.gpus devices (M1 takes the first ones); off, or too few devices: sequential."""
    if cfg.experiment.concurrent_sides == "off":  # its valid values are checked at start (config.CHOICES)
        return SideSchedule(None, "experiment.concurrent_sides=off")
    visible = devices.visible_devices() if visible is None else visible
    need = {slot: int(cfg.model[slot].gpus) for slot in SLOTS}
    if len(visible) < 2 or len(visible) < sum(need.values()):
        return SideSchedule(None, f"{len(visible)} visible CUDA device(s); both sides at once need "
                                  f"{need['m1']} + {need['m2']}")
    sets = {"m1": visible[: need["m1"]], "m2": visible[need["m1"]: need["m1"] + need["m2"]]}
    return SideSchedule(sets, f"M1 on CUDA devices {','.join(sets['m1'])}, M2 on {','.join(sets['m2'])}")


def run_sides(schedule: SideSchedule, steps: list[Callable[[str], None]], slots: tuple[str, ...] = SLOTS,
              device_slot: Callable[[str], str] = lambda slot: slot) -> None:
    """Run each step once per slot. Sequential (no device sets): step by step, each for every slot in turn.
    Concurrent: one thread per slot runs that slot's steps in order, its workers confined to the device set of
    device_slot(slot) (the model that runs there). A step reads only what its own slot's earlier steps wrote,
    so the two orders compute the same artifacts; the first failure is raised once both threads end."""
    if not schedule.concurrent:
        for step in steps:
            for slot in slots:
                step(slot)
        return

    def one_side(slot: str) -> None:
        threading.current_thread().name = f"side-{slot}"
        with devices.confined_to(schedule.device_sets[device_slot(slot)]):
            for step in steps:
                step(slot)

    with ThreadPoolExecutor(max_workers=len(slots)) as pool:
        futures = [pool.submit(one_side, slot) for slot in slots]
    for future in futures:
        future.result()  # re-raises a side's failure here, in the main thread
