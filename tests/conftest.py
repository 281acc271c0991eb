"""Shared fixtures. Markers: `integration` tests load the embedded real models (minutes on CPU).

Tests that compare against the paper's released data read it only through INTROSPECTION_PAPER_DATA, a
folder holding the authors' source datasets and a sample of their released prompts (its layout:
docs/testing.md). Unset, those tests skip and say so; CI sets it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.tiny_model import build_tiny_model

PAPER_DATA_VARIABLE = "INTROSPECTION_PAPER_DATA"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A random tiny Llama (byte tokenizer, ChatML template) saved once per test session."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    folder = os.environ.get(PAPER_DATA_VARIABLE)
    if not folder:
        pytest.skip(reason=f"{PAPER_DATA_VARIABLE} is not set: no folder of the paper's released data to compare against")
    path = Path(folder).resolve()
    if not path.is_dir():
        pytest.fail(f"{PAPER_DATA_VARIABLE}={folder} is not a folder")
    return path
