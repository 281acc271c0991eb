"""Model resolution: sources, chat templates, fingerprints, tokenizers; the embedded models (integration)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from introspection.core.config import ModelEntry, default_cache_dir
from introspection.core.errors import ModelResolveError
from introspection.weights.chat_templates import CHATML_TEMPLATE, GEMMA_TEMPLATE
from introspection.weights.embedded import EMBEDDED
from introspection.weights.fingerprints import _sidecar_check, folder_fingerprint, hub_fingerprint
from introspection.weights.resolve import load_tokenizer, resolve_model
from tests.tiny_model import build_tiny_tokenizer

CONV = [{"role": "system", "content": ""}, {"role": "user", "content": "What is 2+2?"}]


def _strip_template(folder: Path) -> None:
    """Remove every trace of a chat template from a saved tokenizer folder."""
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    (folder / "chat_template.json").unlink(missing_ok=True)
    cfg_path = folder / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.pop("chat_template", None)
    cfg_path.write_text(json.dumps(cfg))


@pytest.fixture()
def gemma_like_tokenizer_dir(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """A model folder whose tokenizer has Gemma's special tokens and BOS, and no chat template (like the GGUF).
    The tiny model's config and weights make it a model folder; these tests only use the tokenizer."""
    tok = build_tiny_tokenizer()
    tok.add_special_tokens({"bos_token": "<bos>", "additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"]})
    tok.chat_template = None
    folder = tmp_path / "gemma_like"
    tok.save_pretrained(folder)
    _strip_template(folder)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model_dir / name, folder / name)
    return folder


def _local(path: Path | str, template: str | None = None) -> ModelEntry:
    return ModelEntry(name="m", source="local", path=str(path), chat_template=template)


# ---------------------------------------------------------------------------------------------- templates


def test_no_template_and_none_configured_is_a_one_line_error(gemma_like_tokenizer_dir, tmp_path):
    with pytest.raises(ModelResolveError) as e:
        resolve_model(_local(gemma_like_tokenizer_dir), tmp_path / "cache", where="model.m2")
    msg = str(e.value)
    assert "\n" not in msg and "model.m2.chat_template=gemma|chatml|PATH" in msg


def test_gemma_template_renders_the_exact_turn_format(gemma_like_tokenizer_dir, tmp_path):
    resolved = resolve_model(_local(gemma_like_tokenizer_dir, "gemma"), tmp_path / "cache")
    assert resolved.chat_template == GEMMA_TEMPLATE
    tok = load_tokenizer(resolved)

    prompt = tok.apply_chat_template(CONV, tokenize=False, add_generation_prompt=True)
    assert prompt == "<bos><start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n"

    # A training row renders as the inference prompt followed by the answer and the turn end.
    full = tok.apply_chat_template(CONV + [{"role": "assistant", "content": "4"}], tokenize=False)
    assert full == prompt + "4<end_of_turn>\n"

    # A non-empty system message is folded into the first user turn, as Gemma's own template does.
    with_system = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert (
        tok.apply_chat_template(with_system, tokenize=False, add_generation_prompt=True)
        == "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n"
    )
    # No system message at all renders like an empty one.
    assert tok.apply_chat_template(CONV[1:], tokenize=False, add_generation_prompt=True) == prompt


def test_chatml_and_file_templates(gemma_like_tokenizer_dir, tmp_path):
    resolved = resolve_model(_local(gemma_like_tokenizer_dir, "chatml"), tmp_path / "cache")
    assert resolved.chat_template == CHATML_TEMPLATE
    rendered = load_tokenizer(resolved).apply_chat_template(CONV, tokenize=False, add_generation_prompt=True)
    assert (
        rendered == "<|im_start|>system\n<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    )

    jinja = tmp_path / "mine.jinja"
    jinja.write_text("{% for m in messages %}[{{ m['content'] }}]{% endfor %}")
    resolved = resolve_model(_local(gemma_like_tokenizer_dir, str(jinja)), tmp_path / "cache")
    assert load_tokenizer(resolved).apply_chat_template(CONV, tokenize=False) == "[][What is 2+2?]"


def test_bad_template_value_names_it(gemma_like_tokenizer_dir, tmp_path):
    with pytest.raises(ModelResolveError, match=r"'llama9'.*model.m1.chat_template.*gemma, chatml"):
        resolve_model(_local(gemma_like_tokenizer_dir, "llama9"), tmp_path / "cache", where="model.m1")


def test_tokenizer_own_template_is_kept(tiny_model_dir, tmp_path):
    resolved = resolve_model(_local(tiny_model_dir), tmp_path / "cache")
    assert resolved.chat_template is None
    tok = load_tokenizer(resolved)
    assert tok.apply_chat_template(CONV, tokenize=False, add_generation_prompt=True).startswith("<|im_start|>system")


# ---------------------------------------------------------------------------------------------- sources


def test_missing_local_path_is_a_one_line_error(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ModelResolveError) as e:
        resolve_model(_local(missing), tmp_path / "cache", where="model.m1")
    assert str(missing) in str(e.value) and "model.m1.path" in str(e.value) and "\n" not in str(e.value)


def test_unknown_source_and_embedded_key(tmp_path):
    with pytest.raises(ModelResolveError, match=r"'ftp'.*hub, local, embedded"):
        resolve_model(ModelEntry(name="m", source="ftp", path="x"), tmp_path)
    with pytest.raises(ModelResolveError, match=r"'tinyllama'.*gemma3_270m, smollm2_135m_instruct"):
        resolve_model(ModelEntry(name="m", source="embedded", path="tinyllama"), tmp_path)


def test_hub_offline_and_uncached_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    entry = ModelEntry(name="m", source="hub", path="introspection-tests/not-a-real-model")
    with pytest.raises(ModelResolveError, match="not in the Hugging Face cache"):
        resolve_model(entry, tmp_path, where="model.m1")


def test_hub_fingerprint_depends_on_id_and_revision():
    a = hub_fingerprint("org/model", None)
    assert a == hub_fingerprint("org/model", "main") and len(a) == 64
    assert a != hub_fingerprint("org/model", "abc123") and a != hub_fingerprint("org/other", None)


def test_folder_fingerprint_is_cached_and_tracks_changes(tiny_model_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    cache = tmp_path / "cache"
    first = folder_fingerprint(folder, cache)
    assert len(first) == 64 and folder_fingerprint(folder, cache) == first

    # Unchanged files are not re-read: the sidecar answers (we plant a sentinel, with a valid check, to prove it).
    (sidecar,) = (cache / "fingerprints").glob("*.json")
    data = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**data, "sha256": "sentinel",
                                   "check": _sidecar_check(data["folder"], data["stats"], "sentinel")}))
    assert folder_fingerprint(folder, cache) == "sentinel"

    # A changed file changes the stats, so the hash is recomputed.
    (folder / "config.json").write_text((folder / "config.json").read_text() + " ")
    changed = folder_fingerprint(folder, cache)
    assert changed not in ("sentinel", first)
    # Same content in another folder: same fingerprint (content, not location).
    assert folder_fingerprint(tiny_model_dir, cache) == first


def test_pad_token_distinct_from_eos(tiny_model_dir, tmp_path):
    folder = tmp_path / "pad_is_eos"
    shutil.copytree(tiny_model_dir, folder)
    cfg_path = folder / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["pad_token"] = cfg["eos_token"]
    cfg_path.write_text(json.dumps(cfg))
    tok = load_tokenizer(resolve_model(_local(folder), tmp_path / "cache"))
    assert tok.pad_token_id is not None and tok.pad_token_id != tok.eos_token_id
    assert tok.pad_token == "<pad>"  # an existing token is reused; the vocabulary does not grow


# ---------------------------------------------------------------------------------------------- embedded


@pytest.mark.integration
def test_embedded_models_resolve_once_then_fast(embedded_models):
    """Both embedded models materialise (once per cache) and resolve in well under a second afterwards."""
    cache = default_cache_dir()
    for key in EMBEDDED:
        entry = ModelEntry(name=key, source="embedded", path=key)
        first = resolve_model(entry, cache)  # converted by now (tests/conftest.py embedded_models), else converts
        t0 = time.perf_counter()
        again = resolve_model(entry, cache)
        assert time.perf_counter() - t0 < 1.0
        assert again == first and len(first.fingerprint) == 64
        folder = Path(first.path)
        assert (folder / "config.json").is_file() and list(folder.glob("*.safetensors"))
        # the start checks judge a LoRA rank by the recorded size before converting: it is the model's own
        assert json.loads((folder / "config.json").read_text())["hidden_size"] == EMBEDDED[key].hidden_size
        # no path of this environment in the folder: the same file converts to the same fingerprint anywhere
        assert "/" not in json.loads((folder / "embedded.json").read_text())["source_gguf"]
        tok = load_tokenizer(first)
        assert tok.pad_token_id != tok.eos_token_id
        prompt = tok.apply_chat_template(CONV, tokenize=False, add_generation_prompt=True)
        if key == "gemma3_270m":
            assert prompt == "<bos><start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n"
            ids = tok(prompt, add_special_tokens=False)["input_ids"]
            assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
            gen = json.loads((folder / "generation_config.json").read_text())
            assert tok.convert_tokens_to_ids("<end_of_turn>") in gen["eos_token_id"]
        else:
            assert prompt.endswith("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n")
