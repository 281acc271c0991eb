"""The pre-flight plan's executor: an experiment's own steps (introspection/pipeline/steps.py) recorded instead of
run. Each answer, finetune and merge becomes a Step with its model, stage, requests, prompt and generated
tokens, training rows and tokens, engine starts, GPUs and the steps it depends on, priced with the rate model of
introspection/preflight/rates.py; it returns placeholder answers and adapters, so no model loads, nothing is
answered or trained, and the store receives nothing beyond the items. The experiment stops at its scoring
(pipeline.score raises PlanRecorded): placeholders are not scored. introspection/preflight/plan.py makes the plan.

What cannot be known before the models answer is estimated, with a bound beside it:
  * generated tokens: each answer at its task's expected length (preflight.answer_tokens) for the hours,
    every answer at its cap (the job's max_tokens) for the upper bound;
  * training rows: every object-level answer is compliant (a non-compliant answer gives no row).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from omegaconf import OmegaConf

from introspection.core.types import Answer, ChatRequest, Sampling
from introspection.pipeline.executor import SLOTS, check_distinct_names
from introspection.pipeline.run_context import RunContext
from introspection.preflight.rates import (
    AnswerLengths,
    api_prices,
    base_model_id,
    dollars,
    inference_seconds,
    model_params_b,
    openai_epochs,
    rates_for,
    training_seconds,
)
from introspection.preflight.tokens import TokenCounter
from introspection.stages.answers import sampling_for
from introspection.stages.finetune_settings import finetune_settings
from introspection.stages.items import ItemSet
from introspection.stages.model_ref import ModelRef

END_OF_TURN_TOKENS = 2  # markup after a training completion (e.g. "<|im_end|>\n"), in the training bound
PLACEHOLDER = "?"  # a planned answer or row completion: unknown until the model answers
OBJECT_ROWS = ("object", "object_level")  # the `property` of a row whose completion is an object-level answer


class PlanRecorded(Exception):  # noqa: N818 - a signal, not an error: the experiment reached its scoring
    """Raised by RecordingExecutor.score: every model step of the experiment is recorded."""


@dataclass
class Step:
    """One step of the run, in the order the experiment takes them."""

    id: str
    stage: str  # <kind>_answers | <kind>_finetune | merge; kind: base, self, cross, or an experiment's own
    model: str  # the model as the run labels it, e.g. "llama3_1_70b[self]"
    slot: str  # the base model's slot (m1 | m2)
    depends_on: list[str]
    gpus: int
    jobs: list[dict] = field(default_factory=list)  # answer jobs: name, requests, prompt/generated tokens
    requests: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0  # at the expected answer lengths
    generated_tokens_max: int = 0  # every answer at its cap
    engine_starts: int = 0
    finetunes: int = 0
    training_rows: int = 0
    anchor_rows: int = 0
    training_tokens: int = 0  # per epoch, completions at the expected answer lengths
    training_tokens_max: int = 0  # per epoch, completions at the caps
    hours: float = 0.0  # at the expected lengths
    hours_max: float = 0.0  # at the bounds
    gpu_hours: float = 0.0
    dollars: float | None = None  # a server model's step: at the expected lengths (None: a price is unknown)
    dollars_max: float | None = None  # at the bounds
    priced_as: str = ""  # which prices and epochs a server model's step is priced at
    phase: int | None = None  # the run_per_side call it ran in (both sides of a phase may run at once)
    side: str | None = None  # the slot whose devices it ran on within that phase


class PlannedAnswers(dict):
    """Placeholder answers {request id: Answer}, and the step that would answer them."""

    def __init__(self, step_id: str, answers: dict):
        super().__init__(answers)
        self.step_id = step_id


def planned_rows(plan: ItemSet, tasks_cfg, finetune_cfg) -> tuple[list[dict], list[ChatRequest]]:
    """The hypothetical rows stages.prepare_rows builds, and its object-level anchor candidates, when every
    object-level answer is compliant: the same seeded selection per (task, property), the same
    de-duplication and cap (finetune.data.sft_rows). Completions are a placeholder: identical prompts
    get identical greedy answers, so de-duplicating on the prompt alone is what the run does."""
    from introspection.finetune.data import sft_rows

    requests = {r.request_id: r for r in plan.hypothetical_requests(plan.train_items)}
    rng = random.Random(tasks_cfg.seed)  # as prepare_rows: tasks.seed picks which train items become rows
    examples = []
    for task in tasks_cfg.train_tasks:
        for name in plan.properties[task]:
            block = sorted((it for it in plan.train_items if it.task == task), key=lambda it: it.item_id)
            rng.shuffle(block)
            for it in block[: tasks_cfg.n_finetune_per_property]:
                request_id = f"hyp|{it.item_id}|{name}"
                examples.append({"prompt": requests[request_id].messages, "completion": PLACEHOLDER,
                                 "request_id": request_id})
    rows = sft_rows(examples, max_examples=finetune_cfg.max_examples, seed=finetune_cfg.seed)
    # Anchors (finetune.object_anchor_ratio): one per distinct object-level prompt at most.
    object_requests = {r.request_id: r for r in plan.object_requests(plan.train_items)}
    anchors = sft_rows([{"prompt": r.messages, "completion": PLACEHOLDER, "request_id": r.request_id}
                        for r in object_requests.values()], max_examples=None, seed=finetune_cfg.seed)
    return rows, [object_requests[a["request_id"]] for a in anchors]


class RecordingExecutor:
    """Records and prices every step an experiment takes; `steps` in run order, `notes` what it could not price."""

    def __init__(self, cfg, store_root):
        self.cfg = cfg
        pf = cfg.preflight
        if pf.gpus is not None and pf.gpus < 1:
            raise ValueError(f"preflight.gpus={pf.gpus} is not valid; valid: an integer >= 1, or null (each step's own GPUs)")
        if not pf.chars_per_token > 0:
            raise ValueError(f"preflight.chars_per_token={pf.chars_per_token} is not valid; valid: a number > 0")
        self.entries = {slot: OmegaConf.to_container(cfg.model[slot], resolve=True) for slot in SLOTS}
        self.counters = {slot: TokenCounter(e, store_root, pf.chars_per_token) for slot, e in self.entries.items()}
        self.sizes, self.prices, self.notes = {}, {}, []
        self.server = {slot: e["source"] == "server" for slot, e in self.entries.items()}
        # A served model whose adapters TRL trains here on the weights it serves (its `weights`, not finetune=openai):
        # its finetunes take the job's GPUs at those weights' size; its answers are still the server's.
        self.trains_here = {slot: self.server[slot] and bool(e.get("weights")) and cfg.finetune.get("api") != "openai"
                            for slot, e in self.entries.items()}
        for slot, entry in self.entries.items():
            if self.trains_here[slot]:
                params, how = model_params_b({**entry, "path": entry["weights"], "source": "local"}, slot)
                size, rates = rates_for(params, pf)
                self.sizes[slot] = {"params_b": params, "params_from": f"{how} (its weights, trained here)",
                                    "size_class": size, "rates": rates}
            if self.server[slot]:  # an API model: no size, no GPU; priced in dollars
                self.sizes.setdefault(slot, {"params_b": None, "params_from": "a server model: priced in tokens and dollars",
                                             "size_class": "api", "rates": None})
                self.prices[slot] = api_prices(pf.get("api_prices"), str(entry["path"]))
                if self.prices[slot] is None:
                    base = base_model_id(str(entry["path"]))[0]
                    self.notes.append(f"no price for model id {base} ({entry['name']}, model.{slot}) in "
                                      f"preflight.api_prices (conf/preflight/default.yaml): its steps show tokens, "
                                      f"no dollars; add preflight.api_prices.{base} to price them")
                continue
            params, how = model_params_b(entry, slot)
            size, rates = rates_for(params, pf)
            self.sizes[slot] = {"params_b": params, "params_from": how, "size_class": size, "rates": rates}
        self.lengths = AnswerLengths(pf.get("answer_tokens"))
        self.steps: list[Step] = []
        self.kind_of: dict[str, str] = {}  # a finetune or merge step's id -> the kind of model it makes
        self.rows: dict[tuple, tuple] = {}  # (plan, max_examples, seed) -> planned_rows
        self.answered: dict[tuple, PlannedAnswers] = {}  # (model, producer, request ids, sampling) -> its answers
        self.phase: int | None = None
        self.phases = 0
        self.side: str | None = None

    # --- the pipeline's steps -------------------------------------------------------------------
    def resolve_models(self, ctx: RunContext, plan: ItemSet | None) -> dict[str, ModelRef]:
        """Each slot's entry as a model, unresolved: no weights are located, downloaded or converted."""
        check_distinct_names(self.cfg)
        return {slot: ModelRef(e["name"], e, {"path": e["path"], "fingerprint": f"planned:{slot}"})
                for slot, e in self.entries.items()}

    def answer(self, ctx: RunContext, model: ModelRef, jobs: dict[str, tuple]) -> dict[str, dict]:
        """A step for the jobs not answered before in this run (those the run would find in the store)."""
        slot, producer = self._slot(model), self._producer(model)
        out, new = {}, {}
        for name, (requests, how) in jobs.items():
            sampling = how if isinstance(how, Sampling) else sampling_for(self.cfg.inference, how)
            key = (model.label, producer, tuple(r.request_id for r in requests), sampling)
            if key in self.answered:
                out[name] = self.answered[key]
            else:
                new[name] = (requests, how, sampling, key)
        if not new:
            return out
        stage = f"{self.kind_of.get(producer, 'base')}_answers"
        step = self._step(stage, model.label, slot, [producer] if producer else [], self.inference_gpus(slot))
        step.engine_starts = 0 if self.server[slot] else 1
        for name, (requests, how, sampling, key) in new.items():
            hypothetical = how if isinstance(how, bool) else any(r.kind == "hypothetical" for r in requests)
            samples = 1 if sampling.temperature <= 0 else int(sampling.n_samples)  # generations per request
            cap = int(sampling.max_tokens)
            prompt = sum(self.counters[slot].prompt_tokens(requests))
            expected = round(samples * sum(self.lengths.generated(r.task, hypothetical, cap) for r in requests))
            generated = len(requests) * cap * samples
            step.jobs.append({"name": name, "requests": len(requests), "prompt_tokens": prompt,
                              "generated_tokens": expected, "generated_tokens_max": generated})
            step.requests += len(requests)
            step.prompt_tokens += prompt
            step.generated_tokens += expected
            step.generated_tokens_max += generated
            out[name] = self.answered[key] = PlannedAnswers(step.id, {
                r.request_id: Answer(r.request_id, PLACEHOLDER, [PLACEHOLDER] * samples) for r in requests})
        if self.server[slot]:  # the self- and cross-trained models answer at the base's finetuned rates
            self._priced(step, {"input": step.prompt_tokens, "output": step.generated_tokens},
                         {"input": step.prompt_tokens, "output": step.generated_tokens_max}, finetuned=bool(producer))
        else:
            rates = self.sizes[slot]["rates"]
            self._timed(step, inference_seconds(step.prompt_tokens, step.generated_tokens, 1, step.gpus, rates),
                        inference_seconds(step.prompt_tokens, step.generated_tokens_max, 1, step.gpus, rates))
        return out

    def train(self, ctx: RunContext, plan: ItemSet, predictor: ModelRef, target: ModelRef, target_answers: dict,
              finetune_cfg, predictor_answers: dict | None, label: str, kind: str) -> ModelRef:
        """The rows prepare_rows would build when every answer is compliant, with its anchors."""
        memo = (id(plan), finetune_cfg.max_examples, finetune_cfg.seed)  # paper scale: 30k rows, built once
        if memo not in self.rows:
            self.rows[memo] = planned_rows(plan, self.cfg.tasks, finetune_cfg)
        rows, anchors = self.rows[memo]
        hyp = [(ChatRequest(r["request_id"], r["prompt"]), True) for r in rows]
        ratio = float(finetune_cfg.get("object_anchor_ratio", 0.0) or 0.0)
        chosen = anchors[: max(1, round(ratio * len(hyp)))] if ratio > 0 else []  # as prepare_rows mixes them
        return self._finetune(predictor, hyp + [(a, False) for a in chosen], len(chosen), finetune_cfg, label, kind,
                              (target_answers, predictor_answers))

    def train_on_rows(self, ctx: RunContext, base: ModelRef, rows: list[dict], rows_kind: str, info: dict, label: str,
                      kind: str, after: tuple = ()) -> ModelRef:
        requests = [(ChatRequest(f"{rows_kind}|{r.get('item_id')}|{r.get('property')}", r["prompt"], task=r.get("task", "")),
                     r.get("property") not in OBJECT_ROWS) for r in rows]
        return self._finetune(base, requests, 0, self.cfg.finetune, label, kind, after)

    def merge(self, ctx: RunContext, model: ModelRef) -> ModelRef:
        """Recorded, not priced (the rate model has no merge rate): one load of the weights, minutes at most."""
        producer = self._producer(model)
        step = self._step("merge", model.label, self._slot(model), [producer] if producer else [], 0)
        self.kind_of[step.id] = self.kind_of.get(producer, "base")
        self.notes.append(f"{step.id}: merging an adapter into its base is not priced (no merge rate in plan_rates)")
        return ModelRef(model.label, model.entry, model.resolved, "planned", step.id)

    def run_per_side(self, ctx: RunContext, steps: list[Callable[[str], None]], slots: tuple[str, ...],
                     device_slot: Callable[[str], str]) -> None:
        """One side after the other, in the sequential order; each step remembers its phase and side, so the
        plan can also time both sides at once."""
        self.phase, self.phases = self.phases, self.phases + 1
        try:
            for step in steps:
                for slot in slots:
                    self.side = device_slot(slot)
                    step(slot)
        finally:
            self.phase = self.side = None

    def score(self, fn: Callable, *args, **kwargs):
        raise PlanRecorded()

    # --- GPUs a step uses: what the run gives it, unless preflight.gpus plans every step on that many ---------
    def inference_gpus(self, slot: str) -> int:
        if self.server[slot]:
            return 0
        return int(self.cfg.preflight.gpus or self.entries[slot].get("tensor_parallel_size") or 1)

    def training_gpus(self, slot: str, finetune_cfg) -> int:
        if self.server[slot] and not self.trains_here[slot]:
            return 0
        if self.cfg.preflight.gpus:
            return int(self.cfg.preflight.gpus)
        strategy = finetune_settings(finetune_cfg, self.entries[slot])["multi_gpu"]  # auto: the entry's
        return int(self.entries[slot]["gpus"]) if strategy != "none" else 1

    def job_gpus(self) -> int:
        """GPUs one job of this pair holds: preflight.job_gpus, else the Slurm request (the larger model's gpus)."""
        pf = self.cfg.preflight
        return int(pf.get("job_gpus") or pf.gpus or max(int(e["gpus"]) for e in self.entries.values()))

    # --- recording and pricing -----------------------------------------------------------------------
    def _slot(self, model: ModelRef) -> str:
        return next(slot for slot, e in self.entries.items() if e["name"] == model.entry["name"])

    def _producer(self, model: ModelRef) -> str | None:
        return model.adapter_key if model.adapter_key in self.kind_of else None

    def _step(self, stage: str, label: str, slot: str, depends_on: list[str], gpus: int) -> Step:
        step_id, taken, n = f"{stage}:{label}", {s.id for s in self.steps}, 2
        while step_id in taken:  # the same model and stage again (e.g. scaling's cross-predictors): numbered
            step_id, n = f"{stage}:{label} #{n}", n + 1
        step = Step(step_id, stage, label, slot, depends_on, gpus, phase=self.phase, side=self.side)
        self.steps.append(step)
        return step

    def _finetune(self, base: ModelRef, rows: list[tuple[ChatRequest, bool]], anchor_rows: int, finetune_cfg,
                  label: str, kind: str, inputs: tuple) -> ModelRef:
        """rows: (prompt, hypothetical?) per training row; inputs: the answers they were made from."""
        slot = self._slot(base)
        needs = [getattr(a, "step_id", None) for a in inputs] + [self._producer(base)]
        step = self._step(f"{kind}_finetune", label, slot, list(dict.fromkeys(d for d in needs if d)),
                          self.training_gpus(slot, finetune_cfg))
        step.finetunes, step.anchor_rows, step.training_rows = 1, anchor_rows, len(rows)
        counter, max_length = self.counters[slot], int(finetune_cfg.max_length)
        inf = self.cfg.inference
        caps = {False: int(inf.max_tokens), True: int(inf.max_tokens_hypothetical)}
        # expected completion: a hypothetical answer's length; an object-level one's, under its cap
        sized = [(n, caps[hyp], self.lengths.answer("", True) if hyp else min(caps[False], self.lengths.answer(r.task, False)))
                 for n, (r, hyp) in zip(counter.prompt_tokens([r for r, _ in rows]), rows, strict=True)]
        step.training_tokens = round(sum(min(max_length, n + answer + END_OF_TURN_TOKENS) for n, _, answer in sized))
        step.training_tokens_max = sum(min(max_length, n + cap + END_OF_TURN_TOKENS) for n, cap, _ in sized)
        if self.server[slot] and not self.trains_here[slot]:  # the fine-tuning API bills every epoch's tokens
            epochs, how = openai_epochs(finetune_cfg.openai.n_epochs, step.training_rows)
            step.priced_as = how
            self._priced(step, {"training": step.training_tokens * epochs}, {"training": step.training_tokens_max * epochs})
        else:
            rates, epochs = self.sizes[slot]["rates"], float(finetune_cfg.epochs)
            self._timed(step, training_seconds(step.training_tokens, epochs, 1, step.gpus, rates),
                        training_seconds(step.training_tokens_max, epochs, 1, step.gpus, rates))
        self.kind_of[step.id] = kind
        return ModelRef(label, base.entry, base.resolved, "planned", step.id)

    def _priced(self, step: Step, tokens: dict[str, float], bound: dict[str, float], finetuned: bool = False) -> None:
        """A server model's step: dollars at its model's prices (None where a price is unknown), no GPU time."""
        prices = self.prices[step.slot]
        base, already = base_model_id(str(self.entries[step.slot]["path"]))
        if finetuned or already:
            tokens, bound = ({f"finetuned_{k}": v for k, v in t.items()} for t in (tokens, bound))
        kind = "finetuned " if finetuned or already else ""
        step.priced_as = "; ".join(x for x in (f"{kind}prices of {base}", step.priced_as) if x)
        if prices is not None:
            step.dollars, step.dollars_max = dollars(tokens, prices), dollars(bound, prices)
            if step.dollars is None:
                missing = ", ".join(k for k, v in tokens.items() if v and prices.get(k) is None)
                self.notes.append(f"{step.id}: no {missing} price for {base} in preflight.api_prices (null there: "
                                  f"not found as of {prices.get('as_of')}); tokens only")
        self._timed(step, 0.0)

    @staticmethod
    def _timed(step: Step, seconds: float, bound_seconds: float | None = None) -> None:
        step.hours = seconds / 3600
        step.hours_max = (seconds if bound_seconds is None else bound_seconds) / 3600
        step.gpu_hours = step.hours * step.gpus
