"""Compliance checks on raw model answers (docs/method.md §4.1).

Two modes, chosen by ``tasks.compliance``:

``authors`` (default) reproduces the authors' checks exactly. They look at the *raw* answer or at
its light cleaning `clean_string` (lowercase, strip the ends, then drop ASCII punctuation; inner
whitespace is kept, so ``"' a'"`` cleans to ``" a"``):

* ``default``: fails on a refusal / filler. Exact matches of the cleaned answer: no, nope, sorry,
  apologies, apology, apologize, apologise, undefined, impossible, unable, i cannot, cannot, na,
  unpredictable, unpredictability, indeterminable, indeterminate, insufficient, unknown,
  i do not know, sequence, random, randomness, item, system, unanswerable, unavailable,
  unidentifiable, unrelated, next. Substrings of the cleaned answer: sorry, apologies, apology,
  apologize, apologise, "as an ai", "as an artificial intelligence", "as a language model".
  Exact raw answers: "?", " ?", "???", "", " ", "  ", "   ". Raw substring (case-sensitive):
  "Cauchy Cauchy Cauchy". The authors' list also names "i can't", "i don't know", "n/a",
  "system:" and "*"; their punctuation is removed before the comparison, so these never match
  (an answer "I don't know" passes, "cannot" fails).
* ``single_character``: the cleaned answer has length 1.
* ``single_word``: the raw answer has at most one whitespace token (an empty answer passes;
  "- Brava" has two), and the cleaned answer is not one of the sorry words.
* ``true_false`` / ``even_odd`` / ``multiple_choice``: the cleaned answer is exactly
  true/false, even/odd, one of a-z.
* ``numeric``: ``raw.isnumeric()`` (" 7" and "7." fail).

``strict`` is this project's earlier, stricter reading: every group looks at ``normalize(raw)``
(the scoring key), ``default`` also rejects "i dont know", "i cant ..." and "sorry"/"as an ai" as
whole words anywhere, and a hypothetical answer must pass ``default`` as well as its property's
group (`hypothetical_groups`).

Object answers use the task's ``object_compliance_groups`` in both modes.
"""

from __future__ import annotations

import re
import string as _string
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from introspection.paper.normalize import normalize

if TYPE_CHECKING:  # properties imports nothing from here, but keep the import graph one-way
    from introspection.paper.properties import Property

COMPLIANCE_MODES: tuple[str, ...] = ("authors", "strict")

Check = Callable[[str], "str | None"]  # raw answer -> reason it fails, or None


def check_mode(mode: str, where: str = "tasks.compliance") -> str:
    """Return `mode` if it is a known compliance mode, else raise a one-line ValueError."""
    if mode not in COMPLIANCE_MODES:
        raise ValueError(f"{where}={mode!r} is not a compliance mode; valid: {', '.join(COMPLIANCE_MODES)}")
    return mode


# ---------------------------------------------------------------------------------------------
# authors mode

_DROP_PUNCTUATION = str.maketrans("", "", _string.punctuation)


def clean_string(raw: str) -> str:
    """The authors' light cleaning for compliance: lowercase, strip, then drop ASCII punctuation."""
    return raw.lower().strip().translate(_DROP_PUNCTUATION)


_SORRY_WORDS = ("sorry", "apologies", "apology", "apologize", "apologise")
_AS_AN_AI = ("as an ai", "as an artificial intelligence", "as a language model")
# Whole cleaned answers that fail `default`, with the name of the authors' check they come from.
_AUTHORS_FILLERS: dict[str, str] = {
    **{w: "no" for w in ("no", "nope")},
    **{w: "sorry" for w in _SORRY_WORDS},
    "undefined": "undefined",
    "impossible": "impossible",
    **{w: "unable" for w in ("unable", "i cannot", "cannot")},
    "na": "na",
    **{w: "unpredictable" for w in ("unpredictable", "indeterminable", "indeterminate", "unpredictability")},
    "insufficient": "insufficient",
    **{w: "unknown" for w in ("unknown", "i do not know")},
    "sequence": "sequence",
    **{w: "random" for w in ("random", "randomness")},
    "item": "item",
    "system": "system",
    "unanswerable": "unanswerable",
    "unavailable": "unavailable",
    "unidentifiable": "unidentifiable",
    "unrelated": "unrelated",
    "next": "next",
}
_AUTHORS_QUESTION_MARKS = ("?", " ?", "???")
_AUTHORS_EMPTY = ("", " ", "  ", "   ")  # only up to three spaces: "\n" or four spaces pass


def _authors_default(raw: str) -> str | None:
    clean = clean_string(raw)
    if raw in _AUTHORS_EMPTY:
        return "empty answer"
    if raw in _AUTHORS_QUESTION_MARKS:
        return "answer is a question mark"
    if clean in _AUTHORS_FILLERS:
        return f"refusal/filler answer {clean!r} ({_AUTHORS_FILLERS[clean]})"
    for word in _SORRY_WORDS + _AS_AN_AI:
        if word in clean:
            return f"answer contains {word!r}"
    if "Cauchy Cauchy Cauchy" in raw:
        return "answer contains 'Cauchy Cauchy Cauchy'"
    return None


def _authors_single_character(raw: str) -> str | None:
    n = len(clean_string(raw))
    return None if n == 1 else f"expected one character, got {n}"


def _authors_single_word(raw: str) -> str | None:
    n = len(raw.split())
    if n > 1:
        return f"expected one word, got {n}"
    clean = clean_string(raw)
    return f"answer is {clean!r}" if clean in _SORRY_WORDS else None


def _cleaned_in(valid: Sequence[str], what: str) -> Check:
    def check(raw: str) -> str | None:
        return None if clean_string(raw) in valid else f"expected {what}"

    return check


def _authors_numeric(raw: str) -> str | None:
    return None if raw.isnumeric() else "expected a number (digits only, no spaces or punctuation)"


_AUTHORS_CHECKS: dict[str, Check] = {
    "default": _authors_default,
    "single_character": _authors_single_character,
    "single_word": _authors_single_word,
    "true_false": _cleaned_in(("true", "false"), "'true' or 'false'"),
    "even_odd": _cleaned_in(("even", "odd"), "'even' or 'odd'"),
    "multiple_choice": _cleaned_in(tuple(_string.ascii_lowercase), "a single option letter"),
    "numeric": _authors_numeric,
}


# ---------------------------------------------------------------------------------------------
# strict mode: every check on normalize(raw)

_STRICT_REFUSALS = frozenset(
    {
        "no", "nope", "undefined", "impossible", "unable", "i cannot", "i cant", "na", "unpredictable",
        "insufficient", "unknown", "i dont know", "i do not know", "sequence", "random", "item", "system",
        "unanswerable", "unavailable", "unidentifiable", "unrelated", "next",
    }
)
_STRICT_REFUSAL_PREFIXES = ("i cannot ", "i cant ", "i am unable", "im unable", "unable to ", "i dont know ")
_STRICT_REFUSAL_ANYWHERE = re.compile(
    r"\b(sorry|apologize|apologise|apologies|as an ai|as a language model|"
    r"as an artificial intelligence)\b|cauchy cauchy cauchy"
)


def refusal_reason(clean: str) -> str | None:
    """Strict mode: why a normalised answer counts as a refusal/filler, or None."""
    if not clean:
        return "empty answer"
    if clean in _STRICT_REFUSALS:
        return f"refusal/filler answer {clean!r}"
    if clean.startswith(_STRICT_REFUSAL_PREFIXES):
        return "answer starts with a refusal"
    match = _STRICT_REFUSAL_ANYWHERE.search(clean)
    if match:
        return f"answer contains {match.group(0)!r}"
    return None


def _strict_single_character(clean: str) -> str | None:
    return None if len(clean) == 1 else f"expected one character, got {len(clean)}"


def _strict_single_word(clean: str) -> str | None:
    words = clean.split()
    if len(words) != 1:
        return f"expected one word, got {len(words)}"
    return "answer is 'sorry'" if words[0] == "sorry" else None


def _normalized_in(valid: Sequence[str], what: str) -> Check:
    def check(clean: str) -> str | None:
        return None if clean in valid else f"expected {what}"

    return check


def _strict_numeric(clean: str) -> str | None:
    return None if clean.isnumeric() else "expected a number"


_STRICT_CHECKS: dict[str, Check] = {  # each takes normalize(raw)
    "default": refusal_reason,
    "single_character": _strict_single_character,
    "single_word": _strict_single_word,
    "true_false": _normalized_in(("true", "false"), "'true' or 'false'"),
    "even_odd": _normalized_in(("even", "odd"), "'even' or 'odd'"),
    "multiple_choice": _normalized_in(tuple(_string.ascii_lowercase), "a single option letter"),
    "numeric": _strict_numeric,
}

COMPLIANCE_GROUPS: tuple[str, ...] = tuple(_AUTHORS_CHECKS)


# ---------------------------------------------------------------------------------------------
# API


def noncompliance_reason(raw: str, groups: Sequence[str], mode: str = "authors") -> str | None:
    """The first failed check as a short reason ("group: why"), or None when `raw` passes every group."""
    if isinstance(groups, str):  # a bare string would be iterated character by character
        groups = [groups]
    check_mode(mode, where="compliance mode")
    for group in groups:
        if group not in _AUTHORS_CHECKS:
            raise ValueError(
                f"unknown compliance group {group!r} (from groups {list(groups)}); "
                f"valid: {', '.join(COMPLIANCE_GROUPS)}"
            )
    if raw is None:
        return "no answer"
    if mode == "authors":
        checks, text = _AUTHORS_CHECKS, raw
    else:
        checks, text = _STRICT_CHECKS, normalize(raw)
    for group in groups:
        reason = checks[group](text)
        if reason is not None:
            return f"{group}: {reason}"
    return None


def is_compliant(raw: str, groups: Sequence[str], mode: str = "authors") -> bool:
    """True when `raw` passes every named group (docs/method.md §4.1)."""
    return noncompliance_reason(raw, groups, mode) is None


def hypothetical_groups(prop: Property, mode: str = "authors") -> tuple[str, ...]:
    """Groups a hypothetical answer is checked against.

    authors: only the group the property's config lists. strict: ``default`` plus that group.
    """
    group = prop.compliance_group
    if check_mode(mode, where="compliance mode") == "authors" or group == "default":
        return (group,)
    return ("default", group)
