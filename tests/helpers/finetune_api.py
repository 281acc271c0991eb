"""A small OpenAI fine-tuning API in a thread on 127.0.0.1, for unit tests of finetune/openai_finetune.py:
GET /v1/models, POST /v1/files (multipart, purpose fine-tune), POST /v1/fine_tuning/jobs, GET
/v1/fine_tuning/jobs (list, newest first), GET /v1/fine_tuning/jobs/{id} and its /events.

Each look at a job moves it one state along `states` (validating_files, queued, running, then succeeded, failed
or cancelled); every move adds an event. Records the uploads, the job bodies and every request's path."""

from __future__ import annotations

import json
import threading
from email.parser import BytesParser
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

SUCCEEDED = ["validating_files", "queued", "running", "running", "succeeded"]


class FakeFinetuneAPI:
    def __init__(self, models=("gpt-test",), states=SUCCEEDED, error_message: str = "training file has bad rows"):
        self.models, self.states, self.error_message = list(models), list(states), error_message
        self.uploads: list[dict] = []  # {"fields": {...}, "file_name": ..., "content": bytes}
        self.created: list[dict] = []  # the bodies of POST /fine_tuning/jobs
        self.paths: list[str] = []  # "METHOD /path" of every request
        self.lose_create_answers = 0  # creates that make the job but answer HTTP 500 (a lost answer)
        self.jobs: dict[str, dict] = {}
        self.events: dict[str, list[dict]] = {}
        self.looks: dict[str, int] = {}
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _reply(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                path = urlparse(self.path).path.rstrip("/")
                with api.lock:
                    api.paths.append(f"GET {path}")
                    status, body = api.get(path)
                self._reply(status, body)

            def do_POST(self):
                path = urlparse(self.path).path.rstrip("/")
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                with api.lock:
                    api.paths.append(f"POST {path}")
                    status, body = api.post(path, self.headers.get("Content-Type", ""), raw)
                self._reply(status, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    # --- routes (called under the lock) ---------------------------------------------------------------------
    def get(self, path: str) -> tuple[int, dict]:
        if path == "/v1/models":
            return 200, {"object": "list", "data": [{"id": m, "object": "model"} for m in self.models]}
        if path == "/v1/fine_tuning/jobs":
            return 200, {"object": "list", "data": list(reversed(self.jobs.values())), "has_more": False}
        parts = path.split("/")  # ["", "v1", "fine_tuning", "jobs", id, ("events")]
        if len(parts) >= 5 and parts[:4] == ["", "v1", "fine_tuning", "jobs"] and parts[4] in self.jobs:
            job_id = parts[4]
            if len(parts) == 6 and parts[5] == "events":
                return 200, {"object": "list", "data": list(reversed(self.events[job_id])), "has_more": False}
            if len(parts) == 5:
                self._advance(job_id)
                return 200, self.jobs[job_id]
        return 404, {"error": {"message": f"no route {path}"}}

    def post(self, path: str, content_type: str, raw: bytes) -> tuple[int, dict]:
        if path == "/v1/files":
            message = BytesParser(policy=email_policy).parsebytes(
                f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
            upload = {"fields": {}, "file_name": None, "content": b""}
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if part.get_filename():
                    upload["file_name"], upload["content"] = part.get_filename(), part.get_payload(decode=True)
                else:
                    upload["fields"][name] = part.get_content().strip()
            self.uploads.append(upload)
            return 200, {"id": f"file-{len(self.uploads)}", "object": "file", "purpose": upload["fields"].get("purpose")}
        if path == "/v1/fine_tuning/jobs":
            body = json.loads(raw)
            if body.get("model") not in self.models:
                return 400, {"error": {"message": f"model {body.get('model')} cannot be fine-tuned"}}
            self.created.append(body)
            job_id = f"ftjob-{len(self.created)}"
            self.jobs[job_id] = {"id": job_id, "object": "fine_tuning.job", "model": body["model"],
                                 "training_file": body["training_file"], "status": self.states[0],
                                 "hyperparameters": body.get("hyperparameters"), "fine_tuned_model": None,
                                 "error": None, "trained_tokens": None}
            self.events[job_id] = [self._event(job_id, f"Created fine-tuning job: {job_id}")]
            self.looks[job_id] = 0
            if self.lose_create_answers:
                self.lose_create_answers -= 1
                return 500, {"error": {"message": "the answer was lost"}}
            return 200, self.jobs[job_id]
        return 404, {"error": {"message": f"no route {path}"}}

    def _event(self, job_id: str, message: str, level: str = "info") -> dict:
        n = sum(len(e) for e in self.events.values()) + 1
        return {"id": f"ftevent-{n}", "object": "fine_tuning.job.event", "created_at": n, "level": level,
                "message": message}

    def _advance(self, job_id: str) -> None:
        job = self.jobs[job_id]
        self.looks[job_id] += 1
        status = self.states[min(self.looks[job_id], len(self.states) - 1)]
        if status == job["status"] and status != "running":
            return
        job["status"] = status
        if status == "running":
            self.events[job_id].append(self._event(job_id, f"Step {self.looks[job_id]}/4: training loss=0.5"))
        elif status == "succeeded":
            job["fine_tuned_model"], job["trained_tokens"] = f"ft:{job['model']}:org::{job_id[-1]}abc", 1234
            self.events[job_id].append(self._event(job_id, "The job has successfully completed"))
        elif status == "failed":
            job["error"] = {"code": "invalid_training_file", "message": self.error_message, "param": "training_file"}
            self.events[job_id].append(self._event(job_id, self.error_message, "error"))
        else:
            self.events[job_id].append(self._event(job_id, f"Job is {status}"))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
