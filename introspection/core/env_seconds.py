"""A number of seconds read from an environment variable: the few settings that live outside the config
(they are read by processes that have none, e.g. the store's locks and the wait on model processes)."""

from __future__ import annotations

import math
import os


def seconds_from_environment(variable: str, default: float, meaning: str = "", finite: bool = True) -> float:
    """The variable's value as seconds > 0, or `default` when unset or empty; anything else fails in one line
    naming the variable, its value and what is valid (plus `meaning`, what the setting does)."""
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and (math.isfinite(value) or not finite)):
        raise ValueError(f"{variable}={text!r} (environment) is not valid; valid: a number of seconds > 0"
                         + (f" ({meaning})" if meaning else ""))
    return value
