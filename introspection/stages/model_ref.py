"""A model as the stages see it: base weights plus, optionally, a finetuned adapter, and the fingerprint every
key that depends on the model starts from."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from introspection.core.store import digest


@dataclass
class ModelRef:
    """A model as the pipeline sees it: base weights plus, optionally, a finetuned adapter."""

    label: str  # e.g. "smollm2_135m", "smollm2_135m[self]", "gemma3_270m[cross:smollm2_135m]"
    entry: dict  # the ModelEntry config
    resolved: dict  # introspection.weights.resolve.ResolvedModel as a dict
    adapter_dir: str | None = None
    adapter_key: str | None = None

    @property
    def fingerprint(self) -> str:
        """Weights (resolved fingerprint), adapter, and the entry settings that change what the model sees or
        computes in inference and training alike. Each setting enters only when it is not the value every key
        was computed with before it was hashed, so stored artifacts (the demo's) keep their keys."""
        content = {"base": self.resolved["fingerprint"], "adapter": self.adapter_key}
        template = self.resolved.get("chat_template")
        # A template that is the model folder's own is already in the folder's fingerprint (the demo's Gemma).
        if template is not None and template != _own_template(self.resolved.get("path")):
            content["chat_template"] = digest(template)
        if self.resolved.get("trust_remote_code"):  # the repository's own modelling code instead of transformers'
            content["trust_remote_code"] = True
        return digest(content)

    def with_adapter(self, label: str, adapter_dir: Path, adapter_key: str) -> ModelRef:
        return ModelRef(label, self.entry, self.resolved, str(adapter_dir), adapter_key)


def _own_template(path: str | None) -> str | None:
    """The chat template saved in a local model folder (chat_template.jinja or tokenizer_config.json), if any."""
    folder = Path(path) if path else None
    if folder is None or not folder.is_dir():
        return None  # a hub id: its template is not known without a download, so an explicit one is hashed
    try:
        if (folder / "chat_template.jinja").is_file():
            return (folder / "chat_template.jinja").read_text(encoding="utf-8")
        template = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8")).get("chat_template")
    except (OSError, ValueError, AttributeError):
        return None
    return template if isinstance(template, str) else None

