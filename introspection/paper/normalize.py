"""The one answer normaliser: compliance, property values and predictions all compare `normalize(text)`.

It sits below prompts, properties and compliance (each of them uses it), so none of them imports another
only for it; `prompts.normalize` is the same function.
"""

from __future__ import annotations

import re
import string as _string

# Bump whenever normalize() changes behaviour: it is part of every artifact cache key that
# depends on normalised values (property values, scores).
NORMALIZER_VERSION = "1"

_PUNCTUATION = str.maketrans("", "", _string.punctuation)
_WHITESPACE_RUN = re.compile(r"\s+")
# Step 5 of docs/method.md §1.5. The original removes punctuation (step 2) before this step, so the
# colon is already gone and the prefix never matches; kept for fidelity with the paper's order.
_ANSWER_PREFIXES = ("answer:", "response:", "assistant:")


def normalize(text: str) -> str:
    """Canonical comparison key of a model answer (docs/method.md §1.5, steps 1-6, in order).

    1. lowercase; 2. drop ASCII punctuation; 3. ``\\n``, ``\\r``, ``\\t`` -> space;
    4. collapse runs of whitespace to one space; 5. strip one leading ``answer:`` /
    ``response:`` / ``assistant:`` prefix; 6. strip.
    """
    if not isinstance(text, str):
        raise TypeError(f"normalize() needs a str, got {type(text).__name__} {text!r}")
    out = text.lower()
    out = out.translate(_PUNCTUATION)
    out = out.replace("\n", " ").replace("\r", " ").replace("\t", " ")
    out = _WHITESPACE_RUN.sub(" ", out)
    stripped = out.lstrip()
    for prefix in _ANSWER_PREFIXES:
        if stripped.startswith(prefix):
            out = stripped[len(prefix) :]
            break
    return out.lower().strip()
