"""The pre-flight plan: what a run will compute and what it will roughly cost, before any model loads.

    python -m introspection.main model=llama3_70b tasks=all tasks.data_dir=DIR experiment.stop_after=plan

Offline, no GPU, seconds. It builds the items, prompts and training rows exactly as the run would
(stages.build_plan, Plan.object_requests / hypothetical_requests, the row selection of
stages.prepare_rows) and walks the steps of main.run_cross_prediction in their order, counting per step
the requests, prompt tokens, generated tokens, training rows and tokens, vLLM engine starts and
finetunes. Tokens are counted with the model's tokenizer when it is on this machine (a local folder, a
converted embedded model, the Hugging Face cache), else estimated from characters; the plan says which.
What cannot be known before the models answer is estimated, with a bound beside it:
  * generated tokens: each answer at its task's expected length (preflight.answer_tokens) for the hours,
    every answer at its cap (inference.max_tokens / max_tokens_hypothetical) for the upper bound;
  * training rows: every object-level answer is compliant (a non-compliant answer gives no row).
Hours come from the rate model of introspection/plan_rates.py with the rates of conf/preflight/default.yaml
(per GPU type and model size class, each with its public source; overridable on the command line). A server
model's steps (model.mX.source=server: an API model) take no GPU: they are priced in tokens and dollars from
preflight.api_prices (each price with its date and source), its training at the epochs its job will run. The
plan counts a run from an empty store: artifacts already in the store would be reused by the real run.
"""

from __future__ import annotations

import logging
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from introspection.plan_rates import (
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
from introspection.plan_tokens import TokenCounter
from introspection.stages.finetune_settings import finetune_settings
from introspection.stages.plan import Plan, build_plan
from introspection.store import Store, write_json_atomic
from introspection.tasks.sizes import short_of_paper
from introspection.types import ChatRequest

PLAN_FILE = "plan.json"  # the sweep table reads a job folder holding it as a planned job (introspection.sweep)

log = logging.getLogger(__name__)

END_OF_TURN_TOKENS = 2  # markup after a training completion (e.g. "<|im_end|>\n"), in the training bound
PLACEHOLDER = "?"  # the completion of a planned row: unknown until the target model answers


# --- the steps ------------------------------------------------------------------------------------
@dataclass
class Step:
    """One step of the run, in the order run_cross_prediction takes them."""

    id: str
    stage: str  # base_answers | self_finetune | self_answers | cross_finetune | cross_answers
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


def planned_rows(plan: Plan, tasks_cfg, finetune_cfg) -> tuple[list[dict], list[ChatRequest]]:
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


class Planner:
    """Counts and times every step for one config; `steps` in run order."""

    def __init__(self, cfg, store: Store, plan: Plan):
        self.cfg, self.plan = cfg, plan
        pf = cfg.preflight
        if pf.gpus is not None and pf.gpus < 1:
            raise ValueError(f"preflight.gpus={pf.gpus} is not valid; valid: an integer >= 1, or null (each step's own GPUs)")
        if not pf.chars_per_token > 0:
            raise ValueError(f"preflight.chars_per_token={pf.chars_per_token} is not valid; valid: a number > 0")
        self.entries = {slot: OmegaConf.to_container(cfg.model[slot], resolve=True) for slot in ("m1", "m2")}
        self.counters = {slot: TokenCounter(e, store.root, pf.chars_per_token) for slot, e in self.entries.items()}
        self.sizes, self.prices, self.notes = {}, {}, []
        self.server = {slot: e["source"] == "server" for slot, e in self.entries.items()}
        for slot, entry in self.entries.items():
            if self.server[slot]:  # an API model: no size, no GPU; priced in dollars
                self.sizes[slot] = {"params_b": None, "params_from": "a server model: priced in tokens and dollars",
                                    "size_class": "api", "rates": None}
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
        inf = cfg.inference
        self.samples = 1 if inf.temperature <= 0 else int(inf.n_samples)  # generations per request
        self.caps = {False: int(inf.max_tokens), True: int(inf.max_tokens_hypothetical)}
        self.lengths = AnswerLengths(pf.get("answer_tokens"))
        self.train_obj = plan.object_requests(plan.train_items)
        self.test_obj = plan.object_requests(plan.test_items)
        self.test_hyp = plan.hypothetical_requests(plan.test_items)
        self.rows, self.anchors = planned_rows(plan, cfg.tasks, cfg.finetune)
        self.steps: list[Step] = []

    # GPUs a step uses: what the run gives it, unless preflight.gpus plans every step on that many.
    def inference_gpus(self, slot: str) -> int:
        if self.server[slot]:
            return 0
        return int(self.cfg.preflight.gpus or self.entries[slot].get("tensor_parallel_size") or 1)

    def training_gpus(self, slot: str) -> int:
        if self.server[slot]:
            return 0
        if self.cfg.preflight.gpus:
            return int(self.cfg.preflight.gpus)
        strategy = finetune_settings(self.cfg.finetune, self.entries[slot])["multi_gpu"]  # auto: the entry's
        return int(self.entries[slot]["gpus"]) if strategy != "none" else 1

    def job_gpus(self) -> int:
        """GPUs one job of this pair holds: preflight.job_gpus, else the Slurm request (the larger model's gpus)."""
        pf = self.cfg.preflight
        return int(pf.get("job_gpus") or pf.gpus or max(int(e["gpus"]) for e in self.entries.values()))

    def answer_step(self, stage: str, slot: str, label: str, jobs: dict[str, tuple[list[ChatRequest], bool]],
                    depends_on: list[str]) -> Step:
        step = Step(f"{stage}:{label}", stage, label, slot, depends_on, self.inference_gpus(slot),
                    engine_starts=0 if self.server[slot] else 1)
        cap_of = self.caps
        for name, (requests, hypothetical) in jobs.items():
            prompt = sum(self.counters[slot].prompt_tokens(requests))
            expected = round(self.samples * sum(self.lengths.generated(r.task, hypothetical,
                                                                       cap_of[hypothetical]) for r in requests))
            generated = len(requests) * cap_of[hypothetical] * self.samples
            step.jobs.append({"name": name, "requests": len(requests), "prompt_tokens": prompt,
                              "generated_tokens": expected, "generated_tokens_max": generated})
            step.requests += len(requests)
            step.prompt_tokens += prompt
            step.generated_tokens += expected
            step.generated_tokens_max += generated
        if self.server[slot]:  # the self- and cross-trained models answer at the base's finetuned rates
            return self._priced(step, {"input": step.prompt_tokens, "output": step.generated_tokens},
                                {"input": step.prompt_tokens, "output": step.generated_tokens_max},
                                finetuned=stage != "base_answers")
        rates = self.sizes[slot]["rates"]
        seconds = inference_seconds(step.prompt_tokens, step.generated_tokens, 1, step.gpus, rates)
        bound = inference_seconds(step.prompt_tokens, step.generated_tokens_max, 1, step.gpus, rates)
        return self._timed(step, seconds, bound)

    def finetune_step(self, stage: str, slot: str, label: str, depends_on: list[str]) -> Step:
        step = Step(f"{stage}:{label}", stage, label, slot, depends_on, self.training_gpus(slot), finetunes=1)
        counter, ft, max_length = self.counters[slot], self.cfg.finetune, int(self.cfg.finetune.max_length)
        hyp = [ChatRequest(r["request_id"], r["prompt"]) for r in self.rows]
        rows = [(n, self.caps[True], self.lengths.answer("", True)) for n in counter.prompt_tokens(hyp)]
        ratio = float(ft.get("object_anchor_ratio", 0.0) or 0.0)
        if ratio > 0:  # prepare_rows mixes max(1, round(ratio x rows)) of the predictor's own answers
            anchors = self.anchors[: max(1, round(ratio * len(hyp)))]
            step.anchor_rows = len(anchors)
            rows += [(n, self.caps[False], min(self.caps[False], self.lengths.answer(a.task, False)))
                     for n, a in zip(counter.prompt_tokens(anchors), anchors, strict=True)]
        step.training_rows = len(rows)
        step.training_tokens = round(sum(min(max_length, n + answer + END_OF_TURN_TOKENS) for n, _, answer in rows))
        step.training_tokens_max = sum(min(max_length, n + cap + END_OF_TURN_TOKENS) for n, cap, _ in rows)
        if self.server[slot]:  # the fine-tuning API bills every epoch's tokens
            epochs, how = openai_epochs(ft.openai.n_epochs, step.training_rows)
            step.priced_as = how
            return self._priced(step, {"training": step.training_tokens * epochs},
                                {"training": step.training_tokens_max * epochs})
        rates, epochs = self.sizes[slot]["rates"], float(ft.epochs)
        seconds = training_seconds(step.training_tokens, epochs, 1, step.gpus, rates)
        return self._timed(step, seconds, training_seconds(step.training_tokens_max, epochs, 1, step.gpus, rates))

    def _priced(self, step: Step, tokens: dict[str, float], bound: dict[str, float], finetuned: bool = False) -> Step:
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
        return self._timed(step, 0.0)

    @staticmethod
    def _timed(step: Step, seconds: float, bound_seconds: float | None = None) -> Step:
        step.hours = seconds / 3600
        step.hours_max = (seconds if bound_seconds is None else bound_seconds) / 3600
        step.gpu_hours = step.hours * step.gpus
        return step

    def build(self) -> list[Step]:
        """The steps of main.run_cross_prediction, in its order."""
        names = {slot: e["name"] for slot, e in self.entries.items()}
        untrained = bool(self.cfg.experiment.untrained_baseline)
        steps = self.steps
        for slot in names:  # 1. base behaviour (+ the untrained baseline)
            jobs = {"object/train": (self.train_obj, False)}
            if untrained:
                jobs |= {"object/test": (self.test_obj, False), "hypothetical/test": (self.test_hyp, True)}
            steps.append(self.answer_step("base_answers", slot, names[slot], jobs, []))
        for slot in names:  # 2. self-training
            steps.append(self.finetune_step("self_finetune", slot, f"{names[slot]}[self]", [f"base_answers:{names[slot]}"]))
        for slot in names:  # 3. the self-trained models' behaviour and self-predictions
            label = f"{names[slot]}[self]"
            jobs = {"object/train": (self.train_obj, False), "object/test": (self.test_obj, False),
                    "hypothetical/test": (self.test_hyp, True)}
            steps.append(self.answer_step("self_answers", slot, label, jobs, [f"self_finetune:{label}"]))
        for t_slot in names:  # 4-5. cross-training on T_self's behaviour, then cross-prediction
            for p_slot in names:
                if p_slot == t_slot:
                    continue
                label = f"{names[p_slot]}[cross:{names[t_slot]}]"
                needs = [f"self_answers:{names[t_slot]}[self]", f"base_answers:{names[p_slot]}"]
                steps.append(self.finetune_step("cross_finetune", p_slot, label, needs))
                steps.append(self.answer_step("cross_answers", p_slot, label, {"hypothetical/test": (self.test_hyp, True)},
                                              [f"cross_finetune:{label}"]))
        return steps


def sides_makespan_hours(steps: list[Step], key: str = "hours") -> float:
    """The makespan when both sides run at once (pipeline.run_per_side): steps 1-3 of the two models side by
    side, then the two cross-predictors side by side, each phase as long as its slower side. key: the steps'
    hours (expected) or hours_max (bounds)."""
    def phase(stages: tuple[str, ...]) -> float:
        per_side: dict[str, float] = {}
        for step in steps:
            if step.stage in stages:
                per_side[step.slot] = per_side.get(step.slot, 0.0) + getattr(step, key)
        return max(per_side.values(), default=0.0)

    return phase(("base_answers", "self_finetune", "self_answers")) + phase(("cross_finetune", "cross_answers"))


def critical_path_hours(steps: list[Step]) -> float:
    """The longest chain of dependent steps: the makespan if independent steps ran at once."""
    finish: dict[str, float] = {}
    for step in steps:  # in run order, so every dependency is already timed
        finish[step.id] = step.hours + max((finish[d] for d in step.depends_on), default=0.0)
    return max(finish.values(), default=0.0)


# --- the plan -------------------------------------------------------------------------------------
def make_plan(cfg, store: Store) -> dict:
    """The plan as a JSON-ready dict."""
    if cfg.experiment.name != "cross_prediction":
        raise ValueError(f"experiment.stop_after=plan covers experiment=cross_prediction; got "
                         f"experiment={cfg.experiment.name}")
    plan = build_plan(cfg.tasks, store)
    planner = Planner(cfg, store, plan)
    steps = planner.build()
    pf = cfg.preflight
    job_gpus = planner.job_gpus()
    # The run's own rule (experiment.concurrent_sides), applied to the job's GPUs: both sides at once when they
    # hold model.m1.gpus + model.m2.gpus (preflight.gpus= the job's request), else one step after another.
    from introspection.pipeline import plan_sides

    sides = plan_sides(cfg, visible=[str(i) for i in range(job_gpus)])

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
    api_steps = [s for s in steps if planner.server[s.slot]]
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
                                 f"{cfg.inference.max_tokens_hypothetical} hypothetical); x {planner.samples} "
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
                                              for s in planner.sizes if not planner.server[s]},
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


def run_plan(cfg, run_dir: Path) -> None:
    """experiment.stop_after=plan: print the plan and write run_dir/plan.json; no model is loaded."""
    store = Store(cfg.store_dir)
    result = make_plan(cfg, store)
    path = Path(run_dir) / PLAN_FILE
    write_json_atomic(path, result)
    from introspection.plan_report import format_plan

    print(format_plan(result))
    print(f"\nplan written to {path}")
