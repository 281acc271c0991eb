"""Which tokens of a training row carry the loss, as TRL's SFTTrainer prepares it (tests/test_finetune.py
checks the loss falls on the answer and its end-of-turn token alone)."""

from __future__ import annotations

import tempfile
from types import SimpleNamespace

from introspection.finetune.sft_settings import check_pad_token, check_rows
from introspection.finetune.trainer import progress_bars, trainer_dataset


def label_mask_report(tokenizer, row: dict, max_length: int) -> dict:
    """Tokenise one row exactly as SFTTrainer does and report which tokens carry the loss.

    Runs TRL's own `SFTTrainer._prepare_dataset` (chat template, prompt/completion split, label
    building, truncation) on a one-row dataset; only the trainer object around it is a stand-in,
    because preparing data needs no model. Returns {"tokens", "trained", "trained_text",
    "input_ids", "labels"}.
    """
    from trl import SFTConfig, SFTTrainer

    check_pad_token(tokenizer)
    check_rows([row])
    with tempfile.TemporaryDirectory() as scratch, progress_bars(False):
        args = SFTConfig(output_dir=scratch, max_length=max_length, completion_only_loss=True, bf16=False,
                         use_cpu=True, report_to="none", packing=False)
        # The attributes _prepare_dataset reads from the trainer, set as SFTTrainer.__init__ sets them
        # for conversational prompt-completion rows with completion_only_loss=True.
        stand_in = SimpleNamespace(_tokenizer=tokenizer, completion_only_loss=True, chat_template=None)
        prepared = SFTTrainer._prepare_dataset(stand_in, trainer_dataset([row]), tokenizer, args, False, None,
                                               "label_mask_report")
    if len(prepared) == 0:
        raise ValueError(f"the prompt alone fills max_length={max_length}: no answer token would be trained")
    input_ids = list(prepared[0]["input_ids"])
    labels = list(prepared[0]["labels"])
    trained = [label != -100 for label in labels]
    return {
        "tokens": [tokenizer.decode([token_id]) for token_id in input_ids],
        "trained": trained,
        "trained_text": tokenizer.decode([t for t, keep in zip(input_ids, trained, strict=True) if keep]),
        "input_ids": input_ids,
        "labels": labels,
    }
