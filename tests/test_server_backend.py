"""The `server` model source (introspection/inference/server_backend.py, server_client.py, server_checks.py).

Unit tests talk to a small HTTP server in a thread on 127.0.0.1 (tests/helpers/served.py) that answers as an
OpenAI-compatible endpoint would, or fails as one can (429, 5xx, slow answers, refused connections): retries with backoff, timeouts, the
bounded number of requests in flight, the answer's fields, the start checks, the answers stored through the
answer worker (resumed without asking twice, no key written anywhere). The last test starts a real
`vllm serve` of a tiny random model (one server for the module, torn down at its end) and checks its greedy
answers equal the in-process vLLM engine's. Finetuned served models: tests/test_server_finetune.py.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from introspection.cli import rewrite_model_sides
from introspection.core.config import InferenceConfig, ModelEntry
from introspection.core.store import Store
from introspection.core.types import ChatRequest, Sampling
from introspection.inference import make_backend
from introspection.inference.server_checks import check_server_entry, check_server_service
from introspection.inference.server_client import ServerClient, ServerError, backoff_seconds
from introspection.stages.answers import AnswerJob, answer_key, run_answer_jobs
from introspection.stages.model_ref import ModelRef
from introspection.weights.fingerprints import server_fingerprint
from introspection.weights.resolve import resolve_model
from tests.helpers import compose_cfg
from tests.helpers.checks import SECRETS, assert_one_line, secrets_found
from tests.helpers.served import HAS_VLLM, FakeEndpoint, closed_port_url, vllm_serve

KEY_VARIABLE = "OPENAI_API_KEY"
KEY = SECRETS[KEY_VARIABLE]


@pytest.fixture
def endpoint():
    server = FakeEndpoint()
    yield server
    server.close()


def server_entry(base_url: str, path: str = "tiny-server", key_env: str | None = KEY_VARIABLE) -> ModelEntry:
    return ModelEntry(name="served", source="server", path=path, base_url=base_url, api_key_env=key_env)


def inference(**kw) -> InferenceConfig:
    return InferenceConfig(**{"name": "test", "backend": "hf", "batch_size": 4, **kw})


def raised(exc_type, fn, *args, **kw) -> str:
    with pytest.raises(exc_type) as info:
        fn(*args, **kw)
    return str(info.value)


REQUESTS = [ChatRequest(f"r{i}", [{"role": "system", "content": ""}, {"role": "user", "content": f"prompt {i}"}])
            for i in range(10)]


# --- the client: retries, backoff, timeouts ------------------------------------------------------------------
def test_backoff_doubles_up_to_its_cap_and_honours_retry_after():
    top = [backoff_seconds(a, None, start=1.0, cap=10.0, rng=lambda: 1.0) for a in range(6)]
    assert top == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert [backoff_seconds(a, None, start=1.0, cap=10.0, rng=lambda: 0.0) for a in range(3)] == [0.5, 1.0, 2.0]
    assert backoff_seconds(0, 7.0, start=1.0, cap=10.0, rng=lambda: 0.0) == 7.0  # the server's Retry-After
    assert backoff_seconds(0, 500.0, start=1.0, cap=10.0) == 10.0  # capped


def test_rate_limits_and_server_errors_are_retried_with_growing_waits(endpoint):
    endpoint.failures = [429, 500, 503]
    waits: list[float] = []
    client = ServerClient(endpoint.base_url, None, timeout_s=5, max_retries=3, backoff_start_s=0.01, sleep=waits.append)
    data = client.post("chat/completions", {"model": "tiny-server", "messages": [{"role": "user", "content": "ab"}]})
    assert data["choices"][0]["message"]["content"] == "ba"
    assert client.attempts == 4 and len(endpoint.requests) == 4
    assert len(waits) == 3 and waits[1] >= 0.01 and waits[2] >= 0.02  # 0.01 * 2**attempt, upper half drawn


def test_a_request_the_server_refuses_is_not_retried(endpoint):
    endpoint.failures = [400]
    client = ServerClient(endpoint.base_url, None, timeout_s=5, max_retries=5, sleep=lambda s: None)
    message = raised(ServerError, client.post, "chat/completions", {"model": "m", "messages": []})
    assert_one_line(message, "HTTP 400", "injected 400 second line", "/v1/chat/completions")
    assert client.attempts == 1


def test_retries_end_in_one_line_naming_the_settings(endpoint):
    endpoint.failures = [503] * 3
    client = ServerClient(endpoint.base_url, None, timeout_s=5, max_retries=2, sleep=lambda s: None)
    message = raised(ServerError, client.post, "chat/completions", {"model": "m", "messages": []})
    assert_one_line(message, "after 3 attempt(s)", "HTTP 503", "inference.server_max_retries")


def test_a_slow_answer_times_out_and_is_retried(endpoint):
    endpoint.failures = ["slow"]
    client = ServerClient(endpoint.base_url, None, timeout_s=0.3, max_retries=1, sleep=lambda s: None)
    t0 = time.perf_counter()
    data = client.post("chat/completions", {"model": "m", "messages": [{"role": "user", "content": "xy"}]})
    assert data["choices"][0]["message"]["content"] == "yx" and client.attempts == 2
    assert time.perf_counter() - t0 < 1.9  # did not wait for the slow answer
    endpoint.failures = ["slow", "slow"]
    assert "ReadTimeout" in raised(ServerError, client.post, "chat/completions", {"model": "m", "messages": []})


def test_a_refused_connection_is_retried_then_named():
    client = ServerClient(closed_port_url(), None, timeout_s=1, max_retries=1, sleep=lambda s: None)
    assert_one_line(raised(ServerError, client.get, "models"), "ConnectError", "after 2 attempt(s)")


# --- the backend: answers, concurrency, keys ------------------------------------------------------------------
def test_answers_carry_the_engines_fields_and_what_the_server_reported(endpoint, monkeypatch):
    monkeypatch.setenv(KEY_VARIABLE, KEY)
    entry = server_entry(endpoint.base_url)
    backend = make_backend("vllm", resolve_model(entry, Path("/nonexistent")), inference(), entry)
    try:
        answers = backend.chat(REQUESTS[:2], Sampling(max_tokens=5, top_logprobs=2))
        sampled = backend.chat(REQUESTS[:1], Sampling(temperature=1.0, n_samples=3, seed=4))
    finally:
        backend.close()
    assert [a.request_id for a in answers] == ["r0", "r1"]
    first = answers[0]
    assert first.text == "0 tpmorp" and first.finish_reason == "stop" and first.samples == ["0 tpmorp"]
    assert first.first_token_logprobs == [("a", -0.5), ("b", -2.0)]  # highest first, k of them
    assert (first.prompt_tokens, first.generated_tokens) == (len("prompt 0"), 3)
    assert first.served == {"model": "tiny-server-served", "system_fingerprint": "fp_test"}
    assert first.to_dict()["served"] == first.served
    body = endpoint.requests[0]
    assert body["model"] == "tiny-server" and body["max_tokens"] == 5 and body["temperature"] == 0.0
    assert body["n"] == 1 and body["logprobs"] is True and body["top_logprobs"] == 2
    assert endpoint.requests[-1]["n"] == 3 and endpoint.requests[-1]["seed"] == 4 and "logprobs" not in endpoint.requests[-1]
    assert len(sampled[0].samples) == 3 and sampled[0].text is None  # three different samples: dropped, as mode-of-n says
    assert set(endpoint.authorizations) == {f"Bearer {KEY}"}


def test_requests_in_flight_stay_within_the_bound(monkeypatch):
    server = FakeEndpoint(delay_s=0.2, gather=3)
    try:
        entry = server_entry(server.base_url, key_env=None)
        backend = make_backend("hf", resolve_model(entry, Path("/nonexistent")), inference(server_concurrency=3), entry)
        t0 = time.perf_counter()
        answers = backend.chat(REQUESTS, Sampling(max_tokens=4))
        elapsed = time.perf_counter() - t0
        backend.close()
    finally:
        server.close()
    assert [a.request_id for a in answers] == [r.request_id for r in REQUESTS]  # in order
    assert server.max_in_flight == 3  # never more, and the bound is used
    assert elapsed >= 0.2 * 10 / 3  # 10 requests, 3 at a time
    assert set(server.authorizations) == {None}  # no key, no header


def test_the_first_failure_cancels_the_rest(endpoint):
    endpoint.refuse = {"prompt 0"}
    entry = server_entry(endpoint.base_url, key_env=None)
    backend = make_backend("hf", resolve_model(entry, Path("/x")), inference(server_concurrency=1), entry)
    assert "refused prompt 0" in raised(ServerError, backend.chat, REQUESTS, Sampling())
    backend.close()
    assert len(endpoint.requests) < len(REQUESTS)


def test_a_server_model_is_keyed_by_endpoint_and_model_id_not_by_engine_or_dtype():
    entry = server_entry("https://api.example/v1", path="m-2024")
    ref = ModelRef("served", asdict(entry), asdict(resolve_model(entry, Path("/x"))))
    job = AnswerJob("object/train", REQUESTS[:2], Sampling())
    key = answer_key(ref, job, inference(backend="hf"))
    assert key == answer_key(ref, job, inference(backend="vllm"))  # the engine setting is not this model's
    assert ref.resolved["fingerprint"] == server_fingerprint("https://api.example/v1/", "m-2024", None)
    for change in ({"path": "m-2025"}, {"base_url": "https://other.example/v1"}, {"revision": "pinned"}):
        other = ModelEntry(**{**asdict(entry), **change})
        other_ref = ModelRef("served", asdict(other), asdict(resolve_model(other, Path("/x"))))
        assert answer_key(other_ref, job, inference()) != key, change
    keyless = ModelEntry(**{**asdict(entry), "api_key_env": "OTHER"})
    assert asdict(resolve_model(keyless, Path("/x"))) == ref.resolved  # the key's variable is no part of it


# --- the start checks -----------------------------------------------------------------------------------------
def start_cfg(base_url: str, *extra: str, path: str = "tiny-server", key_env: str = KEY_VARIABLE):
    return compose_cfg(rewrite_model_sides(["model.m1=vllm_serve_example", f"model.m1.base_url={base_url}",
                                            f"model.m1.path={path}", f"model.m1.api_key_env={key_env}",
                                            "experiment=untrained_self", *extra]))


def check_service(cfg, slot: str = "m1") -> None:
    """check_server_service as the start checks call it: told whether cfg's experiment finetunes the slot."""
    from introspection.experiments import parse_options
    from introspection.main import experiments

    chosen = experiments()[cfg.experiment.name]
    check_server_service(cfg, slot, slot in chosen.finetunes(parse_options(chosen, cfg.experiment.options)))


def test_the_start_checks_pass_for_a_listed_model_with_its_key(endpoint, monkeypatch):
    monkeypatch.setenv(KEY_VARIABLE, KEY)
    cfg = start_cfg(endpoint.base_url)
    check_server_entry(cfg, "m1")
    check_service(cfg)
    assert endpoint.authorizations == [f"Bearer {KEY}"]


def test_a_missing_key_variable_fails_in_one_line(endpoint, monkeypatch):
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    message = raised(ValueError, check_service, start_cfg(endpoint.base_url))
    assert_one_line(message, "model.m1.api_key_env", KEY_VARIABLE, "unset or empty", "api_key_env=null")
    assert endpoint.authorizations == []  # nothing was asked


def test_an_unreachable_endpoint_fails_in_seconds(monkeypatch):
    monkeypatch.setenv(KEY_VARIABLE, KEY)
    url = closed_port_url()
    t0 = time.perf_counter()
    message = raised(ValueError, check_service, start_cfg(url))
    assert time.perf_counter() - t0 < 10
    assert_one_line(message, f"model.m1.base_url={url}", "ConnectError", "start the server")
    assert KEY not in message


def test_an_unlisted_model_id_and_a_refused_key_fail_in_one_line(endpoint, monkeypatch):
    monkeypatch.setenv(KEY_VARIABLE, KEY)
    message = raised(ValueError, check_service, start_cfg(endpoint.base_url, path="gpt-5"))
    assert_one_line(message, "model.m1.path='gpt-5'", "tiny-server")
    endpoint.models = []
    endpoint.server.RequestHandlerClass.do_GET = lambda self: self._reply(401, {"error": {"message": "bad key"}})
    message = raised(ValueError, check_service, start_cfg(endpoint.base_url))
    assert_one_line(message, "HTTP 401", f"check the key in {KEY_VARIABLE}")
    assert KEY not in message


@pytest.mark.parametrize("experiment, slot_finetuned", [("cross_prediction", True), ("untrained_self", False),
                                                        ("behavior_shift", False), ("calibration", True)])
def test_a_finetune_of_a_server_model_fails_at_start(endpoint, monkeypatch, experiment, slot_finetuned):
    monkeypatch.setenv(KEY_VARIABLE, KEY)
    extra = ["experiment.options.target=m2", "experiment.options.source=m1"] if experiment == "behavior_shift" else []
    cfg = start_cfg(endpoint.base_url, f"experiment={experiment}", *extra)  # each experiment names what it finetunes
    if not slot_finetuned:
        check_service(cfg)
        return
    message = raised(ValueError, check_service, cfg)
    assert_one_line(message, "model.m1 (vllm_serve_example) is a server model", f"experiment={experiment} finetunes it",
                    "set finetune=openai", "experiment=untrained_self")
    assert endpoint.authorizations == []  # judged before any request


def test_a_server_entry_needs_a_url_and_no_template():
    cfg = start_cfg("ftp://x/v1")
    assert_one_line(raised(ValueError, check_server_entry, cfg, "m1"), "model.m1.base_url='ftp://x/v1'",
                    "https://api.openai.com/v1")
    cfg = start_cfg("http://127.0.0.1:1/v1", "model.m1.chat_template=gemma")
    assert_one_line(raised(ValueError, check_server_entry, cfg, "m1"), "model.m1.chat_template='gemma'",
                    "server renders its own")
    cfg = start_cfg("http://127.0.0.1:1/v1", key_env="sk-abc-123")
    assert_one_line(raised(ValueError, check_server_entry, cfg, "m1"), "model.m1.api_key_env", "NAME")


def test_the_paper_models_compose_in_mixed_pairs():
    for sides in (["model=llama3_70b", "model.m1=gpt4o"], ["model=llama3_70b", "model.m2=gpt4"], ["model.m1=gpt35"]):
        cfg = compose_cfg(rewrite_model_sides(sides))
        served = [cfg.model[s] for s in ("m1", "m2") if cfg.model[s].source == "server"]
        assert len(served) == 1 and served[0].base_url == "https://api.openai.com/v1"
        assert served[0].api_key_env == KEY_VARIABLE
    ids = {name: OmegaConf.load(Path("conf/model/llm") / f"{name}.yaml").path for name in ("gpt4o", "gpt4", "gpt35")}
    assert ids == {"gpt4o": "gpt-4o-2024-05-13", "gpt4": "gpt-4-0613", "gpt35": "gpt-3.5-turbo-0125"}


# --- through the answer worker: stored, resumed, no key written ----------------------------------------------
def test_answers_are_stored_and_a_failed_run_resumes_without_asking_twice(endpoint, monkeypatch, tmp_path, capfd):
    monkeypatch.setenv(KEY_VARIABLE, KEY)
    store = Store(tmp_path / "store")
    entry = server_entry(endpoint.base_url)
    model = ModelRef("served", asdict(entry), asdict(resolve_model(entry, store.root)))
    cfg = OmegaConf.structured(inference(batch_size=4, server_max_retries=0))
    endpoint.refuse = {"prompt 5"}  # the second batch (r4-r7) fails: the first is kept
    with pytest.raises(Exception, match="inference for served failed in its worker"):
        run_answer_jobs(store, model, [AnswerJob("object/test", REQUESTS, Sampling())], cfg)
    failed_out, failed_err = capfd.readouterr()
    assert "HTTP 400: refused prompt 5" in failed_out + failed_err  # the worker's one line names the refusal
    asked_first = {r["messages"][-1]["content"] for r in endpoint.requests}
    assert {f"prompt {i}" for i in range(4)} <= asked_first
    endpoint.refuse, endpoint.requests = set(), []
    (job,) = run_answer_jobs(store, model, [AnswerJob("object/test", REQUESTS, Sampling())], cfg)
    asked_again = [r["messages"][-1]["content"] for r in endpoint.requests]
    assert not {f"prompt {i}" for i in range(4)} & set(asked_again)  # the kept batch was not paid twice
    assert sorted(asked_again) == [f"prompt {i}" for i in range(4, 10)]
    assert [job.answers[r.request_id].text for r in REQUESTS] == [f"{i} tpmorp" for i in range(10)]
    assert all(a.served == {"model": "tiny-server-served", "system_fingerprint": "fp_test"} for a in job.answers.values())
    assert store.info("answers", job.key)["backend"] == "server"
    endpoint.requests = []
    run_answer_jobs(store, model, [AnswerJob("object/test", REQUESTS, Sampling())], cfg)
    assert endpoint.requests == []  # stored: a rerun asks nothing
    out, err = capfd.readouterr()
    assert secrets_found([store.root], [failed_out, failed_err, out, err]) == []


# --- a real `vllm serve` against the in-process engine -----------------------------------------------------------
@pytest.fixture(scope="module")
def vllm_serve_url(tiny_model_dir, tmp_path_factory):
    """`vllm serve` of the tiny model on 127.0.0.1, started once for the module and always stopped."""
    with vllm_serve(tiny_model_dir, "tiny", tmp_path_factory.mktemp("serve")) as base_url:
        yield base_url


@pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed")
def test_vllm_serve_answers_equal_the_in_process_engine(vllm_serve_url, tiny_model_dir, tmp_path):
    from introspection.core.config import default_cache_dir
    from introspection.inference.vllm_backend import prepare_cpu_env

    requests = REQUESTS[:6]
    sampling = Sampling(max_tokens=8, top_logprobs=5)
    served_entry = server_entry(vllm_serve_url, path="tiny", key_env=None)
    server = make_backend("vllm", resolve_model(served_entry, tmp_path), inference(), served_entry)
    try:
        served = server.chat(requests, sampling)
    finally:
        server.close()
    local_entry = ModelEntry(name="tiny", source="local", path=str(tiny_model_dir), max_model_len=512, dtype="float32")
    prepare_cpu_env(default_cache_dir())
    engine = make_backend("vllm", resolve_model(local_entry, tmp_path), inference(backend="vllm",
                          gpu_memory_utilization=0.1, enforce_eager=True), local_entry, work_dir=tmp_path,
                          samplings=[sampling])
    try:
        local = engine.chat(requests, sampling)
    finally:
        engine.close()
    for s, e in zip(served, local, strict=True):
        assert (s.request_id, s.text, s.samples, s.finish_reason) == (e.request_id, e.text, e.samples, e.finish_reason)
        assert (s.prompt_tokens, s.generated_tokens) == (e.prompt_tokens, e.generated_tokens)
        assert [t for t, _ in s.first_token_logprobs] == [t for t, _ in e.first_token_logprobs]
        assert [v for _, v in s.first_token_logprobs] == pytest.approx([v for _, v in e.first_token_logprobs], abs=1e-4)
        assert s.served["model"] == "tiny"
    assert len({a.text for a in served}) > 1  # the prompts really got different answers
