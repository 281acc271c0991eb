"""Hub models are keyed by the commit sha their revision resolves to, resolved once in resolve_model.

No network: a Hugging Face cache folder is built here in the layout `hf download` leaves
(`models--org--name/refs/<revision>` holding a sha, `snapshots/<sha>/config.json`), with HF_HOME pointed at it.
Online resolution is exercised with HfApi.model_info replaced, as the machine running the tests has no hub.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import pytest

from introspection.core.config import ModelEntry
from introspection.core.errors import ModelResolveError
from introspection.core.types import ChatRequest, Sampling
from introspection.inference.lora import merge_adapter, merge_info, merged_folder_ready
from introspection.stages.answers import AnswerJob, answer_key
from introspection.stages.model_ref import ModelRef
from introspection.weights.fingerprints import hub_fingerprint
from introspection.weights.resolve import resolve_model, weights_record

REPO = "org/tiny-chat"
FIRST, SECOND, TAGGED = "1" * 40, "2" * 40, "3" * 40


def cache_commit(hub: Path, repo: str, commit: str, ref: str | None = "main") -> None:
    """Put a snapshot of `repo` at `commit` into the cache at `hub`, and point `ref` at it."""
    repo_dir = hub / f"models--{repo.replace('/', '--')}"
    (repo_dir / "snapshots" / commit).mkdir(parents=True, exist_ok=True)
    (repo_dir / "snapshots" / commit / "config.json").write_text('{"model_type": "llama"}')
    if ref is not None:
        (repo_dir / "refs").mkdir(exist_ok=True)
        (repo_dir / "refs" / ref).write_text(commit)  # hf download writes the sha without a newline


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face cache under tmp (HF_HOME), offline."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub read HF_HOME when it was imported; point its cache folder at the new one as well.
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    return tmp_path / "hf" / "hub"


def resolved(revision: str | None = None, store: Path | None = None) -> dict:
    entry = ModelEntry(name="tiny", source="hub", path=REPO, revision=revision, chat_template="chatml")
    return asdict(resolve_model(entry, store or Path("/nonexistent-store"), where="model.m1"))


def answers_key(resolved_model: dict) -> str:
    entry = {"name": "tiny", "dtype": "float32"}
    job = AnswerJob("object/test", [ChatRequest("r1", [{"role": "user", "content": "hi"}])], Sampling(max_tokens=4))
    return answer_key(ModelRef("tiny", entry, resolved_model), job, SimpleNamespace(aggregation="mode", backend="hf"))


def test_offline_a_hub_model_is_keyed_by_the_commit_its_revision_points_at(hub):
    cache_commit(hub, REPO, FIRST)
    model = resolved()
    assert model["revision"] == FIRST and model["requested_revision"] is None  # loaders load exactly FIRST
    assert model["fingerprint"] == hub_fingerprint(REPO, FIRST) != hub_fingerprint(REPO, "main")
    assert weights_record(model) == {"path": REPO, "fingerprint": model["fingerprint"],
                                     "requested_revision": "main", "commit": FIRST}


def test_a_repushed_model_gets_new_keys_and_an_unchanged_one_keeps_them(hub):
    cache_commit(hub, REPO, FIRST)
    before = resolved()
    assert resolved() == before and answers_key(resolved()) == answers_key(before)  # same commit, same keys
    cache_commit(hub, REPO, SECOND)  # main re-pushed and downloaded again
    after = resolved()
    assert after["revision"] == SECOND
    assert after["fingerprint"] != before["fingerprint"]
    assert ModelRef("tiny", {}, after).fingerprint != ModelRef("tiny", {}, before).fingerprint
    assert answers_key(after) != answers_key(before)


def test_a_tag_and_a_sha_resolve_to_their_commit(hub):
    cache_commit(hub, REPO, FIRST)
    cache_commit(hub, REPO, TAGGED, ref="v1.0")
    tagged = resolved("v1.0")
    assert tagged["revision"] == TAGGED and tagged["requested_revision"] == "v1.0"
    assert resolved(TAGGED)["fingerprint"] == tagged["fingerprint"]  # the same weights, however they are named
    cache_commit(hub, REPO, FIRST, ref="v1.1")  # a tag on main's commit: main's keys
    assert resolved("v1.1")["fingerprint"] == resolved()["fingerprint"]


def test_offline_a_revision_missing_from_the_cache_is_a_one_line_error(hub):
    with pytest.raises(ModelResolveError) as raised:
        resolved()
    message = str(raised.value)
    assert "\n" not in message and f"'{REPO}'" in message and "model.m1.path" in message
    assert "not in the Hugging Face cache" in message and "HF_HUB_OFFLINE=1" in message
    cache_commit(hub, REPO, FIRST)
    with pytest.raises(ModelResolveError, match="revision 'v2'"):
        resolved("v2")  # main is cached, v2 is not


class FakeInfo:
    def __init__(self, sha):
        self.sha = sha


def test_online_the_hub_names_the_commit(hub, monkeypatch):
    from huggingface_hub import HfApi

    monkeypatch.delenv("HF_HUB_OFFLINE")
    asked = []
    monkeypatch.setattr(HfApi, "model_info",
                        lambda self, repo, revision=None, timeout=None: asked.append((repo, revision)) or FakeInfo(SECOND))
    cache_commit(hub, REPO, FIRST)  # the cache is behind the hub: the hub wins
    assert resolved("main")["revision"] == SECOND and asked == [(REPO, "main")]


def test_online_an_unreachable_hub_falls_back_to_the_cache(hub, monkeypatch, caplog):
    from huggingface_hub import HfApi

    monkeypatch.delenv("HF_HUB_OFFLINE")

    def unreachable(self, repo, revision=None, timeout=None):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(HfApi, "model_info", unreachable)
    with pytest.raises(ModelResolveError) as raised:
        resolved()
    assert "Name or service not known" in str(raised.value) and "not in the Hugging Face cache" in str(raised.value)
    cache_commit(hub, REPO, FIRST)
    with caplog.at_level(logging.WARNING, logger="introspection.weights.fingerprints"):
        assert resolved()["revision"] == FIRST
    assert "using the commit in the local cache" in caplog.text


def test_local_models_have_no_revision(tiny_model_dir, tmp_path):
    entry = ModelEntry(name="tiny", source="local", path=str(tiny_model_dir))
    model = asdict(resolve_model(entry, tmp_path))
    assert model["revision"] is None and model["requested_revision"] is None
    assert weights_record(model) == {"path": str(Path(tiny_model_dir).resolve()), "fingerprint": model["fingerprint"]}


def test_a_merge_records_a_hub_bases_commit_and_nothing_for_other_bases(tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text('{"r": 4}')
    plain = merge_info("/models/base", adapter)
    assert set(plain) == {"base", "adapter_sha256", "dtype"}  # as merged folders recorded it before
    assert merge_info("/models/base", adapter, revision=FIRST) == {**plain, "revision": FIRST}


def test_a_caller_can_tell_a_merge_is_ready_without_starting_a_process(tiny_model_dir, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    adapter = tmp_path / "lora"
    get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"], init_lora_weights=False,
                                     task_type="CAUSAL_LM")).save_pretrained(adapter)
    out = tmp_path / "merged" / "k"
    assert not merged_folder_ready(tiny_model_dir, adapter, out)
    merge_adapter(tiny_model_dir, adapter, out)
    assert merged_folder_ready(tiny_model_dir, adapter, out)
    assert not merged_folder_ready(tiny_model_dir, adapter, out, dtype="bfloat16")  # another merge
    assert not merged_folder_ready(tiny_model_dir, adapter, out, revision=FIRST)  # of another base
    (out / "model.safetensors").write_bytes(b"damaged")
    assert not merged_folder_ready(tiny_model_dir, adapter, out)  # merge_adapter would rebuild it
