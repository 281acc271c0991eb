"""Checks on what a run leaves behind: one-line errors, a consistent store, no secret anywhere."""

from __future__ import annotations

import subprocess
from pathlib import Path

from introspection.core.store import MANIFEST, Store

# Recognisable fake tokens: a run with these in its environment must not write them anywhere.
SECRETS = {
    "WANDB_API_KEY": "fakewandbkey0introspection0tests012345678",  # 40 characters, as a real key
    "HF_TOKEN": "hf_fakeTokenIntrospectionTests0123456789",
    "HUGGING_FACE_HUB_TOKEN": "hf_fakeLegacyTokenIntrospectionTests0123",
    "OPENAI_API_KEY": "sk-fakeOpenaiKeyIntrospectionTests0123456789",  # server models (api_key_env)
}


def assert_one_line(message: str, *parts: str) -> None:
    """The message is one non-empty line holding every part."""
    assert "\n" not in message and message.strip(), message
    for part in parts:
        assert part in message, f"{part!r} not in: {message}"


def assert_store_consistent(store: Path) -> None:
    """Every artifact complete and matching its manifest; no leftovers of an interrupted build."""
    leftovers = list((store / "tmp").iterdir()) if (store / "tmp").is_dir() else []
    assert leftovers == [], leftovers
    # The check of issue 15, run from inside the store (so the store's own path cannot match "*/tmp/*").
    found = subprocess.run(["find", ".", "-name", "*.tmp*", "-o", "-path", "*/tmp/*"], cwd=store,
                           capture_output=True, text=True, check=True).stdout
    assert found == "", found
    for folder in (store / "artifacts").glob("*/*"):
        assert (folder / MANIFEST).is_file() and Store._verify(folder), folder
    assert not list((store / "partial").glob("*/*/*")), "partial batches left after a finished run"


def secrets_found(folders: list[Path], texts: list[str] = ()) -> list[str]:
    """Where any of SECRETS appears: every file under the folders (binary included) and the given texts."""
    found = []
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                found += [f"{name} in {path}" for name, value in SECRETS.items() if value.encode() in data]
    for i, text in enumerate(texts):
        found += [f"{name} in output {i}" for name, value in SECRETS.items() if value in text]
    return found
