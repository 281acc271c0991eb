"""The pre-flight plan: what a run will compute and what it will roughly cost, before any model loads.

    python -m introspection.main model=llama3_70b tasks=all tasks.data_dir=DIR experiment.stop_after=plan

Offline, no GPU, seconds. It builds the items, prompts and training rows exactly as the run would
(stages.build_plan, Plan.object_requests / hypothetical_requests, the row selection of
stages.prepare_rows) and walks the steps of main.run_cross_prediction in their order, counting per step
the requests, prompt tokens, generated tokens, training rows and tokens, vLLM engine starts and
finetunes. Tokens are counted with the model's tokenizer when it is on this machine (a local folder, a
converted embedded model, the Hugging Face cache), else estimated from characters; the plan says which.
What cannot be known before the models answer is bounded, and the plan says so:
  * generated tokens: every answer runs to its cap (inference.max_tokens / max_tokens_hypothetical);
  * training rows: every object-level answer is compliant (a non-compliant answer gives no row).
Hours come from the throughput assumptions in conf/preflight/default.yaml (per GPU type and model size
class, overridable on the command line); nothing here is measured. The plan counts a run from an empty
store: artifacts already in the store would be reused by the real run.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from introspection.stages import Plan, build_plan, finetune_settings
from introspection.store import Store, write_json_atomic
from introspection.types import ChatRequest, Messages

PLAN_FILE = "plan.json"  # the sweep table reads a job folder holding it as a planned job (introspection.sweep)

log = logging.getLogger(__name__)

RATE_KEYS = ("prompt_tokens_per_s", "generated_tokens_per_s", "train_tokens_per_s", "engine_start_s",
             "finetune_start_s")
TOKENS_PER_MESSAGE = 4  # role markup per chat message, in the character estimate
END_OF_TURN_TOKENS = 2  # markup after a training completion (e.g. "<|im_end|>\n"), in the training bound
PLACEHOLDER = "?"  # the completion of a planned row: unknown until the target model answers


# --- token counting -------------------------------------------------------------------------------
def local_tokenizer(entry: dict, store_root: Path) -> tuple[Any | None, str]:
    """The model's tokenizer (with its configured chat template) if it is on this machine, and where
    it came from or why it is not used. Never downloads, never converts, never loads weights."""
    from introspection.models import ModelResolveError, _configured_template

    source, path = entry["source"], str(entry["path"])
    try:
        template = _configured_template(_entry_view(entry), "model")
    except ModelResolveError as exc:
        return None, str(exc)
    kwargs: dict[str, Any] = {"trust_remote_code": bool(entry.get("trust_remote_code"))}
    if source == "local":
        folder = Path(path).expanduser()
        if not any((folder / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")):
            return None, f"no tokenizer files in {folder}"
        where = str(folder)
    elif source == "embedded":
        folder = Path(store_root) / "models" / path
        if not (folder / "tokenizer_config.json").is_file():
            return None, f"embedded model {path} not converted yet (its first run converts it)"
        where = str(folder)
    elif source == "hub":
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(path, "tokenizer_config.json", revision=entry.get("revision"))
        if not isinstance(cached, str):
            return None, (f"{path} not in the local Hugging Face cache; its tokenizer alone, a few MB: hf download "
                          f"{path} --include '*.json' --include '*.jinja' --include '*.txt'")
        where, kwargs = path, kwargs | {"revision": entry.get("revision"), "local_files_only": True}
    else:
        return None, f"unknown source {source!r}"
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any loading problem only downgrades the count to an estimate
        return None, f"tokenizer of {where} did not load ({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__})"
    if template is not None:
        tokenizer.chat_template = template
    if not getattr(tokenizer, "chat_template", None):
        return None, f"tokenizer of {where} has no chat template"
    return tokenizer, where


def _entry_view(entry: dict):
    from types import SimpleNamespace

    return SimpleNamespace(chat_template=entry.get("chat_template"))


class TokenCounter:
    """Prompt tokens of chat requests for one model, cached by request id (one id, one prompt)."""

    def __init__(self, entry: dict, store_root: Path, chars_per_token: float):
        self.tokenizer, where = local_tokenizer(entry, store_root)
        self.chars_per_token = float(chars_per_token)
        if self.tokenizer is not None:
            self.method = f"counted with the model's tokenizer ({where})"
        else:
            self.method = (f"estimated: characters / {self.chars_per_token:g} + {TOKENS_PER_MESSAGE} per message "
                           f"(no local tokenizer: {where})")
        self.counted = self.tokenizer is not None
        self._cache: dict[str, int] = {}

    def prompt_tokens(self, requests: list[ChatRequest]) -> list[int]:
        """Tokens of each request's prompt as the engines see it: the chat template with the generation
        prompt, tokenized without adding special tokens (the template holds them)."""
        new = {r.request_id: r.messages for r in requests if r.request_id not in self._cache}
        if new:
            ids = list(new)
            counts = self._count([new[i] for i in ids])
            self._cache.update(zip(ids, counts, strict=True))
        return [self._cache[r.request_id] for r in requests]

    def _count(self, conversations: list[Messages]) -> list[int]:
        if self.tokenizer is None:
            return [math.ceil(sum(len(m["content"]) for m in c) / self.chars_per_token) + TOKENS_PER_MESSAGE * len(c)
                    for c in conversations]
        texts = [self.tokenizer.apply_chat_template(list(c), tokenize=False, add_generation_prompt=True)
                 for c in conversations]
        backend = getattr(self.tokenizer, "_tokenizer", None)  # a fast tokenizer's Rust core
        if hasattr(backend, "encode_batch_fast"):  # the same ids without offsets: ~1.5x faster at paper scale
            return [len(e.ids) for e in backend.encode_batch_fast(texts, add_special_tokens=False)]
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]


# --- model size and throughput --------------------------------------------------------------------
_SIZE_IN_NAME = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)([bm])(?![a-z0-9])", re.IGNORECASE)


def model_params_b(entry: dict, slot: str) -> tuple[float, str]:
    """Billions of parameters of a model, and how that was found."""
    name = entry["name"]
    if entry.get("params_b"):
        return float(entry["params_b"]), f"model.{slot}.params_b"
    for text in (name, Path(str(entry["path"])).name):
        match = _SIZE_IN_NAME.search(text)
        if match:
            value = float(match.group(1))
            return (value / 1000 if match.group(2).lower() == "m" else value), f"the name '{text}'"
    if entry["source"] == "local":
        count = _safetensors_parameters(Path(str(entry["path"])).expanduser())
        if count:
            return count / 1e9, "its safetensors headers"
    raise ValueError(f"cannot tell how many parameters model '{name}' (model.{slot}) has: its name and path do not "
                     f"say; set model.{slot}.params_b=<billions>")


def _safetensors_parameters(folder: Path) -> int:
    """Parameters in a folder's safetensors files, read from their headers (no tensor data)."""
    total = 0
    for path in sorted(folder.glob("*.safetensors")):
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(length))
        total += sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")
    return total


def rates_for(params_b: float, preflight_cfg) -> tuple[str, dict[str, float]]:
    """The size class of a model of params_b billions and that class's figures for preflight.gpu."""
    classes = sorted(preflight_cfg.size_classes.items(), key=lambda kv: kv[1])
    if not classes:
        raise ValueError("preflight.size_classes is empty; give each size class its upper bound in billions")
    size = next((name for name, bound in classes if params_b <= bound), None)
    if size is None:
        raise ValueError(f"a model of {params_b:g}B parameters is above every preflight.size_classes bound "
                         f"({', '.join(f'{n}: {b:g}' for n, b in classes)}); add a larger class")
    gpu = preflight_cfg.gpu
    if gpu not in preflight_cfg.throughput:
        raise ValueError(f"preflight.gpu={gpu!r} has no throughput table; valid: {', '.join(preflight_cfg.throughput)}")
    figures = preflight_cfg.throughput[gpu].get(size)
    if figures is None:
        raise ValueError(f"preflight.throughput.{gpu} has no '{size}' size class; give it {', '.join(RATE_KEYS)}")
    figures = dict(figures)
    if set(figures) != set(RATE_KEYS):
        raise ValueError(f"preflight.throughput.{gpu}.{size} has keys {sorted(figures)}; valid: exactly {', '.join(RATE_KEYS)}")
    for key, value in figures.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 or (
                key.endswith("_per_s") and value == 0):
            raise ValueError(f"preflight.throughput.{gpu}.{size}.{key}={value!r} is not valid; valid: a number > 0 "
                             f"(>= 0 for start seconds)")
    return size, {k: float(v) for k, v in figures.items()}


def inference_seconds(prompt_tokens: int, generated_tokens: int, engine_starts: int, gpus: int,
                      rates: dict[str, float]) -> float:
    """Wall seconds of answering: engine starts plus prefill and decode at the per-GPU rates x GPUs."""
    return (engine_starts * rates["engine_start_s"] + prompt_tokens / (rates["prompt_tokens_per_s"] * gpus)
            + generated_tokens / (rates["generated_tokens_per_s"] * gpus))


def training_seconds(tokens: int, epochs: float, finetunes: int, gpus: int, rates: dict[str, float]) -> float:
    """Wall seconds of finetuning: a start per finetune plus every epoch's tokens at the per-GPU rate x GPUs."""
    return finetunes * rates["finetune_start_s"] + tokens * epochs / (rates["train_tokens_per_s"] * gpus)


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
    generated_tokens_max: int = 0
    engine_starts: int = 0
    finetunes: int = 0
    training_rows: int = 0
    anchor_rows: int = 0
    training_tokens_max: int = 0  # per epoch
    hours: float = 0.0
    gpu_hours: float = 0.0


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
    anchors = sft_rows([{"prompt": r.messages, "completion": PLACEHOLDER, "request_id": r.request_id}
                        for r in plan.object_requests(plan.train_items)], max_examples=None, seed=finetune_cfg.seed)
    return rows, [ChatRequest(a["request_id"], a["prompt"]) for a in anchors]


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
        self.sizes = {}
        for slot, entry in self.entries.items():
            params, how = model_params_b(entry, slot)
            size, rates = rates_for(params, pf)
            self.sizes[slot] = {"params_b": params, "params_from": how, "size_class": size, "rates": rates}
        inf = cfg.inference
        self.samples = 1 if inf.temperature <= 0 else int(inf.n_samples)  # generations per request
        self.caps = {False: int(inf.max_tokens), True: int(inf.max_tokens_hypothetical)}
        self.train_obj = plan.object_requests(plan.train_items)
        self.test_obj = plan.object_requests(plan.test_items)
        self.test_hyp = plan.hypothetical_requests(plan.test_items)
        self.rows, self.anchors = planned_rows(plan, cfg.tasks, cfg.finetune)
        self.steps: list[Step] = []

    # GPUs a step uses: what the run gives it, unless preflight.gpus plans every step on that many.
    def inference_gpus(self, slot: str) -> int:
        return int(self.cfg.preflight.gpus or self.entries[slot].get("tensor_parallel_size") or 1)

    def training_gpus(self, slot: str) -> int:
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
        step = Step(f"{stage}:{label}", stage, label, slot, depends_on, self.inference_gpus(slot), engine_starts=1)
        for name, (requests, hypothetical) in jobs.items():
            prompt = sum(self.counters[slot].prompt_tokens(requests))
            generated = len(requests) * self.caps[hypothetical] * self.samples
            step.jobs.append({"name": name, "requests": len(requests), "prompt_tokens": prompt,
                              "generated_tokens_max": generated})
            step.requests += len(requests)
            step.prompt_tokens += prompt
            step.generated_tokens_max += generated
        rates = self.sizes[slot]["rates"]
        seconds = inference_seconds(step.prompt_tokens, step.generated_tokens_max, 1, step.gpus, rates)
        return self._timed(step, seconds)

    def finetune_step(self, stage: str, slot: str, label: str, depends_on: list[str]) -> Step:
        step = Step(f"{stage}:{label}", stage, label, slot, depends_on, self.training_gpus(slot), finetunes=1)
        counter, ft, max_length = self.counters[slot], self.cfg.finetune, int(self.cfg.finetune.max_length)
        hyp = [ChatRequest(r["request_id"], r["prompt"]) for r in self.rows]
        tokens = [min(max_length, n + self.caps[True] + END_OF_TURN_TOKENS) for n in counter.prompt_tokens(hyp)]
        ratio = float(ft.get("object_anchor_ratio", 0.0) or 0.0)
        if ratio > 0:  # prepare_rows mixes max(1, round(ratio x rows)) of the predictor's own answers
            anchors = self.anchors[: max(1, round(ratio * len(hyp)))]
            step.anchor_rows = len(anchors)
            tokens += [min(max_length, n + self.caps[False] + END_OF_TURN_TOKENS) for n in counter.prompt_tokens(anchors)]
        step.training_rows = len(tokens)
        step.training_tokens_max = sum(tokens)
        seconds = training_seconds(step.training_tokens_max, float(ft.epochs), 1, step.gpus, self.sizes[slot]["rates"])
        return self._timed(step, seconds)

    @staticmethod
    def _timed(step: Step, seconds: float) -> Step:
        step.hours = seconds / 3600
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


def sides_makespan_hours(steps: list[Step]) -> float:
    """The makespan when both sides run at once (pipeline.run_per_side): steps 1-3 of the two models side by
    side, then the two cross-predictors side by side, each phase as long as its slower side."""
    def phase(stages: tuple[str, ...]) -> float:
        per_side: dict[str, float] = {}
        for step in steps:
            if step.stage in stages:
                per_side[step.slot] = per_side.get(step.slot, 0.0) + step.hours
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
    makespan = sides_makespan_hours(steps) if sides.concurrent else sum(s.hours for s in steps)
    stages: dict[str, dict] = {}
    for s in steps:  # totals per stage, in run order
        total = stages.setdefault(s.stage, {"steps": 0, "requests": 0, "prompt_tokens": 0, "generated_tokens_max": 0,
                                            "engine_starts": 0, "finetunes": 0, "training_rows": 0,
                                            "training_tokens_max": 0, "hours": 0.0, "gpu_hours": 0.0})
        total["steps"] += 1
        for key in list(total)[1:]:
            total[key] += getattr(s, key)
    models = {}
    for slot, entry in planner.entries.items():
        counter = planner.counters[slot]
        models[slot] = {"name": entry["name"], "source": entry["source"], "path": entry["path"],
                        "tokens": counter.method, "tokenizer_counted": counter.counted, **planner.sizes[slot]}
    return {
        "config": {"model": cfg.model.name, "tasks": cfg.tasks.name, "experiment": cfg.experiment.name,
                   "finetune": cfg.finetune.name, "inference_backend": cfg.inference.backend},
        "items": {"train": len(plan.train_items), "test": len(plan.test_items),
                  "tasks": {t: sum(1 for it in plan.train_items + plan.test_items if it.task == t) for t in plan.properties},
                  "properties": plan.properties},
        "models": models,
        "bounds": {
            "generated_tokens": (f"upper bound: every answer runs to its cap (inference.max_tokens="
                                 f"{cfg.inference.max_tokens} object-level, inference.max_tokens_hypothetical="
                                 f"{cfg.inference.max_tokens_hypothetical} hypothetical) x {planner.samples} "
                                 f"generation(s) per request"),
            "training_rows": ("upper bound: every object-level answer compliant (a non-compliant answer gives no "
                              "row); selection, de-duplication and cap as the run does them"),
            "training_tokens": (f"upper bound: prompt tokens + the answer cap + {END_OF_TURN_TOKENS} end-of-turn "
                                f"tokens per row, truncated at finetune.max_length={cfg.finetune.max_length}; "
                                f"x finetune.epochs={cfg.finetune.epochs:g} in the hours"),
            "store": "a run from an empty store (artifacts already there are reused by the real run)",
        },
        "steps": [asdict(s) for s in steps],
        "stages": stages,
        "schedule": {"order": [s.id for s in steps], "depends_on": {s.id: s.depends_on for s in steps},
                     "concurrent_sides": sides.concurrent, "sides": sides.why},
        "estimate": {
            "gpu": pf.gpu, "job_gpus": job_gpus,
            "makespan_hours": makespan,  # as one job runs them: one after another, or both sides at once
            "job_gpu_hours": makespan * job_gpus,  # what the job holds for its whole makespan
            "step_gpu_hours": sum(s.gpu_hours for s in steps),  # what the steps use
            "critical_path_hours": critical_path_hours(steps),
            "assumptions": {"gpu": pf.gpu, "gpus": pf.gpus, "linear_scaling_with_gpus": True,
                            "rates_per_gpu": {planner.sizes[s]["size_class"]: planner.sizes[s]["rates"]
                                              for s in planner.sizes},
                            "source": "conf/preflight/default.yaml (override: preflight.throughput.<gpu>.<class>.<key>=...)"},
        },
    }


def _n(value: float) -> str:
    """Counts with thousands separators; large ones in k/M/G."""
    for unit, size in (("G", 1e9), ("M", 1e6)):
        if value >= 10 * size:
            return f"{value / size:,.1f}{unit}"
    return f"{value:,.0f}"


def format_plan(result: dict) -> str:
    est, conf = result["estimate"], result["config"]
    names = ", ".join(f"{m['name']} ({m['params_b']:g}B, {m['size_class']})" for m in result["models"].values())
    lines = [f"pre-flight plan: model={conf['model']} tasks={conf['tasks']} finetune={conf['finetune']}: {names}",
             f"items: {result['items']['train']} train, {result['items']['test']} held-out, "
             f"{len(result['items']['tasks'])} tasks"]
    lines += [f"tokens of {m['name']}: {m['tokens']}" for m in result["models"].values()]
    lines += [f"{key.replace('_', ' ')}: {text}" for key, text in result["bounds"].items()]
    header = (f"{'#':>2}  {'step':<48} {'after':>5} {'requests':>9} {'prompt tok':>10} {'gen tok<=':>10} "
              f"{'rows<=':>7} {'train tok<=':>11} {'engine':>6} {'GPUs':>4} {'hours':>7} {'GPU-h':>8}")
    lines += ["", header]
    index = {s["id"]: i for i, s in enumerate(result["steps"], start=1)}
    for i, s in enumerate(result["steps"], start=1):
        after = ",".join(str(index[d]) for d in s["depends_on"]) or "-"
        lines.append(f"{i:>2}  {s['id'][:48]:<48} {after:>5} {_n(s['requests']):>9} {_n(s['prompt_tokens']):>10} "
                     f"{_n(s['generated_tokens_max']):>10} {_n(s['training_rows']):>7} "
                     f"{_n(s['training_tokens_max']):>11} {s['engine_starts']:>6} {s['gpus']:>4} "
                     f"{s['hours']:>7.2f} {s['gpu_hours']:>8.2f}")
    lines.append("")
    for stage, t in result["stages"].items():
        lines.append(f"    {stage:<15} {t['steps']} step(s): {_n(t['requests'])} requests, {_n(t['prompt_tokens'])} "
                     f"prompt + <= {_n(t['generated_tokens_max'])} generated tokens, {t['engine_starts']} engine "
                     f"start(s), {t['finetunes']} finetune(s) on <= {_n(t['training_rows'])} rows / "
                     f"{_n(t['training_tokens_max'])} tokens; {t['hours']:.2f} h, {t['gpu_hours']:.2f} GPU-h")
    rates = "; ".join(f"{size}: " + ", ".join(f"{k} {v:g}" for k, v in r.items())
                      for size, r in est["assumptions"]["rates_per_gpu"].items())
    order = (f"both sides at once ({result['schedule']['sides']})" if result["schedule"].get("concurrent_sides")
             else "steps one after another")
    lines += ["",
              f"makespan, {order} in one job: {est['makespan_hours']:.1f} h on {est['job_gpus']} x "
              f"{est['gpu']} = {est['job_gpu_hours']:.1f} GPU-hours held ({est['step_gpu_hours']:.1f} GPU-hours used "
              f"by the steps); critical path if independent steps ran at once: {est['critical_path_hours']:.1f} h",
              f"assumed per {est['gpu']} GPU (conf/preflight/default.yaml, linear in GPUs): {rates}"]
    return "\n".join(lines)


def run_plan(cfg, run_dir: Path) -> None:
    """experiment.stop_after=plan: print the plan and write run_dir/plan.json; no model is loaded."""
    store = Store(cfg.store_dir)
    result = make_plan(cfg, store)
    path = Path(run_dir) / PLAN_FILE
    write_json_atomic(path, result)
    print(format_plan(result))
    print(f"\nplan written to {path}")
