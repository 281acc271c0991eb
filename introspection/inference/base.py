"""The inference backend protocol, its valid settings, and mode-of-n answer aggregation (the factory: factory.py)."""

from __future__ import annotations

from collections import Counter
from typing import Protocol

from introspection.types import Answer, ChatRequest, Sampling

BACKENDS = ("vllm", "hf")
AGGREGATIONS = ("mode", "first")
SERVING_MODES = ("auto", "merge", "adapter")
MODE_PREFIX_CHARS = 40  # docs/method.md §1.4: samples are compared on their first 40 characters


class Backend(Protocol):
    serving: str  # "base" (no adapter), "merge" (adapter folded into the weights) or "adapter"

    def chat(self, requests: list[ChatRequest], sampling: Sampling) -> list[Answer]:
        """One Answer per request, in the order of `requests`."""
        ...

    def close(self) -> None: ...


def choose_answer(samples: list[str], aggregation: str) -> tuple[str | None, float]:
    """Pick the answer among n samples; return (answer, agreement rate).

    "mode" (docs/method.md §1.4): samples are compared on their first 40 characters; the first full sample
    with the modal prefix is kept (ties go to the prefix seen first). When n > 1 and every sample
    differs, the answer is None (the paper drops such strings). "first": the first sample.
    The agreement rate is the share of samples whose prefix equals the chosen one's.
    """
    if not samples:
        raise ValueError("choose_answer got no samples; a request needs at least one")
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown inference.aggregation {aggregation!r}; valid: {', '.join(AGGREGATIONS)}")
    keys = [s[:MODE_PREFIX_CHARS] for s in samples]
    counts = Counter(keys)
    n = len(samples)
    if aggregation == "first":
        return samples[0], counts[keys[0]] / n
    top = max(counts.values())
    if n > 1 and top == 1:
        return None, 1 / n
    modal_key = next(k for k in keys if counts[k] == top)  # first-seen among tied modes
    return samples[keys.index(modal_key)], top / n


def make_answer(
    request_id: str,
    samples: list[str],
    finish_reasons: list[str | None],
    first_token_logprobs: list[tuple[str, float]],
    aggregation: str,
    prompt_tokens: int | None = None,
    generated_tokens: int | None = None,
) -> Answer:
    """Assemble an Answer from raw samples (shared by the backends); the token counts feed the run's profile."""
    text, agreement = choose_answer(samples, aggregation)
    finish = None
    if text is not None:
        finish = finish_reasons[samples.index(text)]
    return Answer(
        request_id=request_id,
        text=text,  # type: ignore[arg-type]  # None: all n samples differ (dropped downstream)
        samples=list(samples),
        agreement=agreement,
        first_token_logprobs=first_token_logprobs,
        finish_reason=finish,
        prompt_tokens=prompt_tokens,
        generated_tokens=generated_tokens,
    )
