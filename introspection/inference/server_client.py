"""An HTTP client for OpenAI-compatible servers (the OpenAI API, a lab's `vllm serve`, other hosts): JSON in and
out, retries with exponential backoff on rate limits, server errors, timeouts and dropped connections, and
one-line errors that never hold the key.

httpx, not the `openai` package: the retry schedule, the statuses retried and the timeouts are ours to set and to
test, and nothing is read from the environment behind the config's back (the openai client takes OPENAI_BASE_URL
and OPENAI_API_KEY from it when an argument is left out, which could send a run to another endpoint unseen).
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

RETRIED_STATUSES = frozenset({408, 409, 429})  # and every 5xx: timeouts, conflicts, rate limits, server errors
BACKOFF_START_S = 1.0  # the first retry waits about this long, each later one twice as long as the one before
BACKOFF_MAX_S = 60.0  # no wait is longer, a server's Retry-After included
CONNECT_TIMEOUT_S = 10.0  # to open a connection (answers take longer: inference.server_timeout_s)
MESSAGE_CHARS = 300  # of a server's error message, in our one-line error


class ServerError(RuntimeError):
    """A request the server refused, or that failed after every retry (message: one line, no key). retryable:
    whether a later try could succeed (a rate limit, a server error, a timeout), not a refusal."""

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


def retried(status: int) -> bool:
    return status in RETRIED_STATUSES or status >= 500


def backoff_seconds(attempt: int, retry_after: float | None, start: float = BACKOFF_START_S,
                    cap: float = BACKOFF_MAX_S, rng: Callable[[], float] = random.random) -> float:
    """The wait before retry number `attempt` (0 first): start * 2**attempt, capped, the upper half of it
    drawn at random (so many clients that failed together do not retry together); at least the server's
    Retry-After where it sent one (capped too)."""
    ceiling = min(cap, start * 2**attempt)
    wait = ceiling / 2 + rng() * ceiling / 2
    if retry_after is not None:
        wait = max(wait, min(cap, retry_after))
    return wait


def _retry_after(headers: Any) -> float | None:
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:  # an HTTP date: not worth parsing, the backoff applies
        return None


def server_message(response: Any) -> str:
    """The server's own error text (OpenAI: {"error": {"message": ...}}), on one line, shortened."""
    try:
        body = response.json()
        error = body.get("error", body) if isinstance(body, dict) else body
        text = (error.get("message") or error.get("detail") or str(error)) if isinstance(error, dict) else str(error)
    except ValueError:
        text = response.text
    return " ".join(str(text).split())[:MESSAGE_CHARS]


def api_key(entry: Any, where: str = "model.mX") -> str | None:
    """The key from the variable api_key_env names; None when it names none (a local server needs no key).
    A named variable that is unset or empty is a one-line ValueError (its value never appears in it)."""
    name = entry.api_key_env
    if not name:
        return None
    value = os.environ.get(name, "").strip()
    if not value:
        raise ValueError(f"{where}.api_key_env names the variable {name}, which is unset or empty here; export "
                         f"{name}=<your key> before the run (the key itself never goes into a config), or set "
                         f"{where}.api_key_env=null for a server that needs no key")
    return value


class ServerClient:
    """One endpoint (`base_url`, e.g. https://api.openai.com/v1) and its key (None: a server that needs none).

    Thread-safe: the backend sends several requests at once through one client (httpx pools connections)."""

    def __init__(self, base_url: str, api_key: str | None, timeout_s: float, max_retries: int,
                 connect_timeout_s: float = CONNECT_TIMEOUT_S, backoff_start_s: float = BACKOFF_START_S,
                 backoff_max_s: float = BACKOFF_MAX_S, max_connections: int = 16,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        import httpx

        # httpx logs every request at INFO; the progress bar says enough, and a failure is raised.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_start_s, self.backoff_max_s, self.sleep = backoff_start_s, backoff_max_s, sleep
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=self.base_url + "/", headers=headers,
                                 timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
                                 limits=httpx.Limits(max_connections=max_connections))
        self.attempts = 0  # requests sent, retries included (a test reads it)

    def post(self, path: str, body: dict, retries: int | None = None, json_answer: bool = True) -> dict:
        """POST JSON, retrying what a retry can fix (`retries` times; None: max_retries); the parsed JSON answer
        (json_answer=False: {"text": the answer's text}, as vLLM's load_lora_adapter answers) or a one-line
        ServerError."""
        return self._send("POST", path, body, retries=retries, json_answer=json_answer)

    def get(self, path: str, params: dict | None = None) -> dict:
        return self._send("GET", path, None, params=params)

    def upload(self, path: str, fields: dict[str, str], file_name: str, content: bytes) -> dict:
        """POST a multipart form with one file (the fine-tuning API's POST /files), retried as post is."""
        return self._send("POST", path, None, data=fields, files={"file": (file_name, content, "application/jsonl")})

    def _send(self, method: str, path: str, body: dict | None, retries: int | None = None, json_answer: bool = True,
              **request: Any) -> dict:
        import httpx

        where = f"{method} {self.base_url}/{path}"
        retries = self.max_retries if retries is None else retries
        for attempt in range(retries + 1):
            self.attempts += 1
            retry_after = None
            try:
                response = self.http.request(method, path, json=body, **request)
            except httpx.TransportError as exc:  # refused, reset, DNS, connect or read timeout
                problem = f"{type(exc).__name__}: {' '.join(str(exc).split()) or 'no detail'}"
            else:
                if response.status_code < 400:
                    if not json_answer:
                        return {"text": response.text}
                    try:
                        return response.json()
                    except ValueError:
                        raise ServerError(f"{where} answered HTTP {response.status_code} with a body that is not JSON: "
                                          f"{' '.join(response.text.split())[:MESSAGE_CHARS]!r}") from None
                problem = f"HTTP {response.status_code}: {server_message(response)}"
                if not retried(response.status_code):
                    raise ServerError(f"{where} refused the request ({problem})")
                retry_after = _retry_after(response.headers)
            if attempt == retries:
                advice = ("; raise inference.server_max_retries or inference.server_timeout_s, or lower "
                          "inference.server_concurrency under a rate limit") if retries else ""
                raise ServerError(f"{where} failed after {attempt + 1} attempt(s) ({problem}){advice}", retryable=True)
            wait = backoff_seconds(attempt, retry_after, self.backoff_start_s, self.backoff_max_s)
            log.warning("%s: %s; retry %d of %d in %.1f s", where, problem, attempt + 1, retries, wait)
            self.sleep(wait)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.http.close()
