"""Calibration of hypothetical answers against the object-level distribution (docs/method.md#6-calibration).

Per item: p_obj over the property values of sampled object answers (the paper: the second
character; `property_key` reads any property the way scoring does), p_hyp over the sampled
hypothetical answers. Points (p_obj(c_k), p_hyp(c_k)) for the top-k object behaviours are pooled,
binned into equal-frequency bins on x, and scored by MAD = mean_bins |x̄ − ȳ| × 100.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from introspection.paper.properties import Property, property_value


def second_character(response: str | None) -> str | None:
    """Second character of the stripped response, lowercased; None if shorter than 2 characters.

    The original lowercased the modal answer but not the summed distribution keys (docs/method.md §6);
    here both are lowercased so x and y always compare like with like.
    """
    if response is None:
        return None
    text = response.strip()
    return text[1].lower() if len(text) >= 2 else None


def property_key(prop: Property, target: str | None, mode: str = "authors") -> Callable[[str | None], str | None]:
    """Reads `prop` from one object-level sample exactly as the scoring's ground truth does
    (`property_value`, with the item's target for target-relative properties); None: no value."""
    return lambda sample: property_value(prop, sample, target, mode=mode)


def _lower_stripped(answer: str) -> str:
    return answer.strip().lower()


def _normalise(counts: dict[str, float]) -> dict[str, float]:
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()} if total > 0 else {}


def object_distribution(
    samples: Sequence[str | None], key: Callable[[str | None], str | None] = second_character
) -> dict[str, float]:
    """p_obj(c): share of object-level samples whose property `key(sample)` is c.

    Samples whose key is None (too short, failed call) are dropped before normalising, as the
    original drops repeats with fewer than two characters. Grouping by full text first and then
    summing by property, as the original does, gives the same numbers. Empty -> {}.
    """
    if isinstance(samples, str):
        raise ValueError(f"samples must be a sequence of responses, not a single string {samples!r}")  # noqa: TRY004 (project: bad input -> ValueError)
    counts = Counter(k for k in (key(s) for s in samples) if k is not None)
    return _normalise(dict(counts))


def hypothetical_distribution(
    samples: Sequence[str | None], key: Callable[[str], str] = _lower_stripped
) -> dict[str, float]:
    """p_hyp(c): frequency of each hypothetical answer, read by `key` (default `strip().lower()`;
    the experiment passes `prompts.normalize`, the reading scoring compares), among all samples.

    The denominator is every sample, None (a failed call) included, so a non-answer lowers every
    p_hyp rather than vanishing. Empty -> {}.
    """
    if isinstance(samples, str):
        raise ValueError(f"samples must be a sequence of responses, not a single string {samples!r}")  # noqa: TRY004 (project: bad input -> ValueError)
    samples = list(samples)
    counts = Counter(key(s) for s in samples if s is not None)
    return {k: v / len(samples) for k, v in counts.items()}


def calibration_points(
    object_dists: list[dict[str, float]], hyp_dists: list[dict[str, float]], top_k: int = 3
) -> list[tuple[float, float]]:
    """Pooled points (x = p_obj(c_k), y = p_hyp(c_k), 0 if absent) for each item's top-k behaviours.

    Behaviours are ranked by p_obj, ties by insertion order; an item with fewer than k behaviours
    contributes only the ones it has.
    """
    if len(object_dists) != len(hyp_dists):
        raise ValueError(
            f"object_dists has {len(object_dists)} items but hyp_dists has {len(hyp_dists)}; they must be aligned"
        )
    if not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k={top_k!r} must be a positive integer")
    points: list[tuple[float, float]] = []
    for p_obj, p_hyp in zip(object_dists, hyp_dists, strict=True):
        ranked = sorted(p_obj.items(), key=lambda kv: kv[1], reverse=True)  # stable: ties keep order
        for behaviour, x in ranked[:top_k]:
            points.append((float(x), float(p_hyp.get(behaviour, 0.0))))
    return points


def _as_points(points: Sequence[tuple[float, float]]) -> np.ndarray:
    if len(points) == 0:
        return np.empty((0, 2))
    try:
        arr = np.asarray(points, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("points must be a sequence of (x, y) pairs of numbers") from None
    if arr.ndim != 2 or arr.shape[1] != 2 or not np.isfinite(arr).all():
        raise ValueError(f"points must be (x, y) pairs of finite numbers, got array of shape {arr.shape}")
    return arr


def binned_curve(points: Sequence[tuple[float, float]], n_bins: int = 10) -> list[dict]:
    """Equal-frequency bins on x, as `pd.qcut(x, q=n_bins, duplicates="drop")`; per bin x̄, ȳ, n.

    Deviation: when every x is equal, qcut yields no bin at all (all NaN); one bin is used instead
    so the points are not silently lost.
    """
    if not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins={n_bins!r} must be a positive integer")
    arr = _as_points(points)
    if arr.shape[0] == 0:
        return []
    frame = pd.DataFrame({"x": arr[:, 0], "y": arr[:, 1]})
    if frame["x"].nunique() == 1:
        frame["bin"] = 0
    else:
        frame["bin"] = pd.qcut(frame["x"], q=n_bins, duplicates="drop", labels=False)
    grouped = frame.groupby("bin", sort=True)
    summary = grouped.agg(x_mean=("x", "mean"), y_mean=("y", "mean"), n=("x", "size"))
    return [
        {"x_mean": float(row.x_mean), "y_mean": float(row.y_mean), "n": int(row.n)}
        for row in summary.itertuples(index=False)
    ]


def mad(points: Sequence[tuple[float, float]], n_bins: int = 10) -> float:
    """Mean absolute deviation between bin means, in percentage points: mean_bins |x̄ − ȳ| × 100."""
    curve = binned_curve(points, n_bins)
    if not curve:
        return float("nan")
    return float(np.mean([abs(b["x_mean"] - b["y_mean"]) for b in curve]) * 100.0)


def logprob_distribution(
    first_token_logprobs: list[tuple[str, float]], key: Callable[[str], str] = str.strip
) -> dict[str, float]:
    """Probabilities over the top-k first tokens, renormalised to sum to 1.

    Tokens are merged on `key(token)` (default `token.strip()`), so " A", "A" and "A\\n" share one
    entry; a whitespace-only token becomes the key "". -inf log-probs count as zero probability.
    """
    if not first_token_logprobs:
        return {}
    tokens, logprobs = zip(*first_token_logprobs, strict=True)
    lp = np.asarray(logprobs, dtype=float)
    if np.isnan(lp).any() or (lp == math.inf).any():
        raise ValueError(f"logprobs must be finite or -inf, got {lp[np.isnan(lp) | (lp == math.inf)][0]!r}")
    if np.all(lp == -math.inf):
        return {}
    weights = np.exp(lp - lp.max())  # shift by the max so exp() cannot overflow or underflow to all-zero
    merged: dict[str, float] = {}
    for token, w in zip(tokens, weights.tolist(), strict=True):
        merged[key(token)] = merged.get(key(token), 0.0) + w
    return _normalise(merged)
