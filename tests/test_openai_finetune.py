"""finetune=openai (introspection/finetune/openai_finetune.py) against a small fine-tuning API in a thread
(tests/helpers/finetune_api.py): the uploaded JSONL is the TRL rows in chat format, the job carries the
configured hyperparameters, polling reaches succeeded and the finetuned model id is sealed, a killed run resumes
its job by id without creating another, failed and cancelled jobs end in one line; and the start checks of a
server model that is finetuned. Unit tests only: the real API is never called."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict

import pytest
from omegaconf import OmegaConf

from introspection.cli import rewrite_model_sides
from introspection.core.config import (
    FinetuneConfig,
    ModelEntry,
    OpenAIFinetuneSettings,
    TaskSetConfig,
    check_choices,
    openai_hyperparameters,
)
from introspection.core.store import Store
from introspection.core.types import Answer
from introspection.finetune import openai_finetune
from introspection.finetune.checkpoints import checkpoint_folder
from introspection.finetune.data import read_rows
from introspection.inference.server_checks import check_server_entry, check_server_service
from introspection.stages.adapters import finetune_model
from introspection.stages.items import build_items
from introspection.stages.model_ref import ModelRef
from introspection.stages.rows import prepare_rows
from introspection.weights.fingerprints import server_fingerprint
from introspection.weights.resolve import resolve_model
from tests.helpers import compose_cfg
from tests.helpers.checks import SECRETS, assert_one_line
from tests.helpers.finetune_api import FakeFinetuneAPI

KEY_VARIABLE = "OPENAI_API_KEY"
TASKS = TaskSetConfig(name="ft", train_tasks=["colors_long"], test_tasks=["animals_long"],
                      properties={"colors_long": ["first_character", "starts_with_vowel"]},
                      n_train_items=6, n_test_items=2, n_finetune_per_property=6)
SETTINGS = OpenAIFinetuneSettings(n_epochs=2, batch_size=4, learning_rate_multiplier=1.6, suffix="introspection",
                                  poll_interval_s=0.0)
FINETUNE = FinetuneConfig(name="openai", api="openai", seed=7, openai=SETTINGS)


class Killed(Exception):
    """The process stopping while it waits between two looks at the job."""


def no_sleep(_seconds: float) -> None:
    return None


def killed_at_first_wait(_seconds: float) -> None:
    raise Killed


@pytest.fixture
def api(monkeypatch):
    monkeypatch.setenv(KEY_VARIABLE, SECRETS[KEY_VARIABLE])
    server = FakeFinetuneAPI()
    yield server
    server.close()


@pytest.fixture
def setting(tmp_path, api):
    """A store, the server model `gpt-test` at the fake API, and the rows the TRL path would train on."""
    store = Store(tmp_path / "store")
    entry = ModelEntry(name="gpt", source="server", path="gpt-test", base_url=api.base_url, api_key_env=KEY_VARIABLE)
    base = ModelRef("gpt", asdict(entry), asdict(resolve_model(entry, store.root)))
    tasks = OmegaConf.structured(TASKS)
    plan = build_items(tasks, store)
    words = ["Blue", "orange", "green", "indigo", "red", "amber"]
    answers = {f"obj|{it.item_id}": Answer(f"obj|{it.item_id}", f"{words[i % len(words)]} {i}")
               for i, it in enumerate(plan.train_items)}
    finetune_cfg = OmegaConf.structured(FINETUNE)
    rows_path, rows_key = prepare_rows(store, plan, base, base, answers, tasks, finetune_cfg)
    return store, base, rows_path, rows_key, finetune_cfg


def finetune(setting, sleep=no_sleep, label="gpt[self]"):
    store, base, rows_path, rows_key, finetune_cfg = setting
    return ModelRef(label, *openai_finetune.finetune_server_model(store, base, rows_path, rows_key, finetune_cfg, label,
                                                                  sleep=sleep))


def test_the_upload_is_the_trl_rows_in_chat_format_and_the_job_has_the_settings(setting, api, caplog):
    store, base, rows_path, rows_key, finetune_cfg = setting
    with caplog.at_level(logging.INFO, logger="introspection.finetune.openai_finetune"):
        # through the pipeline's own entry point: a server model is dispatched to the fine-tuning API
        finetuned = finetune_model(store, base, rows_path, rows_key, finetune_cfg, "gpt[self]")
    assert len(api.uploads) == 1 and api.uploads[0]["fields"] == {"purpose": "fine-tune"}
    uploaded = [json.loads(line) for line in api.uploads[0]["content"].decode().splitlines()]
    trl_rows = read_rows(rows_path)  # the file the TRL trainer reads
    assert len(trl_rows) > 4 and uploaded == [{"messages": r["prompt"] + r["completion"]} for r in trl_rows]
    assert uploaded[0]["messages"][-1]["role"] == "assistant"
    assert api.created == [{"model": "gpt-test", "training_file": "file-1", "seed": 7, "suffix": "introspection",
                            "hyperparameters": {"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 1.6}}]
    # polled to succeeded, with the progress shown; the finetuned model is the server entry with its id
    assert api.jobs["ftjob-1"]["status"] == "succeeded"
    shown = caplog.text
    assert "ftjob-1 is queued" in shown and "Step 3/4: training loss=0.5" in shown and "ftjob-1 is succeeded" in shown
    assert finetuned.label == "gpt[self]" and finetuned.entry["path"] == "ft:gpt-test:org::1abc"
    assert finetuned.adapter_dir is None and finetuned.entry["source"] == "server"
    assert finetuned.resolved["fingerprint"] == server_fingerprint(api.base_url, "ft:gpt-test:org::1abc", None)
    key = openai_finetune.job_key(base, rows_key, finetune_cfg)
    sealed = json.loads((store.get("adapters", key) / openai_finetune.RESULT_FILE).read_text())
    assert (sealed["model_id"], sealed["job_id"]) == ("ft:gpt-test:org::1abc", "ftjob-1")
    assert not checkpoint_folder(store.root, key).exists()  # sealed: no job record left
    # the same finetune again is the sealed model: nothing is asked
    asked = len(api.paths)
    assert finetune(setting).entry["path"] == "ft:gpt-test:org::1abc" and len(api.paths) == asked


def test_a_killed_run_resumes_its_job_by_id_without_a_second_create(setting, api):
    store, base, _rows_path, rows_key, finetune_cfg = setting
    with pytest.raises(Killed):
        finetune(setting, sleep=killed_at_first_wait)
    record = checkpoint_folder(store.root, openai_finetune.job_key(base, rows_key, finetune_cfg)) / "openai_job.json"
    assert json.loads(record.read_text())["job_id"] == "ftjob-1"  # recorded before the first wait
    assert store.get("adapters", openai_finetune.job_key(base, rows_key, finetune_cfg)) is None
    finetuned = finetune(setting)  # the rerun
    assert len(api.created) == 1 and len(api.uploads) == 1
    assert finetuned.entry["path"] == "ft:gpt-test:org::1abc"


def test_a_run_killed_before_recording_its_job_finds_it_by_its_file(setting, api):
    store, base, _rows_path, rows_key, finetune_cfg = setting
    api.lose_create_answers = 1  # the job is made, its answer lost: a blind retry would make a second one
    assert finetune(setting).entry["path"] == "ft:gpt-test:org::1abc"
    assert len(api.created) == 1 and len(api.uploads) == 1
    assert "GET /v1/fine_tuning/jobs" in api.paths


@pytest.mark.parametrize("end, message", [("failed", "training file has bad rows"), ("cancelled", "no message")])
def test_a_failed_or_cancelled_job_ends_in_one_line(setting, api, end, message):
    store, base, _rows_path, rows_key, finetune_cfg = setting
    api.states = ["validating_files", "running", end]
    with pytest.raises(openai_finetune.FinetuneJobError) as info:
        finetune(setting)
    assert_one_line(str(info.value), "gpt[self]", "ftjob-1", end, message, "a rerun starts a new job")
    assert SECRETS[KEY_VARIABLE] not in str(info.value)
    key = openai_finetune.job_key(base, rows_key, finetune_cfg)
    assert store.get("adapters", key) is None
    assert not (checkpoint_folder(store.root, key) / "openai_job.json").exists()
    api.states = ["queued", "succeeded"]
    assert finetune(setting).entry["path"] == "ft:gpt-test:org::2abc" and len(api.created) == 2


def test_a_model_the_api_cannot_finetune_is_one_line(setting, api):
    api.models = ["other"]
    with pytest.raises(openai_finetune.FinetuneJobError) as info:
        finetune(setting)
    assert_one_line(str(info.value), "gpt[self]", "gpt-test", "HTTP 400", "cannot be fine-tuned")


def test_hyperparameters_and_the_job_key():
    assert openai_hyperparameters(asdict(OpenAIFinetuneSettings())) == {
        "n_epochs": "auto", "batch_size": "auto", "learning_rate_multiplier": "auto"}
    for name, bad in (("n_epochs", 0), ("batch_size", 2.5), ("learning_rate_multiplier", "fast")):
        with pytest.raises(ValueError, match=rf"finetune.openai.{name}=.* is not valid; valid: auto"):
            openai_hyperparameters(asdict(OpenAIFinetuneSettings()) | {name: bad})
    base = ModelRef("gpt", {}, {"fingerprint": "x"})
    cfg = OmegaConf.structured(FINETUNE)
    key = openai_finetune.job_key(base, "rows", cfg)
    assert openai_finetune.job_key(base, "rows", OmegaConf.merge(cfg, {"openai": {"suffix": "other"}})) == key
    assert openai_finetune.job_key(base, "rows", OmegaConf.merge(cfg, {"openai": {"n_epochs": 3}})) != key
    assert openai_finetune.job_key(base, "rows", OmegaConf.merge(cfg, {"seed": 8})) != key


# --- the start checks ---------------------------------------------------------------------------------------
def start_cfg(base_url: str, *extra: str):
    return compose_cfg(rewrite_model_sides(["model.m1=gpt4o", f"model.m1.base_url={base_url}", "model.m1.path=gpt-test",
                                            *extra]))


def test_finetune_openai_starts_against_an_endpoint_with_the_finetuning_api(api, caplog):
    cfg = start_cfg(api.base_url, "finetune=openai")
    check_choices(cfg)
    check_server_entry(cfg, "m1")
    with caplog.at_level(logging.INFO, logger="introspection.inference.server_checks"):
        check_server_service(cfg, "m1")
    assert "GET /v1/fine_tuning/jobs" in api.paths
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("finetunes:")]
    assert len(lines) == 1
    assert_one_line(lines[0], "model.m1 (gpt4o) through the OpenAI fine-tuning API", "model.m2 (gemma3_270m) with TRL")


def test_finetune_openai_at_an_endpoint_without_it_is_one_line(api):
    api.get = lambda path: ((200, {"data": [{"id": "gpt-test"}]}) if path == "/v1/models" else
                            (404, {"error": {"message": "Not Found"}}))  # as a vllm serve answers
    message = str(pytest.raises(ValueError, check_server_service, start_cfg(api.base_url, "finetune=openai"), "m1").value)
    assert_one_line(message, "model.m1.base_url", "does not offer the fine-tuning API", "HTTP 404")


def test_a_server_model_finetuned_without_finetune_openai_is_one_line(api):
    message = str(pytest.raises(ValueError, check_server_service, start_cfg(api.base_url), "m1").value)
    assert_one_line(message, "model.m1 (gpt4o) is a server model", "experiment=cross_prediction finetunes it",
                    "set finetune=openai", "experiment=untrained_self")
    assert api.paths == []  # judged before any request


def test_finetune_openai_for_two_open_models_or_bad_settings_is_one_line(api):
    message = str(pytest.raises(ValueError, check_choices, compose_cfg(["finetune=openai"])).value)
    assert_one_line(message, "finetune.api=openai trains server models", "smollm2_135m", "finetune=lora")
    message = str(pytest.raises(ValueError, check_choices,
                                start_cfg(api.base_url, "finetune=openai", "finetune.openai.batch_size=-1")).value)
    assert_one_line(message, "finetune.openai.batch_size=-1 is not valid")
