"""Plain data types that cross module and process boundaries (all JSON-serialisable)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

Messages = list[dict[str, str]]  # [{"role": "system"|"user"|"assistant", "content": str}, ...]


@dataclass(frozen=True)
class Item:
    """One task item: the `string` substituted into the task prompt."""

    task: str
    item_id: str  # stable id: f"{task}:{split}:{index}" or a content hash
    string: str
    target: str | None = None  # MCQ / ethical-stance tasks: the letter the property compares against


@dataclass(frozen=True)
class ChatRequest:
    """One chat prompt to answer. What it asks about travels as fields, set where the request is built, so no
    reader parses `request_id` back: the id keeps its historical format (e.g. "obj|<item_id>",
    "hyp|<item_id>|<property>") because it enters the answers' store keys and every stored answer row."""

    request_id: str
    messages: Messages
    kind: str = ""  # "object" | "hypothetical"; "" for a request built outside the experiment (tests, checks)
    task: str = ""  # the item's task
    item_id: str = ""
    property: str = ""  # a hypothetical request: the property asked about; "" for object-level requests


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 48
    n_samples: int = 1  # mode-of-n when > 1 (docs/method.md §1.4)
    seed: int = 0
    # Top-k log-probabilities of the FIRST generated position, stored with each answer; 0 = none. vLLM computes
    # them at every generated position (a log-softmax over the vocabulary per token), so a job that reads
    # only the first token's distribution asks for max_tokens=1 as well (as calibration's greedy job).
    top_logprobs: int = 0


@dataclass
class Answer:
    request_id: str
    text: str | None  # the chosen answer (the single sample, or the mode of n samples); None: all n differ
    samples: list[str] = field(default_factory=list)  # every raw sample, in order
    agreement: float = 1.0  # share of samples equal to the chosen one (mode-of-n agreement rate)
    first_token_logprobs: list[tuple[str, float]] = field(default_factory=list)  # top-k of token 1
    finish_reason: str | None = None
    prompt_tokens: int | None = None  # the prompt's tokens (None: answers stored before tokens were counted)
    generated_tokens: int | None = None  # tokens the engine generated, all samples (greedy copies count once)
    # What a remote server said about the model that answered (its model name, system_fingerprint); None for the
    # engines in this job, and then left out of the stored row, so their rows are as before.
    served: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        row = asdict(self)
        if row["served"] is None:
            del row["served"]
        return row

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Answer:
        d = dict(d)
        d["first_token_logprobs"] = [tuple(x) for x in d.get("first_token_logprobs", [])]
        return Answer(**d)
