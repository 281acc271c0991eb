"""Chat templates and pad tokens: the named templates a model entry may pick (model.mX.chat_template), where
a model's own template lives, and a pad token distinct from EOS for training and batched inference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from introspection.core.config import ModelEntry
from introspection.core.errors import ModelResolveError

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

# Candidates for a pad token that is not EOS, tried in order before a new "<pad>" is added.
_PAD_CANDIDATES = ("<pad>", "<|pad|>", "<|finetune_right_pad_id|>", "<|endoftext|>", "<unk>")


def configured_template(entry: ModelEntry, where: str) -> str | None:
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


def folder_has_template(folder: Path) -> bool:
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    cfg = folder / "tokenizer_config.json"
    if cfg.is_file():
        try:
            return bool(json.loads(cfg.read_text()).get("chat_template"))
        except json.JSONDecodeError:
            return False
    return False


def hub_has_template(repo_id: str, revision: str | None, trust_remote_code: bool) -> bool:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(repo_id, revision=revision, trust_remote_code=trust_remote_code)
    return bool(getattr(tok, "chat_template", None))


def ensure_pad_token(tokenizer: Any) -> None:
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

