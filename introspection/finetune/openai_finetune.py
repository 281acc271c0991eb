"""Finetuning a server model through the OpenAI fine-tuning API (finetune.api=openai, e.g. finetune=openai;
docs/api_models.md, "Finetuning API models").

The rows are the ones the TRL path trains on (stages.prepare_rows -> finetune.data.sft_rows), each written as
the API's chat line {"messages": [*prompt, assistant completion]}. Then:
  1. upload them (POST /files, purpose fine-tune) and record the file's id,
  2. create the job (POST /fine_tuning/jobs: the base model id, the file, finetune.openai's hyperparameters and
     finetune.seed) and record the job's id, both in STORE/checkpoints/<job key>/openai_job.json, before polling;
  3. poll it (GET /fine_tuning/jobs/{id} and its events) until it succeeds, fails or is cancelled;
  4. seal the finetuned model's id (ft:...) as the adapters artifact of the job key. The finetuned model is the
     same server entry with that id as its path: it answers through the server backend like any server model.
A killed run resumes the recorded job by its id; a run killed between the upload and the job's record finds the
job by its training file (GET /fine_tuning/jobs lists it), so no second job is created. A failed or cancelled
job ends the run in one line naming the job and the server's message, and its record is removed: a rerun
starts a new job.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from introspection.core.config import openai_hyperparameters
from introspection.core.store import Store, digest, write_json_atomic
from introspection.finetune.checkpoints import checkpoint_folder, discard
from introspection.finetune.data import read_rows

log = logging.getLogger(__name__)

JOB_VERSION = 1  # in the job key: bump when what a job trains on changes
JOB_FILE = "openai_job.json"  # the uploaded file's id and the job's id, in the job key's checkpoint folder
RESULT_FILE = "openai_model.json"  # in the sealed artifact: the finetuned model's id and its job
ACTIVE = ("validating_files", "queued", "running")
ENDED = ("failed", "cancelled")
HTTP_TIMEOUT_S = 120.0  # one request (an upload of 30k rows included)
HTTP_RETRIES = 6  # retries of a request that a retry can fix (server_client.py's backoff)
JOBS_LISTED = 100  # recent jobs searched for one made from our file (a create whose answer was lost)
EVENTS_READ = 20  # newest events read per poll (the progress lines)


class FinetuneJobError(ValueError):
    """A fine-tuning job that failed, was cancelled or could not be started or watched (one line)."""


def chat_rows(rows: list[dict]) -> list[dict]:
    """The API's chat format of TRL prompt-completion rows: one conversation per row, the same messages."""
    return [{"messages": [dict(m) for m in row["prompt"]] + [dict(m) for m in row["completion"]]} for row in rows]


def job_key(base, rows_key: str, finetune_cfg) -> str:
    """The finetuned model's key: the base server model, the rows, the hyperparameters and the seed."""
    return digest({"v": JOB_VERSION, "api": "openai", "base": base.fingerprint, "rows": rows_key,
                   "hyperparameters": openai_hyperparameters(finetune_cfg.openai), "seed": int(finetune_cfg.seed)})


def job_body(model_id: str, file_id: str, finetune_cfg) -> dict[str, Any]:
    body = {"model": model_id, "training_file": file_id, "seed": int(finetune_cfg.seed),
            "hyperparameters": openai_hyperparameters(finetune_cfg.openai)}
    if finetune_cfg.openai.suffix:
        body["suffix"] = str(finetune_cfg.openai.suffix)
    return body


def finetuned_entry(base, model_id: str) -> tuple[dict, dict]:
    """The finetuned model's entry and resolution: the base's server entry with the finetuned model's id as its
    path (stages.finetune_model makes them a ModelRef)."""
    from introspection.weights.fingerprints import server_fingerprint

    entry = {**base.entry, "path": model_id}
    resolved = {**base.resolved, "path": model_id,
                "fingerprint": server_fingerprint(entry["base_url"], model_id, entry.get("revision"))}
    return entry, resolved


def finetune_server_model(store: Store, base, rows_path: Path, rows_key: str, finetune_cfg, label: str,
                          client=None, sleep: Callable[[float], None] = time.sleep):
    """Finetune the server model `base` on the rows through the fine-tuning API at its base_url, or reuse the
    finetuned model sealed for the same key; returns the finetuned model's entry and resolution (a server model:
    finetuned_entry). `base` is a stages.ModelRef (label, entry, resolved, fingerprint)."""
    finetune_cfg = OmegaConf.create(finetune_cfg if isinstance(finetune_cfg, dict) else
                                    OmegaConf.to_container(finetune_cfg, resolve=True))
    if finetune_cfg.get("api") != "openai":
        raise ValueError(f"{label}: {base.entry['name']} is a server model and finetune.api="
                         f"{finetune_cfg.get('api')!r}; set finetune=openai (or finetune.api=openai) to finetune it "
                         "through the fine-tuning API")
    key = job_key(base, rows_key, finetune_cfg)
    state_path = checkpoint_folder(store.root, key) / JOB_FILE

    def build(folder: Path) -> dict:
        own = client or _client(base.entry)
        try:
            job = run_job(own, state_path, str(base.entry["path"]), rows_path, finetune_cfg, label, sleep)
        finally:
            if client is None:
                own.close()
        result = {"model_id": job["fine_tuned_model"], "job_id": job["id"], "base_model": job.get("model"),
                  "trained_tokens": job.get("trained_tokens"), "hyperparameters": job.get("hyperparameters")}
        write_json_atomic(folder / RESULT_FILE, result)
        return {"api": "openai", "model_id": result["model_id"], "job_id": result["job_id"]}

    folder = store.get_or_build("adapters", key, build, {"label": label, "base": base.label, "rows": rows_key})
    discard(store.root, key)  # sealed: no job left to resume
    model_id = json.loads((folder / RESULT_FILE).read_text(encoding="utf-8"))["model_id"]
    log.info("%s is %s", label, model_id)
    return finetuned_entry(base, model_id)


def _client(entry: dict):
    from introspection.inference.server_client import ServerClient, api_key

    view = OmegaConf.create({"api_key_env": entry.get("api_key_env")})
    return ServerClient(str(entry["base_url"]), api_key(view, "the finetuned model"), timeout_s=HTTP_TIMEOUT_S,
                        max_retries=HTTP_RETRIES, max_connections=2)


def _read_state(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError:  # a torn write cannot happen (atomic), but a hand-edited file can be bad
        raise ValueError(f"{path} is not JSON; delete it to start a new fine-tuning job") from None


def _write_state(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, state)


def run_job(client, state_path: Path, model_id: str, rows_path: Path, finetune_cfg, label: str,
            sleep: Callable[[float], None] = time.sleep) -> dict:
    """Upload, create (or resume) and poll one job; the succeeded job's JSON."""
    from introspection.inference.server_client import ServerError

    state = _read_state(state_path)
    try:
        if state.get("job_id"):
            log.info("%s: resuming fine-tuning job %s (recorded in %s)", label, state["job_id"], state_path)
        else:
            if not state.get("file_id"):
                lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chat_rows(read_rows(rows_path)))
                uploaded = client.upload("files", {"purpose": "fine-tune"}, f"{label}.jsonl", lines.encode("utf-8"))
                state = {"file_id": uploaded["id"], "model": model_id}
                _write_state(state_path, state)
                log.info("%s: uploaded %s as file %s", label, rows_path, uploaded["id"])
            job = _job_of_file(client, state["file_id"]) or _create(client, model_id, state["file_id"], finetune_cfg)
            state["job_id"] = job["id"]
            _write_state(state_path, state)
            log.info("%s: fine-tuning job %s of %s created (recorded in %s)", label, job["id"], model_id, state_path)
        return poll(client, state["job_id"], finetune_cfg.openai, label, state_path, sleep)
    except ServerError as exc:
        job = f"job {state['job_id']}" if state.get("job_id") else "the job"
        raise FinetuneJobError(f"{label}: fine-tuning {job} of {model_id} at {client.base_url}: {exc}") from None


def _job_of_file(client, file_id: str) -> dict | None:
    """A job already made from this training file: created by a run that was killed before recording it."""
    listing = client.get("fine_tuning/jobs", params={"limit": JOBS_LISTED})
    return next((j for j in listing.get("data") or [] if j.get("training_file") == file_id), None)


def _create(client, model_id: str, file_id: str, finetune_cfg) -> dict:
    """POST the job once per try: a create that failed in transit may have made the job, so before each retry
    the job list is searched for it (a blind retry could start, and bill, a second job)."""
    from introspection.inference.server_client import ServerError, backoff_seconds

    body = job_body(model_id, file_id, finetune_cfg)
    for attempt in range(HTTP_RETRIES + 1):
        try:
            return client.post("fine_tuning/jobs", body, retries=0)
        except ServerError as exc:
            if not exc.retryable or attempt == HTTP_RETRIES:
                raise
            client.sleep(backoff_seconds(attempt, None, client.backoff_start_s, client.backoff_max_s))
            made = _job_of_file(client, file_id)
            if made is not None:
                return made
    raise AssertionError("unreachable")


def poll(client, job_id: str, settings, label: str, state_path: Path,
         sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> dict:
    """Watch the job until it ends, logging each new status and event (the API's progress: steps, losses)."""
    started, status, seen = clock(), None, set()
    while True:
        job = client.get(f"fine_tuning/jobs/{job_id}")
        events = _new_events(client, job_id, seen)
        for event in events:
            log.info("%s: job %s: %s", label, job_id, event.get("message"))
        if job.get("status") != status:
            status = job.get("status")
            log.info("%s: job %s is %s (%.0f min)", label, job_id, status, (clock() - started) / 60)
        if status == "succeeded":
            if not job.get("fine_tuned_model"):
                raise FinetuneJobError(f"{label}: fine-tuning job {job_id} succeeded but names no fine_tuned_model")
            return job
        if status in ENDED:
            message = (job.get("error") or {}).get("message") or next(
                (e.get("message") for e in reversed(events) if e.get("level") == "error"), None) or "no message"
            state_path.unlink(missing_ok=True)  # a rerun starts a new job
            raise FinetuneJobError(f"{label}: fine-tuning job {job_id} {status}: {' '.join(str(message).split())}; "
                                   "a rerun starts a new job")
        if status not in ACTIVE:
            raise FinetuneJobError(f"{label}: fine-tuning job {job_id} has status {status!r}; expected one of "
                                   f"{', '.join(ACTIVE + ('succeeded',) + ENDED)}")
        if clock() - started > float(settings.timeout_h) * 3600:
            raise FinetuneJobError(f"{label}: fine-tuning job {job_id} is still {status} after "
                                   f"finetune.openai.timeout_h={settings.timeout_h:g}; it goes on at the server, and "
                                   "a rerun resumes it by its id")
        sleep(float(settings.poll_interval_s))


def _new_events(client, job_id: str, seen: set[str]) -> list[dict]:
    """Events not shown yet, oldest first (the API lists the newest first)."""
    listing = client.get(f"fine_tuning/jobs/{job_id}/events", params={"limit": EVENTS_READ})
    fresh = [e for e in listing.get("data") or [] if e.get("id") not in seen]
    seen.update(e.get("id") for e in fresh)
    return sorted(fresh, key=lambda e: e.get("created_at") or 0)
