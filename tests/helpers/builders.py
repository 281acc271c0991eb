"""A builder killed mid-build, for tests/test_caches.py.

`killed_builder` runs in a process of its own (`python -c "from tests.helpers.builders import ..."`),
so that the test can SIGKILL it while it builds, as an OOM kill would.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path


def killed_builder(kind: str, store: str, ready: str, model_dir: str, adapter_dir: str) -> None:
    """Start one build and signal `ready` from inside it, then hang."""
    import introspection.core.store as store_module
    from introspection.core.store import Store
    from introspection.inference.lora import merge_adapter
    from introspection.weights import embedded as embedded_models
    from introspection.weights.embedded import EMBEDDED, EmbeddedModel, materialize_embedded

    def hang(*_args, **_kwargs):
        Path(ready).write_text("building")
        time.sleep(600)

    if kind == "store":
        def build(folder: Path) -> None:
            (folder / "half.txt").write_text("half")
            hang()
        Store(store).get_or_build("thing", "k" * 64, build)
    elif kind == "merge":
        store_module.seal = hang  # the merged weights are written; killed before they are sealed
        merge_adapter(model_dir, adapter_dir, Path(store) / "merged" / "k")
    elif kind == "convert":
        store_module.seal = hang
        EMBEDDED["tiny"] = EmbeddedModel("tiny", "the tiny test model", lambda d: d, None)
        embedded_models._convert_in_worker = lambda key, out, cache: shutil.copytree(model_dir, out, dirs_exist_ok=True)
        materialize_embedded("tiny", Path(store))
    elif kind == "finetune":  # killed after the first optimizer step by the fault hook
        from transformers import AutoTokenizer

        from introspection.core.config import FinetuneConfig, LoraSettings
        from introspection.finetune.data import sft_rows
        from introspection.finetune.training import finetune

        rows = sft_rows([{"prompt": [{"role": "user", "content": f"word {i}?"}], "completion": "yes",
                          "item_id": str(i), "task": "t", "property": "p"} for i in range(8)], max_examples=None)
        cfg = FinetuneConfig(name="t", lora=LoraSettings(r=2, alpha=4), epochs=1, batch_size=2)
        Store(store).get_or_build("adapters", "a" * 64, lambda folder: finetune(
            model_dir, AutoTokenizer.from_pretrained(model_dir), rows, cfg, folder / "adapter", progress=False))
