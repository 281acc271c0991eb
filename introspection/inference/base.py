"""The inference backend protocol, a backend's registry entry (BackendSpec), its valid settings, and mode-of-n
answer aggregation (the registry: registry.py; the factory: factory.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from introspection.core.types import Answer, ChatRequest, Sampling

AGGREGATIONS = ("mode", "first")
SERVING_MODES = ("auto", "merge", "adapter")
MODE_PREFIX_CHARS = 40  # docs/method.md §1.4: samples are compared on their first 40 characters


class Backend(Protocol):
    serving: str  # "base" (no adapter), "merge" (adapter folded into the weights) or "adapter"

    def chat(self, requests: list[ChatRequest], sampling: Sampling) -> list[Answer]:
        """One Answer per request, in the order of `requests`."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class BackendSpec:
    """A backend as the registry (registry.py) knows it: a module of this package named `<name>_backend.py`
    defines `BACKEND = BackendSpec(...)`, and the factory, the config's validation and the start checks read it.

    `load(model, cfg, entry, adapter_path, work_dir, samplings)` returns a started Backend (the factory's
    arguments, see factory.make_backend). `source`: the model source (model.mX.source) whose models this
    backend answers for, whatever inference.backend says (the `server` backend answers `source: server`);
    None for an engine that loads weights here and is chosen with inference.backend (vllm, hf).
    """

    name: str
    summary: str  # one line, for listings and error messages
    load: Callable[..., Backend]
    source: str | None = None
    # Computes on this machine's devices: its inference dtype enters the answers' key and inference.gpu_batch_size
    # applies on a GPU. False for a remote server: its answers do not depend on this machine.
    on_devices: bool = True
    # The profile reads the memory in use on every visible GPU (the engine runs in a child it cannot see).
    device_wide: bool = False
    # check_config(cfg, slot): one-line ValueError for an entry it cannot run, judged from the config alone
    # (every start, dry runs included). check_service(cfg, slot, finetuned): the same once models will run (it may
    # ask a server, within seconds); finetuned: whether the experiment finetunes that slot (Experiment.finetunes).
    # Both run only for the slots this backend answers.
    check_config: Callable[[Any, str], None] | None = None
    check_service: Callable[[Any, str, bool], None] | None = None


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
