"""Fingerprints of model weights: a local folder by the sha256 of its files (cached in a self-checking
sidecar), a hub model by the commit sha its revision resolves to, a server model by its endpoint and id."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from introspection.core.errors import ModelResolveError

log = logging.getLogger(__name__)

def file_stats(folder: Path) -> dict[str, list[int]]:
    stats: dict[str, list[int]] = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            st = p.stat()
            stats[rel.as_posix()] = [st.st_size, st.st_mtime_ns]
    return stats


def sidecar_path(folder: Path, cache_dir: Path) -> Path:
    return Path(cache_dir) / "fingerprints" / (hashlib.sha256(str(folder).encode()).hexdigest()[:24] + ".json")


def _sidecar_check(folder: str, stats: dict, fingerprint: str) -> str:
    """A checksum of the sidecar's own content: a sidecar edited or damaged on disk is recomputed."""
    return hashlib.sha256(json.dumps([folder, stats, fingerprint], sort_keys=True).encode()).hexdigest()


def content_digest(folder: Path, stats: dict[str, list[int]]) -> str:
    from tqdm.auto import tqdm

    total = sum(size for size, _ in stats.values())
    digest = hashlib.sha256()
    if total > 1 << 30:  # minutes for a large model: said in the log too, where no bar is drawn
        log.info("hashing %s (%.1f GB) for its fingerprint, once (a sidecar keeps it)", folder, total / (1 << 30))
    # A bar on a terminal only (disable=None): two models hashed at once in a log file leave its escape codes
    # mid-line, before whatever is written next (the one-line error of a run that stops included).
    with tqdm(total=total, unit="B", unit_scale=True, desc=f"hashing {folder.name}", leave=False, disable=None) as bar:
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
    from introspection.core.store import write_json_atomic

    folder = Path(folder).resolve()
    stats = file_stats(folder)
    sidecar = sidecar_path(folder, cache_dir)
    if sidecar.is_file():
        try:
            cached = json.loads(sidecar.read_text())
            if (cached.get("folder") == str(folder) and cached.get("stats") == stats
                    and cached.get("check") == _sidecar_check(str(folder), stats, str(cached["sha256"]))):
                return str(cached["sha256"])
        except (json.JSONDecodeError, KeyError, AttributeError):
            pass  # a corrupt sidecar is recomputed below

    fingerprint = content_digest(folder, stats)
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
