"""Entry points of the spawned processes that load a model. Each gets a plain dict, never a live object
(introspection/core/payload.py encodes it in the parent and decodes its configs and records here).

A worker loads one model, computes the artifacts it was asked for, writes them into the store and
exits, so the engine's memory (GPU or CPU) is returned to the system.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from introspection.core import faults
from introspection.core.errors import reported
from introspection.core.payload import config_from_payload, record_from_payload
from introspection.core.profile import StageRecord, finetune_work, make_record
from introspection.core.store import Store, read_jsonl, write_json_atomic, write_jsonl_atomic
from introspection.core.types import ChatRequest, Sampling
from introspection.finetune.job import check_trained_folder, train_from_payload

log = logging.getLogger(__name__)


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")


def _entry_and_resolved(model: dict):
    from introspection.core.config import ModelEntry
    from introspection.weights.resolve import ResolvedModel

    return record_from_payload(ModelEntry, model["entry"]), record_from_payload(ResolvedModel, model["resolved"])


def _kept_batch(path: Path, batch: list[ChatRequest]) -> bool:
    """Whether a batch file left by an interrupted run answers exactly this batch's requests; else delete it.

    The partial folder is keyed like the answers, not by batch size: a rerun with another
    inference.batch_size (or a damaged file) must recompute the batch, never mix answers up.
    """
    if not path.is_file():
        return False
    try:
        ids = [row.get("request_id") for row in read_jsonl(path)]
    except (OSError, ValueError, AttributeError):
        ids = None
    if ids == [r.request_id for r in batch]:
        return True
    log.warning("recomputing %s: it does not hold this batch's answers (other batch size, or damaged)", path)
    path.unlink(missing_ok=True)
    return False


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def checkpoint_batch_size(inference_cfg, on_gpu: bool) -> int:
    """Requests per checkpointed batch (one backend.chat call, one batch file).

    On a GPU, vLLM's scheduler needs thousands of requests in flight to fill its batches, so
    inference.gpu_batch_size applies there; on a CPU (and when it is null) inference.batch_size, as ever.
    A killed run loses at most the batch in progress either way.
    """
    size = inference_cfg.gpu_batch_size if on_gpu and inference_cfg.gpu_batch_size is not None else inference_cfg.batch_size
    return max(1, int(size))


def write_result(payload: dict, store: Store, stages: list[StageRecord] = ()) -> None:
    """Tell the orchestrator which artifacts this worker computed and which it found sealed by another job,
    and how long each stage took (stages/worker_runs.run_in_subprocess adds them to its counts and its run's profile)."""
    if payload.get("result_path"):
        write_json_atomic(Path(payload["result_path"]), {**store.counts(), "stages": [asdict(s) for s in stages]})


@reported
def answer_worker(payload: dict) -> None:
    """Answer every job's requests in batches; a finished batch is kept, so a killed run resumes.

    Each job is built under its key's store lock (Store.get_or_build): sweep jobs share the store and run
    at the same time on a cluster, so one process writes a key's batches, and a job that gets the lock
    after another sealed the answers reuses them without loading the model."""
    _setup_logging()
    from introspection.core.config import InferenceConfig

    store = Store(payload["store_root"])
    inference_cfg = config_from_payload(InferenceConfig, payload["inference"])
    from introspection.inference.registry import backend_for

    spec = backend_for(payload["model"]["entry"].get("source"), inference_cfg.backend)  # a server model's: server
    # the engine is loaded by the first batch that needs it and shared by every job; "name" is what answered
    engine: dict = {"backend": None, "name": spec.name}
    size = checkpoint_batch_size(inference_cfg, on_gpu=spec.on_devices and _cuda_available())
    stages = []
    try:
        for job in payload["jobs"]:
            started, built = time.time(), len(store.computed)
            work: dict = {}  # the engine's work for this job (profile counters), filled by _answer_job
            store.get_or_build("answers", job["key"], lambda folder, job=job, work=work:
                               _answer_job(store, payload, inference_cfg, engine, size, job, folder, work))
            stages.append(make_record(f"answers {payload['model']['label']} {job['name']}", "answers",
                                      payload["model"]["label"], started, time.time(), reused=len(store.computed) == built,
                                      device_wide=spec.device_wide, **work))
        write_result(payload, store, stages)
    finally:
        if engine["backend"] is not None:
            engine["backend"].close()


def _answer_job(store: Store, payload: dict, inference_cfg, engine: dict, size: int, job: dict, folder: Path,
                work: dict) -> dict:
    """Answer one job's requests into folder/answers.jsonl (the key's lock is held); return the manifest info.

    `work` receives what the engine did for this job (introspection.core.profile.StageRecord's counters): the
    engine start when this job started it, and the requests and tokens of the batches computed now."""
    from introspection.inference import make_backend

    model = payload["model"]
    entry, resolved = _entry_and_resolved(model)
    key, sampling = job["key"], record_from_payload(Sampling, job["sampling"])
    requests = [record_from_payload(ChatRequest, r) for r in job["requests"]]
    partial = store.partial_dir("answers", key)
    batches = [requests[i : i + size] for i in range(0, len(requests), size)]
    started = time.time()
    engine_seconds = generate_seconds = 0.0  # recorded for benchmarks/ (steady-state rates)
    kept = sum(_kept_batch(partial / f"batch-{i:05d}.jsonl", batch) for i, batch in enumerate(batches))
    if kept:
        log.info("%s %s: %d of %d batches kept from an interrupted run", model["label"], job["name"], kept, len(batches))
    for i, batch in enumerate(tqdm(batches, desc=f"{model['label']} {job['name']}", unit="batch")):
        out = partial / f"batch-{i:05d}.jsonl"
        if out.is_file():
            continue  # done before an interruption (and checked by _kept_batch above)
        if engine["backend"] is None:
            t0 = time.perf_counter()
            engine["backend"] = make_backend(inference_cfg.backend, resolved, inference_cfg, entry,
                                             adapter_path=model["adapter_dir"], work_dir=store.root,
                                             samplings=[record_from_payload(Sampling, j["sampling"]) for j in payload["jobs"]])
            engine_seconds = time.perf_counter() - t0
            work["engine_start_s"] = round(engine_seconds, 3)
        t0 = time.perf_counter()
        answers = engine["backend"].chat(batch, sampling)
        generate_seconds += time.perf_counter() - t0
        _count_work(work, answers)
        write_jsonl_atomic(out, [a.to_dict() for a in answers])
        faults.reached("answer-batch")
    rows = [row for i in range(len(batches)) for row in read_jsonl(partial / f"batch-{i:05d}.jsonl")]
    write_jsonl_atomic(folder / "answers.jsonl", rows)
    return {"model": model["label"], "job": job["name"], "n": len(rows), "backend": engine["name"],
            "batches": len(batches), "batch_size": size, "batches_resumed": kept,
            "serving": getattr(engine["backend"], "serving", None), "seconds": round(time.time() - started, 2),
            "engine_seconds": round(engine_seconds, 3), "generate_seconds": round(generate_seconds, 3)}


def _count_work(work: dict, answers: list) -> None:
    """Add one batch's requests and tokens to the job's counters (a backend that counts no tokens adds 0)."""
    work["requests"] = work.get("requests", 0) + len(answers)
    work["prompt_tokens"] = work.get("prompt_tokens", 0) + sum(a.prompt_tokens or 0 for a in answers)
    work["generated_tokens"] = work.get("generated_tokens", 0) + sum(a.generated_tokens or 0 for a in answers)


@reported
def finetune_worker(payload: dict) -> None:
    """Finetune one base model on one set of SFT rows and store the adapter (after checking it loads)."""
    _setup_logging()
    store = Store(payload["store_root"])
    started, built = time.time(), len(store.computed)
    # Under the key's lock: a job that waited while another trained this adapter reuses it, training nothing.
    store.get_or_build("adapters", payload["key"],
                       lambda folder: check_trained_folder(payload, folder, train_from_payload(payload, folder)))
    reused = len(store.computed) == built
    work = finetune_work({} if reused else store.info("adapters", payload["key"]))
    stage = make_record(f"finetune {payload['label']}", "finetune", payload["model"]["label"], started, time.time(),
                        reused=reused, **work)
    write_result(payload, store, [stage])


def merge_worker(payload: dict) -> None:
    """Fold an adapter into its base weights (the starting point for finetuning a finetuned model)."""
    _setup_logging()
    from introspection.inference.lora import merge_adapter

    merge_adapter(payload["base_path"], payload["adapter_dir"], payload["out_dir"], dtype=payload.get("dtype", "float32"),
                  revision=payload.get("revision"))
