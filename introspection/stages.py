"""The stages of the experiment, each a function from artifacts to one artifact in the store.

    build    tasks x properties -> items and rendered prompts (object-level, hypothetical)
    behave   model x items -> object-level answers
    prepare  (predictor, target answers) -> SFT rows: hypothetical prompt -> target's property value
    finetune base model + rows -> LoRA adapter (+ lineage record)
    predict  predictor x hypothetical prompts -> predicted values (calibration: + first-token logprobs)

`behave` and `predict` are both "answer these chat requests with this model", so they share one
artifact kind (`answers`) keyed by model, adapter, prompts and sampling. Stages that load a model run
in a spawned process (introspection.worker); this module only decides what is missing and hands the
worker file paths.
"""

from __future__ import annotations

import json
import logging
import random
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from introspection import devices, prompts
from introspection.errors import spawn_and_wait
from introspection.finetune.checkpoints import discard as discard_checkpoints
from introspection.finetune.time_limit import finetune_in_flight
from introspection.profile import profile_of, timed_stage
from introspection.properties import get_property, property_value
from introspection.store import Store, digest, read_jsonl, write_json_atomic, write_jsonl_atomic
from introspection.tasks import get_task, items_checksum, load_items
from introspection.types import Answer, ChatRequest, Item, Sampling

log = logging.getLogger(__name__)

# Bump a stage's version when its code changes what it writes: old artifacts then stop matching.
BUILD_VERSION = 1
ANSWERS_VERSION = 1
PREPARE_VERSION = 1
FINETUNE_VERSION = 1


# --- build ------------------------------------------------------------------------------------
@dataclass
class Plan:
    """Items of every task and the properties asked about each task's items."""

    train_items: list[Item]
    test_items: list[Item]
    properties: dict[str, list[str]]  # task name -> property names
    corrected: bool = False
    compliance: str = "authors"  # tasks.compliance: how property values are read (introspection.properties)

    def object_requests(self, items: list[Item]) -> list[ChatRequest]:
        return [
            ChatRequest(f"obj|{it.item_id}", prompts.object_messages(get_task(it.task), it.string, corrected=self.corrected),
                        kind="object", task=it.task, item_id=it.item_id)
            for it in items
        ]

    def hypothetical_requests(self, items: list[Item]) -> list[ChatRequest]:
        out = []
        for it in items:
            task = get_task(it.task)
            for name in self.properties[it.task]:
                messages = prompts.hypothetical_messages(task, get_property(name), it.string, corrected=self.corrected)
                out.append(ChatRequest(f"hyp|{it.item_id}|{name}", messages, kind="hypothetical", task=it.task,
                                       item_id=it.item_id, property=name))
        return out


def build_plan(tasks_cfg, store: Store) -> Plan:
    """Load (or generate) the items of every task; record them as an artifact for audit (a "build" stage of
    the run's profile)."""
    with timed_stage(store, "build", "build") as stage:
        built = len(store.computed)
        plan = _build_plan(tasks_cfg, store)
        stage["reused"] = len(store.computed) == built  # the items artifact was already in the store
    return plan


def _build_plan(tasks_cfg, store: Store) -> Plan:
    if tasks_cfg.from_release:
        from introspection.release import release_plan

        train, test, properties = release_plan(tasks_cfg)
        return _recorded(Plan(train, test, properties, corrected=bool(tasks_cfg.corrected_prompts),
                              compliance=str(tasks_cfg.get("compliance", "authors"))), store)
    properties: dict[str, list[str]] = {}
    for name in list(tasks_cfg.train_tasks) + list(tasks_cfg.test_tasks):
        task = get_task(name, where="tasks.train_tasks" if name in tasks_cfg.train_tasks else "tasks.test_tasks")
        chosen = list(tasks_cfg.properties.get(name, task.properties))
        for prop in chosen:
            get_property(prop, where=f"tasks.properties.{name}")  # fails early, naming the property, if unknown
            if prop not in task.properties:
                raise ValueError(
                    f"property '{prop}' does not apply to task '{name}' (tasks.properties.{name}); "
                    f"valid: {', '.join(task.properties)}"
                )
        properties[name] = chosen
    if not tasks_cfg.train_tasks or not tasks_cfg.test_tasks:
        raise ValueError(
            f"task set '{tasks_cfg.name}' needs at least one train task and one test task "
            f"(tasks.train_tasks={list(tasks_cfg.train_tasks)}, tasks.test_tasks={list(tasks_cfg.test_tasks)})"
        )
    train = [it for t in tasks_cfg.train_tasks for it in _items(t, "train", tasks_cfg.n_train_items, tasks_cfg)]
    test = [it for t in tasks_cfg.test_tasks for it in _items(t, "val", tasks_cfg.n_test_items, tasks_cfg)]
    return _recorded(Plan(train, test, properties, corrected=bool(tasks_cfg.corrected_prompts),
                          compliance=str(tasks_cfg.get("compliance", "authors"))), store)


def _recorded(plan: Plan, store: Store) -> Plan:
    """Write the plan's items into the store (for audit) and return it."""
    train, test, properties = plan.train_items, plan.test_items, plan.properties
    key = digest({"v": BUILD_VERSION, "normalizer": prompts.NORMALIZER_VERSION, "train": items_checksum(train),
                  "test": items_checksum(test), "properties": properties, "corrected": plan.corrected})

    def write(folder: Path) -> dict:
        write_jsonl_atomic(folder / "train_items.jsonl", [asdict(i) for i in train])
        write_jsonl_atomic(folder / "test_items.jsonl", [asdict(i) for i in test])
        write_json_atomic(folder / "properties.json", properties)
        return {"n_train": len(train), "n_test": len(test)}

    store.get_or_build("items", key, write)
    return plan


def _items(task_name: str, split: str, n: int, tasks_cfg) -> list[Item]:
    task = get_task(task_name)
    items = load_items(task, split, n, tasks_cfg.seed, tasks_cfg.data_dir)
    if not items:
        role = "train" if split == "train" else "test"
        data = Path(tasks_cfg.data_dir) / f"{split}_{task.source}.jsonl" if tasks_cfg.data_dir else "its generator"
        raise ValueError(f"task '{task_name}' has no {split} items (tasks.n_{role}_items={n}, data from {data}); "
                         f"give it items or remove it from tasks.{role}_tasks")
    return items


# --- models and sampling ------------------------------------------------------------------------
@dataclass
class ModelRef:
    """A model as the pipeline sees it: base weights plus, optionally, a finetuned adapter."""

    label: str  # e.g. "smollm2_135m", "smollm2_135m[self]", "gemma3_270m[cross:smollm2_135m]"
    entry: dict  # the ModelEntry config
    resolved: dict  # introspection.models.ResolvedModel as a dict
    adapter_dir: str | None = None
    adapter_key: str | None = None

    @property
    def fingerprint(self) -> str:
        """Weights (resolved fingerprint), adapter, and the entry settings that change what the model sees or
        computes in inference and training alike. Each setting enters only when it is not the value every key
        was computed with before it was hashed, so stored artifacts (the demo's) keep their keys."""
        content = {"base": self.resolved["fingerprint"], "adapter": self.adapter_key}
        template = self.resolved.get("chat_template")
        # A template that is the model folder's own is already in the folder's fingerprint (the demo's Gemma).
        if template is not None and template != _own_template(self.resolved.get("path")):
            content["chat_template"] = digest(template)
        if self.resolved.get("trust_remote_code"):  # the repository's own modelling code instead of transformers'
            content["trust_remote_code"] = True
        return digest(content)

    def with_adapter(self, label: str, adapter_dir: Path, adapter_key: str) -> ModelRef:
        return ModelRef(label, self.entry, self.resolved, str(adapter_dir), adapter_key)


def _own_template(path: str | None) -> str | None:
    """The chat template saved in a local model folder (chat_template.jinja or tokenizer_config.json), if any."""
    folder = Path(path) if path else None
    if folder is None or not folder.is_dir():
        return None  # a hub id: its template is not known without a download, so an explicit one is hashed
    try:
        if (folder / "chat_template.jinja").is_file():
            return (folder / "chat_template.jinja").read_text(encoding="utf-8")
        template = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8")).get("chat_template")
    except (OSError, ValueError, AttributeError):
        return None
    return template if isinstance(template, str) else None


def sampling_for(inference_cfg, hypothetical: bool) -> Sampling:
    """The decoding of object-level (hypothetical=False) or hypothetical answers.

    No logprobs: nothing reads them from these answers, and each generated token would cost a log-softmax
    and a top-k over the whole vocabulary (262k tokens for Gemma-3). The token caps stay the config's: the
    object-level compliance checks, the mode-of-n comparison (40 characters) and the object anchor rows read
    the whole answer, so a lower cap per property would change results (docs/method.md §1.4)."""
    return Sampling(
        temperature=inference_cfg.temperature,
        top_p=inference_cfg.top_p,
        max_tokens=inference_cfg.max_tokens_hypothetical if hypothetical else inference_cfg.max_tokens,
        n_samples=inference_cfg.n_samples,
        seed=inference_cfg.seed,
        top_logprobs=0,
    )


# --- behave / predict ---------------------------------------------------------------------------
@dataclass
class AnswerJob:
    """One answers artifact to compute: these requests, this sampling."""

    name: str  # for progress messages: "object/train", "hypothetical/test"
    requests: list[ChatRequest]
    sampling: Sampling
    key: str = ""
    answers: dict[str, Answer] = field(default_factory=dict)


# The dtype every key was computed in before the dtype was hashed (the demo's then; `auto` on a CPU without
# bfloat16 instructions): left out of the key, so those keys stay valid.
UNHASHED_INFERENCE_DTYPE = "float32"


def answer_key(model: ModelRef, job: AnswerJob, inference_cfg) -> str:
    """What the answers are computed from: model, prompts, sampling, engine and the inference dtype.

    Left out (tests/test_keys.py lists each with its reason): batch sizes, memory and KV-cache sizes,
    enforce_eager, lora_serving, tensor_parallel_size, max_model_len, gpus: they change how the same
    computation is scheduled or split, not what is computed. A server model (model.mX.source=server) is
    answered by the server backend whatever inference.backend says; its fingerprint names the endpoint and
    its model id (models.server_fingerprint)."""
    from introspection.inference.registry import backend_for

    backend = backend_for((model.entry or {}).get("source"), inference_cfg.backend)
    content = {
        "v": ANSWERS_VERSION,
        "model": model.fingerprint,
        "requests": digest([[r.request_id, r.messages] for r in job.requests]),
        "sampling": asdict(job.sampling),
        "aggregation": inference_cfg.aggregation,
        "backend": backend.name,  # numerics differ between engines; a server model's: "server", whatever the engine
    }
    if not backend.on_devices:  # a remote server computes in its own dtype, the same from every machine
        return digest(content)
    # model.mX.dtype as this machine resolves it (`auto` on a CPU: bfloat16 or float32 by what the CPU has)
    dtype = devices.inference_dtype((model.entry or {}).get("dtype", UNHASHED_INFERENCE_DTYPE),
                                    inference_cfg.backend, on_gpu=bool(devices.visible_devices()))
    if dtype != UNHASHED_INFERENCE_DTYPE:
        content["dtype"] = dtype
    return digest(content)


def run_answer_jobs(store: Store, model: ModelRef, jobs: list[AnswerJob], inference_cfg) -> list[AnswerJob]:
    """Fill every job's answers, from the store where possible; one spawned process for the rest."""
    for job in jobs:
        job.key = answer_key(model, job, inference_cfg)
    missing = [job for job in jobs if store.get("answers", job.key) is None]
    if missing and wait_for_live_builders(store, "answers", [j.key for j in missing]):
        missing = [job for job in missing if store.get("answers", job.key) is None]
    missing_keys = {j.key for j in missing}
    if missing:
        log.info("%s: answering %d prompts (%s)", model.label, sum(len(j.requests) for j in missing),
                 ", ".join(j.name for j in missing))
        payload = {
            "store_root": str(store.root),
            "model": asdict(model),
            "inference": OmegaConf.to_container(inference_cfg, resolve=True) if not isinstance(inference_cfg, dict) else inference_cfg,
            "jobs": [{"name": j.name, "key": j.key, "sampling": asdict(j.sampling),
                      # what the engine needs; the fields naming item, task and property stay here
                      "requests": [{"request_id": r.request_id, "messages": r.messages} for r in j.requests]}
                     for j in missing],
        }
        from introspection.inference.registry import backend_for
        from introspection.worker import answer_worker

        spec = backend_for((model.entry or {}).get("source"), inference_cfg.backend)  # a server model's: server
        gpus = devices.inference_devices(model.entry or {}, spec.name) if spec.on_devices else 0  # remote: none
        run_in_subprocess(store, answer_worker, payload, f"inference for {model.label}", gpus=gpus)
    for job in jobs:
        # A job the worker did not run is a stage of its own in the profile: its wall is the lookup.
        with timed_stage(store if job.key not in missing_keys else None, f"answers {model.label} {job.name}",
                         "answers", model.label) as stage:
            stage["reused"] = True
            folder = store.get("answers", job.key)
            if folder is None:
                raise RuntimeError(f"answers for {model.label} ({job.name}) are missing after the worker ran")
            if job.key not in missing_keys:  # a missing one was counted by the worker: computed, or reused when
                store.count_reused("answers", job.key)  # another job sealed it while this one waited
            job.answers = {d["request_id"]: Answer.from_dict(d) for d in read_jsonl(folder / "answers.jsonl")}
    return jobs


def wait_for_live_builders(store: Store, kind: str, keys: list[str]) -> bool:
    """Wait until no other process builds any of these artifacts (each build holds its key's lock), so a
    run that needs what another live job is computing reuses it instead of starting a worker for it.
    True when it waited for at least one."""
    from introspection.locks import LockTimeout

    waited = False
    for key in keys:
        try:
            with store.locked(kind, key, timeout=0):
                continue
        except LockTimeout:
            log.info("waiting for %s/%s: another job is computing it", kind, key[:12])
            waited = True
        with store.locked(kind, key):
            pass
    return waited


def run_in_subprocess(store: Store, target, payload: dict, what: str, gpus: int = 1) -> None:
    """Run one model-bound stage in a fresh spawned process so its memory is returned when it ends; it sees
    `gpus` CUDA devices of its side (errors.spawn_and_wait).

    A worker that builds store artifacts writes what it computed and what it found sealed by another job
    into payload["result_path"] (worker.write_result); those counts are added to this store's, and the
    worker's stage records (time, requests, tokens, memory) to the run's profile (introspection/profile.py)."""
    store.count_worker_run()
    with tempfile.TemporaryDirectory(prefix="introspection-worker-") as scratch:
        result_path = Path(scratch) / "result.json"
        started = time.time()
        spawn_and_wait(store.root, target, {**payload, "result_path": str(result_path)}, what, gpus=gpus)
        ended = time.time()
        if result_path.is_file():
            result = json.loads(result_path.read_text(encoding="utf-8"))
            store.add_counts(result)
            profile = profile_of(store)
            if profile is not None:
                profile.add_worker_records(result.get("stages", []), started, ended)


# --- property values ----------------------------------------------------------------------------
def object_values(plan: Plan, items: list[Item], answers: dict[str, Answer]) -> dict[tuple[str, str], str | None]:
    """(item_id, property) -> the canonical property value of the model's object-level answer."""
    values = {}
    for it in items:
        answer = answers.get(f"obj|{it.item_id}")
        for name in plan.properties[it.task]:
            raw = answer.text if answer is not None and answer.text is not None else None
            values[(it.item_id, name)] = None if raw is None else property_value(get_property(name), raw, it.target, plan.compliance)
    return values


# --- prepare ------------------------------------------------------------------------------------
def prepare_rows(store: Store, plan: Plan, predictor: ModelRef, target: ModelRef, target_answers: dict[str, Answer],
                 tasks_cfg, finetune_cfg, predictor_answers: dict[str, Answer] | None = None) -> tuple[Path, str]:
    """SFT rows for `predictor`: hypothetical prompt (train items) -> `target`'s property value.

    With finetune.object_anchor_ratio > 0, rows of the predictor's OWN object-level behaviour
    (object prompt -> its own answer) are mixed in, that many per hypothetical row. The paper mixes
    none (docs/method.md §5.1 step 5); small models trained on hypotheticals alone collapse their
    object-level behaviour to the one-token answer format, which leaves nothing to predict.
    """
    from introspection.finetune.data import sft_rows, write_rows

    values = object_values(plan, plan.train_items, target_answers)
    requests = {(r.item_id, r.property): r for r in plan.hypothetical_requests(plan.train_items)}
    rng = random.Random(tasks_cfg.seed)  # which train items become rows: item sampling (tasks.seed, 0 by default)
    examples = []
    for task in tasks_cfg.train_tasks:
        for name in plan.properties[task]:
            block = [(it, values[(it.item_id, name)]) for it in plan.train_items
                     # "" (a value the authors score, e.g. a space as second character) is no trainable completion
                     if it.task == task and values[(it.item_id, name)]]
            rng_block = sorted(block, key=lambda pair: pair[0].item_id)
            rng.shuffle(rng_block)  # docs/method.md §5.1 step 2: sample n rows per (task, property), seeded
            for it, value in rng_block[: tasks_cfg.n_finetune_per_property]:
                examples.append({"prompt": requests[(it.item_id, name)].messages, "completion": value,
                                 "item_id": it.item_id, "task": task, "property": name})
    rows = sft_rows(examples, max_examples=finetune_cfg.max_examples, seed=finetune_cfg.seed)
    if not rows:
        raise ValueError(f"no usable finetuning rows: every object-level answer of {target.label} on the train "
                         f"tasks was non-compliant; raise inference.max_tokens or check the model's chat template")
    ratio = float(finetune_cfg.get("object_anchor_ratio", 0.0) or 0.0)
    if ratio > 0:
        if predictor_answers is None:
            raise ValueError(f"finetune.object_anchor_ratio={ratio} needs {predictor.label}'s own object-level answers")
        anchors = [{"prompt": r.messages, "completion": predictor_answers[r.request_id].text.strip(),
                    "item_id": r.item_id, "task": r.task, "property": "object_level"}
                   for r in plan.object_requests(plan.train_items)
                   if (predictor_answers.get(r.request_id) and (predictor_answers[r.request_id].text or "").strip())]
        anchor_rows = sft_rows(anchors, max_examples=max(1, round(ratio * len(rows))), seed=finetune_cfg.seed) if anchors else []
        rows = rows + anchor_rows
        random.Random(finetune_cfg.seed).shuffle(rows)
    key = digest({"v": PREPARE_VERSION, "normalizer": prompts.NORMALIZER_VERSION, "rows": rows})
    info = {"predictor": predictor.label, "target": target.label, "n_rows": len(rows)}
    folder = store.get_or_build("sft_rows", key, lambda d: write_rows(rows, d / "rows.jsonl") and None, info)
    return folder / "rows.jsonl", key


# --- finetune -----------------------------------------------------------------------------------
GRADIENT_CHECKPOINTING_FROM_B = 7.0  # gradient_checkpointing=auto: on from this many billion parameters


def finetune_settings(finetune_cfg, entry) -> dict:
    """The finetune settings one model trains with, every `auto` resolved from its catalogue entry.

    - learning_rate: finetune.learning_rate_by_model[its name] when set, else finetune.learning_rate;
    - multi_gpu: auto -> the entry's own strategy (model.mX.multi_gpu, e.g. fsdp for the 70B entries);
    - gradient_checkpointing: auto -> on when the entry's params_b >= 7 (activations, not weights, fill
      the GPU at batch 16), off for smaller or unsized models;
    - batch_size: with finetune.effective_batch_size set, effective / (ranks x gradient_accumulation_steps),
      ranks being the entry's gpus under a multi-GPU strategy, else 1.
    Raises a one-line ValueError for a setting that cannot be resolved; main calls this at start.
    """
    cfg = OmegaConf.to_container(finetune_cfg, resolve=True) if not isinstance(finetune_cfg, dict) else dict(finetune_cfg)
    entry = OmegaConf.to_container(entry, resolve=True) if not isinstance(entry, dict) else entry
    name = entry["name"]
    rate = (cfg.get("learning_rate_by_model") or {}).get(name)
    if rate is not None:
        cfg["learning_rate"] = float(rate)
    if cfg.get("multi_gpu", "none") == "auto":
        cfg["multi_gpu"] = entry.get("multi_gpu") or "none"
    checkpointing = cfg.get("gradient_checkpointing", False)
    if checkpointing == "auto":
        params_b = entry.get("params_b")
        cfg["gradient_checkpointing"] = params_b is not None and params_b >= GRADIENT_CHECKPOINTING_FROM_B
    elif not isinstance(checkpointing, bool):
        raise ValueError(f"finetune.gradient_checkpointing={checkpointing!r} is not valid; valid: true, false, auto")
    effective = cfg.get("effective_batch_size")
    if effective is not None:
        cfg["batch_size"] = _per_device_batch(cfg, entry, int(effective))
    elif cfg.get("batch_size") is None:
        raise ValueError("finetune.batch_size and finetune.effective_batch_size are both null; set one "
                         "(e.g. finetune.effective_batch_size=16)")
    return cfg


def _per_device_batch(cfg: dict, entry: dict, effective: int) -> int:
    """Per-device batch for an effective batch across every rank; a one-line error when it does not divide,
    or when an explicit per-device batch_size disagrees (an equal one is accepted: resolving is idempotent)."""
    ranks = int(entry["gpus"]) if cfg["multi_gpu"] != "none" else 1
    accumulation = int(cfg.get("gradient_accumulation_steps", 1))
    per_step = ranks * accumulation
    if effective < 1 or accumulation < 1 or effective % per_step:
        raise ValueError(f"finetune.effective_batch_size={effective} is not divisible by {ranks} rank(s) "
                         f"(model {entry['name']}: gpus={entry['gpus']}, multi_gpu={cfg['multi_gpu']}) x "
                         f"finetune.gradient_accumulation_steps={accumulation}; valid: a positive multiple of {per_step}")
    derived = effective // per_step
    given = cfg.get("batch_size")
    if given is not None and given != derived:
        raise ValueError(f"finetune.batch_size={given} (per device) and finetune.effective_batch_size={effective} "
                         f"(across {ranks} rank(s) x {accumulation} accumulation steps = {derived} per device) are "
                         "both set and disagree; set one and null the other, e.g. finetune.batch_size=null")
    return derived


def settings_for_model(finetune_cfg, model: ModelRef) -> dict:
    """finetune_settings for a ModelRef (the adapter key hashes the settings actually used)."""
    return finetune_settings(finetune_cfg, model.entry)


def adapter_key(base: ModelRef, rows_key: str, cfg: dict) -> str:
    """The adapter's key: base weights, rows and the resolved training settings."""
    # The rate used is in learning_rate; the per-model table itself is not hashed, nor the config's name.
    # checkpoint_every_steps: a resumed finetune trains the same adapter (tests/test_resume.py)
    # api, openai: how a SERVER model finetunes (finetune/openai_finetune.py keys its own jobs); no TRL adapter reads them
    unhashed = {"name", "multi_gpu", "accelerate_config", "learning_rate_by_model", "checkpoint_every_steps", "api",
                "openai"}
    # Settings added later enter the key only when set, so older keys (the demo's) stay valid.
    if cfg.get("effective_batch_size") is None:
        unhashed.add("effective_batch_size")
    content = {"v": FINETUNE_VERSION, "base": base.fingerprint, "rows": rows_key,
               "cfg": {k: v for k, v in cfg.items() if k not in unhashed}}
    strategy = cfg.get("multi_gpu", "none")
    if strategy != "none":  # the accelerate config sets mixed precision and sharding: other numerics
        content["multi_gpu"] = strategy
        content["accelerate_config"] = _accelerate_config_digest(cfg)
        if cfg.get("effective_batch_size") is None:  # rows per step = batch_size x ranks x accumulation
            content["ranks"] = int(base.entry["gpus"])
    return digest(content)


def _accelerate_config_digest(cfg: dict) -> str:
    """The content of the accelerate config a multi-GPU finetune launches with (the file, not its path)."""
    from introspection.finetune.distributed import accelerate_config_path

    path = Path(accelerate_config_path(cfg))
    try:
        return digest(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise OSError(f"cannot read the accelerate config {path} (finetune.accelerate_config): {e.strerror}") from None


def finetune_model(store: Store, base: ModelRef, rows_path: Path, rows_key: str, finetune_cfg, label: str) -> ModelRef:
    """Finetune `base` on the rows; returns the finetuned model (base + adapter)."""
    if base.entry.get("source") == "server" and finetune_cfg.get("api") == "openai":  # trained by its service
        from introspection.finetune.openai_finetune import finetune_server_model

        entry, resolved = finetune_server_model(store, base, rows_path, rows_key, finetune_cfg, label)
        return ModelRef(label, entry, resolved)
    if base.entry.get("source") == "server":  # an adapter of the weights it serves, trained here, served there
        trained = finetune_model(store, served_weights(store, base), rows_path, rows_key, finetune_cfg, label)
        if trained.adapter_key is None:  # finetune=full: new weights, not an adapter (refused at start)
            raise ValueError(f"{label}: finetune.method={finetune_cfg.get('method')} made complete weights, which the server "
                             "of a served model cannot load; use finetune.method=lora or qlora")
        return base.with_adapter(label, Path(trained.adapter_dir), trained.adapter_key)
    started = time.time()  # for the profile's record of a finetune that is not the worker's (reused, multi-GPU)
    cfg = settings_for_model(finetune_cfg, base)
    key = adapter_key(base, rows_key, cfg)
    if store.get("adapters", key) is None:
        wait_for_live_builders(store, "adapters", [key])  # then reused, unless that job failed
    if store.get("adapters", key) is None:
        log.info("finetuning %s on %s (learning rate %g, batch %d per device x %d accumulation, multi_gpu %s, "
                 "gradient checkpointing %s)", base.label, rows_path, cfg["learning_rate"], cfg["batch_size"],
                 cfg["gradient_accumulation_steps"], cfg["multi_gpu"], cfg["gradient_checkpointing"])
        payload = {"store_root": str(store.root), "key": key, "model": asdict(base), "rows_path": str(rows_path),
                   "finetune": cfg, "label": label}
        # Slurm's time-limit signal waits for this finetune to checkpoint before the job is requeued.
        with finetune_in_flight(f"finetuning {label}"):
            if cfg.get("multi_gpu", "none") == "none":
                from introspection.worker import finetune_worker

                # The worker builds under the key's lock and reports computed, or reused when another job
                # sealed the adapter while it waited for the lock.
                run_in_subprocess(store, finetune_worker, payload, f"finetuning {label}",
                                  gpus=devices.finetune_devices(cfg, base.entry))  # one: no DataParallel
            else:  # every rank trains together under `accelerate launch`; this process holds the store's lock
                from introspection.finetune.distributed import finetune_on_ranks

                store.count_worker_run()
                n = int(base.entry["gpus"])
                built = len(store.computed)
                store.get_or_build("adapters", key, lambda folder: finetune_on_ranks(payload, folder, n))  # counts it
                trained = f"adapters/{key[:12]}" in store.computed[built:]  # (the other side's thread may add too)
                _record_finetune(store, label, base, started, reused=not trained, key=key)
    else:
        store.count_reused("adapters", key)
        _record_finetune(store, label, base, started, reused=True)
    folder = store.get("adapters", key)
    if folder is None:
        raise RuntimeError(f"finetuning {label} finished without writing its adapter")
    discard_checkpoints(store.root, key)  # sealed: nothing left to resume
    if store.info("adapters", key).get("merged"):  # finetune=full: the folder holds complete weights
        resolved = {**base.resolved, "path": str(folder / "adapter"), "fingerprint": digest([base.fingerprint, key])}
        return ModelRef(label, base.entry, resolved)
    return base.with_adapter(label, folder / "adapter", key)


def served_weights(store: Store, model: ModelRef) -> ModelRef:
    """The open weights a server model's `weights` names, as a model to finetune (inference/server_lora.py):
    the same weights give the same fingerprint, so the adapter an in-process run trained is reused."""
    from introspection.config import ModelEntry
    from introspection.inference.server_lora import served_weights_entry
    from introspection.models import resolve_model

    entry = served_weights_entry(ModelEntry(**model.entry))
    resolved = resolve_model(entry, store.root, where=f"{model.label} weights")
    return ModelRef(model.label, asdict(entry), asdict(resolved))


def _record_finetune(store: Store, label: str, base: ModelRef, started: float, reused: bool, key: str = "") -> None:
    """The profile's record of a finetune this process saw from outside: reused (the wall is the lookup), or
    trained on several GPUs by `accelerate launch` (rows and tokens from the adapter's info; the ranks'
    memory is not measured here)."""
    from introspection.profile import finetune_work, make_record

    profile = profile_of(store)
    if profile is None:
        return
    work = finetune_work({} if reused else store.info("adapters", key))
    record = make_record(f"finetune {label}", "finetune", base.label, started, time.time(), reused=reused, **work)
    record.peak_rss_gib = record.peak_gpu_gib = None  # this process's figures would be mistaken for the ranks'
    profile.add(record)
