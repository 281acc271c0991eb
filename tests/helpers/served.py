"""Servers for the tests of server models: a fake OpenAI-compatible endpoint in a thread (FakeEndpoint), a
URL where nothing listens, and a real `vllm serve` of a model folder (vllm_serve)."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from introspection.inference.server_client import ServerClient, ServerError

HAS_VLLM = importlib.util.find_spec("vllm") is not None


class FakeEndpoint:
    """An OpenAI-compatible endpoint in a thread: GET /v1/models lists `models`; POST /v1/chat/completions answers
    each prompt with its last message reversed, after `delay_s`, unless `failures` (a list of status codes, or
    "slow") says to fail this request first. Records every request and the most requests in flight at once.
    POST /v1/load_lora_adapter answers as vLLM's does by `lora`: "absent" (a server started without
    VLLM_ALLOW_RUNTIME_LORA_UPDATING: no such route), "disabled" (without --enable-lora) or "enabled" (an existing
    folder is loaded and listed under its name; another path is not found); `loads` records each load asked."""

    def __init__(self, models=("tiny-server",), delay_s: float = 0.0, gather: int = 0):
        # gather: answer nothing until that many requests were in flight at once (or 10 s passed), so a test of
        # the client's concurrency does not depend on how fast a loaded machine starts its threads
        self.models, self.delay_s, self.gather = list(models), delay_s, gather
        self.failures: list = []
        self.lora = "absent"
        self.loads: list[dict] = []
        self.refuse: set[str] = set()  # prompts answered with HTTP 400 (a request the server will never take)
        self.requests: list[dict] = []
        self.authorizations: list[str | None] = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        self.gathered = threading.Condition(self.lock)
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _reply(self, status: int, body: dict, headers: dict | None = None):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                endpoint.authorizations.append(self.headers.get("Authorization"))
                if self.path.rstrip("/") != "/v1/models":
                    return self._reply(404, {"error": {"message": f"no route {self.path}"}})
                ids = endpoint.models + [load["lora_name"] for load in endpoint.loads if endpoint.lora == "enabled"
                                         and Path(load["lora_path"]).is_dir()]
                self._reply(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in ids]})

            def _load_lora(self, body: dict):
                endpoint.loads.append(body)
                if endpoint.lora == "absent":
                    return self._reply(404, {"detail": "Not Found"})
                if endpoint.lora == "disabled":
                    return self._reply(500, {"error": {"message": "LoRA is not enabled. Use --enable-lora to enable LoRA."}})
                if not Path(body["lora_path"]).is_dir():
                    return self._reply(404, {"error": {"message": f"Loading lora {body['lora_name']} failed: No adapter "
                                                                  f"found for {body['lora_path']}"}})
                data = f"Success: LoRA adapter '{body['lora_name']}' added successfully.".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path.endswith("/load_lora_adapter"):
                    return self._load_lora(body)
                with endpoint.lock:
                    endpoint.requests.append(body)
                    endpoint.authorizations.append(self.headers.get("Authorization"))
                    failure = endpoint.failures.pop(0) if endpoint.failures else None
                    endpoint.in_flight += 1
                    endpoint.max_in_flight = max(endpoint.max_in_flight, endpoint.in_flight)
                    endpoint.gathered.notify_all()
                    endpoint.gathered.wait_for(lambda: endpoint.max_in_flight >= endpoint.gather, timeout=10)
                try:
                    if failure == "slow":
                        time.sleep(2.0)
                    elif failure is not None:
                        return self._reply(failure, {"error": {"message": f"injected {failure}\nsecond line"}},
                                           {"Retry-After": "0"} if failure == 429 else None)
                    time.sleep(endpoint.delay_s)
                    prompt = body["messages"][-1]["content"]
                    if prompt in endpoint.refuse:
                        return self._reply(400, {"error": {"message": f"refused {prompt}"}})
                    self._reply(200, endpoint.completion(body, prompt))
                finally:
                    with endpoint.lock:
                        endpoint.in_flight -= 1

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    @staticmethod
    def completion(body: dict, prompt: str) -> dict:
        n = body.get("n", 1)
        choices = []
        for i in range(n):
            choice = {"index": i, "message": {"role": "assistant", "content": prompt[::-1] + ("" if i == 0 else str(i))},
                      "finish_reason": "stop"}
            if body.get("logprobs"):
                top = [{"token": t, "logprob": lp} for t, lp in (("b", -2.0), ("a", -0.5), ("c", -3.0))]
                choice["logprobs"] = {"content": [{"token": "a", "logprob": -0.5, "top_logprobs": top}]}
            choices.append(choice)
        return {"id": "x", "object": "chat.completion", "model": body["model"] + "-served", "choices": choices,
                "system_fingerprint": "fp_test", "usage": {"prompt_tokens": len(prompt), "completion_tokens": 3 * n}}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens there once the socket is closed


SERVE_START_TIMEOUT_S = 300


@contextmanager
def vllm_serve(model_dir: Path, name: str, log_dir: Path, *extra: str, env: dict | None = None):
    """`vllm serve` of a model folder on 127.0.0.1 as `name`, in float32 with no sampling defaults from the model's
    generation_config.json (as in-process); yields its base URL once it lists its models, and always stops it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = log_dir / "serve.log"
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0", **(env or {})}
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
               "--served-model-name", name, "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
               "--max-model-len", "512", "--generation-config", "vllm", "--enforce-eager", "--seed", "0", *extra]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        client = ServerClient(base_url, None, timeout_s=2, max_retries=0, connect_timeout_s=2)
        deadline = time.monotonic() + SERVE_START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vllm serve exited with {proc.returncode}: {log_path.read_text()[-3000:]}")
            try:
                client.get("models")
                break
            except ServerError:
                if time.monotonic() > deadline:
                    pytest.fail(f"vllm serve not ready in {SERVE_START_TIMEOUT_S} s: {log_path.read_text()[-3000:]}")
                time.sleep(2)
        client.close()
        yield base_url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass
