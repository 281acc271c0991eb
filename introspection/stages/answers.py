"""The behave and predict stages: answers of one model to chat requests, from the store where sealed, else from
one spawned answer worker (introspection/stages/worker.py) for every job still missing."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

from introspection.core import devices
from introspection.core.payload import to_payload
from introspection.core.profile import Profile, timed_stage
from introspection.core.store import Store, digest, read_jsonl
from introspection.core.types import Answer, ChatRequest, Sampling
from introspection.stages.model_ref import ModelRef
from introspection.stages.worker_runs import run_in_subprocess, wait_for_live_builders

log = logging.getLogger(__name__)

# Bump when this code changes what it writes: old artifacts then stop matching.
ANSWERS_VERSION = 1


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
    its model id (model_fingerprints.server_fingerprint)."""
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


def run_answer_jobs(store: Store, model: ModelRef, jobs: list[AnswerJob], inference_cfg, *,
                    profile: Profile | None = None) -> list[AnswerJob]:
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
        payload = to_payload({
            "store_root": store.root,
            "model": model,
            "inference": inference_cfg,
            "jobs": [{"name": j.name, "key": j.key, "sampling": j.sampling,
                      # what the engine needs; the fields naming item, task and property stay here
                      "requests": [{"request_id": r.request_id, "messages": r.messages} for r in j.requests]}
                     for j in missing],
        })
        from introspection.inference.registry import backend_for
        from introspection.stages.worker import answer_worker

        spec = backend_for((model.entry or {}).get("source"), inference_cfg.backend)  # a server model's: server
        gpus = devices.inference_devices(model.entry or {}, spec.name) if spec.on_devices else 0  # remote: none
        run_in_subprocess(store, answer_worker, payload, f"inference for {model.label}", gpus=gpus,
                          profile=profile)
    for job in jobs:
        # A job the worker did not run is a stage of its own in the profile: its wall is the lookup.
        with timed_stage(profile if job.key not in missing_keys else None, f"answers {model.label} {job.name}",
                         "answers", model.label) as stage:
            stage["reused"] = True
            folder = store.get("answers", job.key)
            if folder is None:
                raise RuntimeError(f"answers for {model.label} ({job.name}) are missing after the worker ran")
            if job.key not in missing_keys:  # a missing one was counted by the worker: computed, or reused when
                store.count_reused("answers", job.key)  # another job sealed it while this one waited
            job.answers = {d["request_id"]: Answer.from_dict(d) for d in read_jsonl(folder / "answers.jsonl")}
    return jobs

