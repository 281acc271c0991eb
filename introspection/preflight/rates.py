"""The pre-flight plan's rate model: a model's size class, its per-GPU rates, expected answer lengths, and the
seconds a step takes at those rates (introspection/preflight/plan.py counts the work; this module prices it).

    answering:   engine starts x engine_start_s + prompt tokens / (prompt_tokens_per_s x GPUs)
                 + generated tokens / (generated_tokens_per_s x GPUs)
    finetuning:  finetunes x finetune_start_s + tokens x epochs / (train_tokens_per_s x GPUs)

The rates and where each comes from are in conf/preflight/default.yaml and docs/measurements.md §7. Decoding is
priced at each answer's EXPECTED length (preflight.answer_tokens, capped by inference.max_tokens*), not at the
cap: the paper's answers are a letter, a word or a short phrase (docs/method.md §1.2), and a model rarely runs to
the cap. The cap stays in the plan as the upper bound.
"""

from __future__ import annotations

import json
import math
import re
import struct
from pathlib import Path

RATE_KEYS = ("prompt_tokens_per_s", "generated_tokens_per_s", "train_tokens_per_s", "engine_start_s",
             "finetune_start_s")
HYPOTHETICAL = "hypothetical"  # preflight.answer_tokens key: a hypothetical answer (one character, word, true/false)
OBJECT_DEFAULT = "object"  # preflight.answer_tokens key: an object-level answer of a task not listed
END_OF_TURN = 1  # the end-of-turn token every generated answer ends with (the run's profile counts it too)

_SIZE_IN_NAME = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)([bm])(?![a-z0-9])", re.IGNORECASE)


# --- model size -----------------------------------------------------------------------------------
def model_params_b(entry: dict, slot: str) -> tuple[float, str]:
    """Billions of parameters of a model, and how that was found."""
    name = entry["name"]
    if entry.get("params_b"):
        return float(entry["params_b"]), f"model.{slot}.params_b"
    for text in (name, Path(str(entry["path"])).name):
        match = _SIZE_IN_NAME.search(text)
        if match:
            value = float(match.group(1))
            return (value / 1000 if match.group(2).lower() == "m" else value), f"the name '{text}'"
    if entry["source"] == "local":
        count = _safetensors_parameters(Path(str(entry["path"])).expanduser())
        if count:
            return count / 1e9, "its safetensors headers"
    raise ValueError(f"cannot tell how many parameters model '{name}' (model.{slot}) has: its name and path do not "
                     f"say; set model.{slot}.params_b=<billions>")


def _safetensors_parameters(folder: Path) -> int:
    """Parameters in a folder's safetensors files, read from their headers (no tensor data)."""
    total = 0
    for path in sorted(folder.glob("*.safetensors")):
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(length))
        total += sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")
    return total


# --- rates ----------------------------------------------------------------------------------------
def rates_for(params_b: float, preflight_cfg) -> tuple[str, dict[str, float]]:
    """The size class of a model of params_b billions and that class's figures for preflight.gpu."""
    classes = sorted(preflight_cfg.size_classes.items(), key=lambda kv: kv[1])
    if not classes:
        raise ValueError("preflight.size_classes is empty; give each size class its upper bound in billions")
    size = next((name for name, bound in classes if params_b <= bound), None)
    if size is None:
        raise ValueError(f"a model of {params_b:g}B parameters is above every preflight.size_classes bound "
                         f"({', '.join(f'{n}: {b:g}' for n, b in classes)}); add a larger class")
    gpu = preflight_cfg.gpu
    if gpu not in preflight_cfg.throughput:
        raise ValueError(f"preflight.gpu={gpu!r} has no throughput table; valid: {', '.join(preflight_cfg.throughput)}")
    figures = preflight_cfg.throughput[gpu].get(size)
    if figures is None:
        raise ValueError(f"preflight.throughput.{gpu} has no '{size}' size class (a {params_b:g}B model); valid "
                         f"classes there: {', '.join(preflight_cfg.throughput[gpu]) or 'none'}")
    figures = dict(figures)
    if set(figures) != set(RATE_KEYS):
        raise ValueError(f"preflight.throughput.{gpu}.{size} has keys {sorted(figures)}; valid: exactly {', '.join(RATE_KEYS)}")
    for key, value in figures.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 or (
                key.endswith("_per_s") and value == 0):
            raise ValueError(f"preflight.throughput.{gpu}.{size}.{key}={value!r} is not valid; valid: a number > 0 "
                             f"(>= 0 for start seconds)")
    return size, {k: float(v) for k, v in figures.items()}


def inference_seconds(prompt_tokens: float, generated_tokens: float, engine_starts: int, gpus: int,
                      rates: dict[str, float]) -> float:
    """Wall seconds of answering: engine starts plus prefill and decode at the per-GPU rates x GPUs."""
    return (engine_starts * rates["engine_start_s"] + prompt_tokens / (rates["prompt_tokens_per_s"] * gpus)
            + generated_tokens / (rates["generated_tokens_per_s"] * gpus))


def training_seconds(tokens: float, epochs: float, finetunes: int, gpus: int, rates: dict[str, float]) -> float:
    """Wall seconds of finetuning: a start per finetune plus every epoch's tokens at the per-GPU rate x GPUs."""
    return finetunes * rates["finetune_start_s"] + tokens * epochs / (rates["train_tokens_per_s"] * gpus)


# --- expected answer lengths ----------------------------------------------------------------------
class AnswerLengths:
    """Expected tokens of an answer's text (without the end-of-turn token), from preflight.answer_tokens: one
    figure per task for object-level answers (`object` for a task not listed) and one for hypothetical answers."""

    def __init__(self, answer_tokens) -> None:
        table = dict(answer_tokens or {})
        for key in (HYPOTHETICAL, OBJECT_DEFAULT):
            if key not in table:
                raise ValueError(f"preflight.answer_tokens has no '{key}' entry; valid: {HYPOTHETICAL}, {OBJECT_DEFAULT} "
                                 f"and task names, each the expected tokens of an answer (a number > 0)")
        for key, value in table.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"preflight.answer_tokens.{key}={value!r} is not valid; valid: a number > 0")
        self.table = {k: float(v) for k, v in table.items()}

    def answer(self, task: str, hypothetical: bool) -> float:
        """Expected tokens of one answer's text."""
        return self.table[HYPOTHETICAL] if hypothetical else self.table.get(task, self.table[OBJECT_DEFAULT])

    def generated(self, task: str, hypothetical: bool, cap: int) -> float:
        """Expected tokens one answer generates: its text and the end-of-turn token, at most the cap."""
        return min(float(cap), self.answer(task, hypothetical) + END_OF_TURN)


# --- API prices -----------------------------------------------------------------------------------
PRICE_KEYS = ("input", "output", "training", "finetuned_input", "finetuned_output")  # $ per 1M tokens, or null
PRICE_INFO_KEYS = ("as_of", "source")
TOKENS_PER_PRICE = 1e6
# OpenAI's n_epochs="auto", as its cookbook's data-preparation notebook estimates it ("Data preparation and
# analysis for chat model fine-tuning"): 3 epochs, more for under 100 rows x epochs, fewer above 25,000.
AUTO_EPOCHS, AUTO_MIN_ROWS, AUTO_MAX_ROWS, AUTO_EPOCHS_MAX = 3, 100, 25_000, 25


def base_model_id(model_id: str) -> tuple[str, bool]:
    """The model a server model id was finetuned from, and whether it is finetuned: OpenAI names a finetuned
    model ft:<base>:<org>:<suffix>:<id>, priced at the base's finetuned rates."""
    if model_id.startswith("ft:") and model_id.count(":") >= 2:
        return model_id.split(":")[1], True
    return model_id, False


def api_prices(table, model_id: str) -> dict | None:
    """The prices of preflight.api_prices for a server model id (its base's, for an ft: id); None when the table
    has no entry. A one-line ValueError for an entry with other keys or a price that is not a number >= 0."""
    base, _ = base_model_id(model_id)
    entry = (table or {}).get(base)
    if entry is None:
        return None
    entry = dict(entry)
    extra = set(entry) - set(PRICE_KEYS) - set(PRICE_INFO_KEYS)
    if extra or not set(PRICE_KEYS) <= set(entry):
        raise ValueError(f"preflight.api_prices.{base} has keys {sorted(entry)}; valid: {', '.join(PRICE_KEYS)} "
                         f"($ per 1M tokens, null where unknown) and {', '.join(PRICE_INFO_KEYS)}")
    for key in PRICE_KEYS:
        value = entry[key]
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0):
            raise ValueError(f"preflight.api_prices.{base}.{key}={value!r} is not valid; valid: a number >= 0 "
                             "($ per 1M tokens) or null (unknown)")
    return entry


def dollars(tokens_by_price: dict[str, float], prices: dict) -> float | None:
    """$ for {price key: tokens}; None when a price needed (tokens > 0) is unknown."""
    total = 0.0
    for key, tokens in tokens_by_price.items():
        if tokens:
            if prices.get(key) is None:
                return None
            total += tokens * float(prices[key]) / TOKENS_PER_PRICE
    return total


def openai_epochs(n_epochs, rows: int) -> tuple[float, str]:
    """The epochs an OpenAI job trains: finetune.openai.n_epochs, or for "auto" the cookbook's estimate of the
    service's choice from the row count."""
    if n_epochs != "auto":
        return float(n_epochs), f"finetune.openai.n_epochs={n_epochs}"
    epochs = AUTO_EPOCHS
    if rows and rows * AUTO_EPOCHS < AUTO_MIN_ROWS:
        epochs = min(AUTO_EPOCHS_MAX, AUTO_MIN_ROWS // rows)
    elif rows * AUTO_EPOCHS > AUTO_MAX_ROWS:
        epochs = max(1, AUTO_MAX_ROWS // rows)
    return float(epochs), f"n_epochs=auto: {epochs} for {rows} rows (OpenAI cookbook's estimate of the service's choice)"
