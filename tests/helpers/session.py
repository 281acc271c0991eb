"""The test session's own cache folders, and a record of the user's folders that no test may write to.

The product keeps its artifact store and converted embedded models under ~/.cache/introspection
(INTROSPECTION_CACHE), and its libraries cache under ~/.cache, ~/.config and ~/.local/share (Hugging Face,
W&B, vLLM, matplotlib, torch). tests/conftest.py points all of them at folders of the session's own, for
the test process and every process it starts (they inherit the environment).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import ROOT

# A folder for the session's caches that outlives the session (to keep the converted embedded models and
# vLLM's compiled kernels between sessions). Unset: a new temporary folder, removed at the end.
TEST_CACHE_VARIABLE = "INTROSPECTION_TEST_CACHE"

# Variables that name one library's folder directly. Unset during the session, so that each library
# falls back to its default under the session's XDG folders.
LIBRARY_FOLDER_VARIABLES = (
    "HF_HOME", "HF_HUB_CACHE", "HF_ASSETS_CACHE", "HF_DATASETS_CACHE", "HF_XET_CACHE", "TRANSFORMERS_CACHE",
    "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR",
    "VLLM_CACHE_ROOT", "VLLM_CONFIG_ROOT", "MPLCONFIGDIR", "TORCH_HOME", "TORCHINDUCTOR_CACHE_DIR",
)

# Where a run started from the repository writes when no test names a folder (Hydra's default run and
# sweep folders, W&B's default folder).
REPO_OUTPUT_FOLDERS = (ROOT / "outputs", ROOT / "multirun", ROOT / "wandb")


@dataclass
class SessionFolders:
    base: Path  # every cache of the session lies under it
    remove: bool  # a temporary folder made for this session
    watched: list[Path]  # the user's folders and the repository's output folders
    before: dict[str, int]  # their footprint when the session started


def session_variables(base: Path) -> dict[str, str]:
    """The variables that place every cache under `base` (each library's own folder follows from them).

    HOME too: some tools ignore the XDG variables (W&B's system monitor logs to ~/.cache/wandb/logs,
    Triton caches under ~/.triton)."""
    cache = base / "cache"
    return {"HOME": str(base / "home"), "XDG_CACHE_HOME": str(cache), "XDG_CONFIG_HOME": str(base / "config"),
            "XDG_DATA_HOME": str(base / "data"), "INTROSPECTION_CACHE": str(cache / "introspection")}


def use_session_folders(environ: dict, base: Path) -> None:
    for name in LIBRARY_FOLDER_VARIABLES:
        environ.pop(name, None)
    for name, folder in session_variables(base).items():
        Path(folder).mkdir(parents=True, exist_ok=True)
        environ[name] = folder


def user_folders(environ: dict, home: Path) -> list[Path]:
    """Where the product and its libraries write for this user outside a test session."""
    cache = Path(environ.get("XDG_CACHE_HOME") or home / ".cache")
    config = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    data = Path(environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    folders = [Path(environ.get("INTROSPECTION_CACHE") or cache / "introspection"),
               cache / "huggingface", cache / "wandb", cache / "vllm", cache / "torch", cache / "matplotlib",
               config / "wandb", config / "vllm", config / "matplotlib", data / "wandb",
               home / ".cache" / "wandb", home / ".triton", home / ".nv"]
    folders += [Path(environ[name]) for name in LIBRARY_FOLDER_VARIABLES if environ.get(name)]
    return [folder.expanduser().absolute() for folder in folders]


def footprint(folders: list[Path], depth: int = 2) -> dict[str, int]:
    """mtime (ns) of each existing folder and of its subfolders `depth` levels down.

    A folder's mtime changes when an entry is added, removed or replaced in it (the store and the caches
    write by renaming into place), so an unchanged footprint means nothing was written that deep."""
    found: dict[str, int] = {}

    def visit(folder: Path, level: int) -> None:
        try:
            found[str(folder)] = folder.stat().st_mtime_ns
            if level < depth:
                for entry in os.scandir(folder):
                    if entry.is_dir(follow_symlinks=False):
                        visit(Path(entry.path), level + 1)
        except OSError:  # absent, or removed while we looked
            return

    for folder in folders:
        visit(folder, 0)
    return found


def changed_folders(before: dict[str, int], after: dict[str, int]) -> list[str]:
    return sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))
