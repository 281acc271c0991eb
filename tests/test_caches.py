"""Caches outside the store's artifacts are verified before use, and no builder leaves a temporary folder.

Merged LoRA weights (`<store>/merged/<key>`), converted embedded models (`<store>/models/<key>`) and
fingerprint sidecars (`<store>/fingerprints/`) are read on every run. A byte flipped in any of them makes
the next use rebuild it, never use it. Each builder (a store artifact, a merge, a conversion, a finetune)
is killed with SIGKILL mid-build in a process of its own; the next run sweeps what it left, so that
`find STORE -name "*.tmp*" -o -path "*/tmp/*"` finds nothing.

The embedded-model tests register a fake embedded model whose "conversion" copies the tiny test model:
the real GGUF conversion takes a minute per model, and the cache logic around it is the same.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from introspection.core.store import SEALED_MANIFEST, Store, file_sha256, verify_store
from introspection.inference.lora import merge_adapter
from introspection.weights import embedded as embedded_models
from introspection.weights.embedded import EMBEDDED, EmbeddedModel, materialize_embedded
from introspection.weights.fingerprints import folder_fingerprint

ROOT = Path(__file__).resolve().parents[1]


def flip_last_byte(path: Path, keep_mtime: bool = False) -> None:
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # same size: only a checksum can tell
    path.write_bytes(bytes(data))
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def leftovers(store: Path) -> list[str]:
    """The issue's check, run as written (from inside the store, so the store's own path cannot match)."""
    out = subprocess.run(["find", ".", "-name", "*.tmp*", "-o", "-path", "*/tmp/*"], cwd=store,
                         capture_output=True, text=True, check=True).stdout
    return out.split()


@pytest.fixture(scope="module")
def adapter(tiny_model_dir, tmp_path_factory) -> Path:
    """A LoRA adapter of the tiny model with random non-zero weights (so merging changes the weights)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False,
                        task_type="CAUSAL_LM")
    out = tmp_path_factory.mktemp("adapter") / "lora"
    get_peft_model(model, config).save_pretrained(out)
    return out


# --- merged weights ------------------------------------------------------------------------------

def test_merged_weights_with_a_flipped_byte_are_merged_again(tiny_model_dir, adapter, tmp_path):
    out = tmp_path / "store" / "merged" / "k"
    merge_adapter(tiny_model_dir, adapter, out)
    weights = out / "model.safetensors"
    good = file_sha256(weights)
    stamp = weights.stat().st_mtime_ns
    assert merge_adapter(tiny_model_dir, adapter, out) == out
    assert weights.stat().st_mtime_ns == stamp  # intact: reused, not rewritten

    flip_last_byte(weights)
    assert file_sha256(weights) != good
    merge_adapter(tiny_model_dir, adapter, out)
    assert file_sha256(weights) == good  # merged again from base and adapter, not served damaged

    # A damaged file that kept its size and mtime passes the quick check on use; `verify` re-hashes
    # everything, removes the folder, and the next use merges again.
    flip_last_byte(weights, keep_mtime=True)
    assert verify_store(tmp_path / "store") == [str(out)]
    assert not out.exists()
    merge_adapter(tiny_model_dir, adapter, out)
    assert file_sha256(weights) == good and verify_store(tmp_path / "store") == []


def test_a_merge_from_before_sealing_or_with_an_extra_file_is_rebuilt(tiny_model_dir, adapter, tmp_path):
    out = tmp_path / "merged" / "k"
    merge_adapter(tiny_model_dir, adapter, out)
    (out / SEALED_MANIFEST).unlink()  # as a folder merged by an older version
    merge_adapter(tiny_model_dir, adapter, out)
    assert (out / SEALED_MANIFEST).is_file()
    (out / "extra.safetensors").write_bytes(b"not part of the merge")
    merge_adapter(tiny_model_dir, adapter, out)
    assert not (out / "extra.safetensors").exists()


# --- converted embedded models -------------------------------------------------------------------

@pytest.fixture
def fake_embedded(tiny_model_dir, monkeypatch):
    """An embedded model "tiny" whose conversion copies the tiny model; returns the list of conversions."""
    conversions: list[Path] = []

    def convert(key: str, out_dir: Path, cache_dir: Path) -> None:
        conversions.append(out_dir)
        for p in Path(tiny_model_dir).iterdir():
            shutil.copy(p, out_dir / p.name)
        (out_dir / "embedded.json").write_text(json.dumps({"key": key}))

    monkeypatch.setitem(EMBEDDED, "tiny", EmbeddedModel("tiny", "the tiny test model", lambda d: d, None))
    monkeypatch.setattr(embedded_models, "_convert_in_worker", convert)
    return conversions


def test_converted_model_with_a_flipped_byte_is_converted_again(fake_embedded, tmp_path):
    store = tmp_path / "store"
    folder = materialize_embedded("tiny", store)
    fingerprint = folder_fingerprint(folder, store)
    weights = folder / "model.safetensors"
    good = file_sha256(weights)
    assert materialize_embedded("tiny", store) == folder and len(fake_embedded) == 1  # intact: reused

    flip_last_byte(weights)
    assert materialize_embedded("tiny", store) == folder
    assert len(fake_embedded) == 2 and file_sha256(weights) == good
    # The same bytes again: the fingerprint (and so every answer key) is unchanged; the seal is not part of it.
    assert folder_fingerprint(folder, store) == fingerprint
    (folder / "embedded.json").write_text("{}")  # any file, not only weights
    materialize_embedded("tiny", store)
    assert len(fake_embedded) == 3 and json.loads((folder / "embedded.json").read_text()) == {"key": "tiny"}
    assert leftovers(store) == []


def test_a_model_converted_before_sealing_is_kept_when_its_fingerprint_still_matches(fake_embedded, tmp_path):
    store = tmp_path / "store"
    folder = materialize_embedded("tiny", store)
    fingerprint = folder_fingerprint(folder, store)
    (folder / SEALED_MANIFEST).unlink()  # as converted by an older version
    assert materialize_embedded("tiny", store) == folder
    assert len(fake_embedded) == 1 and (folder / SEALED_MANIFEST).is_file()  # adopted, not converted
    assert folder_fingerprint(folder, store) == fingerprint

    # An unsealed folder whose content is no longer what was fingerprinted is converted again.
    (folder / SEALED_MANIFEST).unlink()
    flip_last_byte(folder / "model.safetensors")
    materialize_embedded("tiny", store)
    assert len(fake_embedded) == 2 and folder_fingerprint(folder, store) == fingerprint


# --- fingerprint sidecars ------------------------------------------------------------------------

def test_fingerprint_sidecar_with_a_flipped_byte_is_recomputed(tiny_model_dir, tmp_path):
    cache = tmp_path / "store"
    good = folder_fingerprint(tiny_model_dir, cache)
    (sidecar,) = (cache / "fingerprints").glob("*.json")
    data = json.loads(sidecar.read_text())
    # A flipped hex digit keeps the JSON valid and the folder's stats matching: only the check can tell.
    data["sha256"] = ("0" if good[0] != "0" else "1") + good[1:]
    sidecar.write_text(json.dumps(data))
    assert folder_fingerprint(tiny_model_dir, cache) == good
    sidecar.write_bytes(sidecar.read_bytes()[:-7])  # truncated: no longer JSON
    assert folder_fingerprint(tiny_model_dir, cache) == good
    assert json.loads(sidecar.read_text())["sha256"] == good  # rewritten whole


# --- builders killed with SIGKILL ----------------------------------------------------------------

@pytest.mark.parametrize("kind", ["store", "merge", "convert", "finetune"])
def test_a_killed_builder_leaves_nothing_after_the_next_run(kind, tiny_model_dir, adapter, fake_embedded, tmp_path):
    store = tmp_path / "store"
    ready = tmp_path / "ready"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if kind == "finetune":
        env["INTROSPECTION_FAULT"] = "finetune-step:1"
    code = (f"from tests.helpers.builders import killed_builder; killed_builder({kind!r}, {str(store)!r}, {str(ready)!r}, "
            f"{str(tiny_model_dir)!r}, {str(adapter)!r})")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not ready.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    output = proc.communicate()[0]
    assert proc.returncode == -signal.SIGKILL, output[-3000:]
    assert leftovers(store) != [], "the killed builder left no temporary folder: nothing was tested"

    # The next run: it opens the store and builds what it needs (here: the killed build, or another one).
    opened = Store(store)
    if kind == "merge":
        merge_adapter(tiny_model_dir, adapter, store / "merged" / "k")
    elif kind == "convert":
        materialize_embedded("tiny", store)
    else:
        opened.get_or_build("other", "b" * 64, lambda folder: (folder / "x.txt").write_text("x") and None)
    assert leftovers(store) == []
    assert verify_store(store) == []


def test_finetune_outside_a_store_removes_a_killed_runs_folders(tiny_model_dir, tmp_path):
    """A finetune killed while moving its result into place leaves `.adapter.partial` and `.adapter.old`
    (and no adapter); the next finetune into the same folder removes both."""
    from transformers import AutoTokenizer

    from introspection.core.config import FinetuneConfig, LoraSettings
    from introspection.finetune.data import sft_rows
    from introspection.finetune.training import finetune

    for name in (".adapter.partial", ".adapter.old"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "adapter_model.safetensors").write_bytes(b"killed")
    rows = sft_rows([{"prompt": [{"role": "user", "content": f"word {i}?"}], "completion": "yes",
                      "item_id": str(i), "task": "t", "property": "p"} for i in range(4)], max_examples=None)
    cfg = FinetuneConfig(name="t", lora=LoraSettings(r=2, alpha=4), epochs=1, batch_size=2)
    finetune(str(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir), rows, cfg, tmp_path / "adapter",
             progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]
