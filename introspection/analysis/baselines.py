"""Mode baseline (docs/method.md §4.3) and distribution matching (docs/method.md §4.4)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence

import numpy as np


def _counts(values: Sequence[Hashable | None]) -> Counter:
    """Counts of the non-None values, keyed in order of first appearance."""
    return Counter(v for v in values if v is not None)


def mode_baseline(values: Sequence[str | None]) -> dict:
    """Accuracy of always predicting the most common object-level answer.

    mode: the most frequent non-None value; a tie goes to the value seen first (the rule of
    `statistics.mode` in Python >= 3.8). None (non-compliant) rows are kept in n but never
    match, so rate = count(mode) / n. rate is NaN for n = 0 and 0.0 when every row is None.
    """
    if isinstance(values, (str, bytes)):
        raise ValueError(f"values must be a sequence of answers, not a single string {values!r}")  # noqa: TRY004 (project: bad input -> ValueError)
    values = list(values)
    n = len(values)
    counts = _counts(values)
    if not counts:
        return {"mode": None, "rate": float("nan") if n == 0 else 0.0, "count": 0, "n": n}
    # Counter keeps insertion order and max() returns the first maximal key: first-seen wins ties.
    mode = max(counts, key=counts.__getitem__)
    return {"mode": mode, "rate": counts[mode] / n, "count": counts[mode], "n": n}


def distribution_matched_indices(
    object_values_a: Sequence[Hashable | None],
    object_values_b: Sequence[Hashable | None],
    seed: int | None = 42,
    max_categories: int = 100,
) -> tuple[list[int], list[int]]:
    """Subsample two bars so their object-level answers have identical marginal counts.

    docs/method.md §4.4: for each of the top `max_categories` answer categories of A (ranked by count in
    A, ties by first appearance), keep k = min(count_A, count_B) rows from each side. Each side
    is shuffled once with `numpy.default_rng(seed)` (A first, then B) and the first k rows of each
    category in shuffled order are kept. Categories outside A's top list, and None answers, are
    dropped. The caller intersects the two bars on (string, property) beforehand (step 1).

    Returns the kept indices into a and into b, each sorted ascending.
    """
    if not isinstance(max_categories, (int, np.integer)) or max_categories < 1:
        raise ValueError(f"max_categories={max_categories!r} must be a positive integer")
    a, b = list(object_values_a), list(object_values_b)
    count_a, count_b = _counts(a), _counts(b)
    quota = {cat: min(n_a, count_b.get(cat, 0)) for cat, n_a in count_a.most_common(max_categories)}

    rng = np.random.default_rng(seed)

    def take(values: list[Hashable | None]) -> list[int]:
        left = dict(quota)
        kept = []
        for i in rng.permutation(len(values)).tolist():
            cat = values[i]
            if cat is not None and left.get(cat, 0) > 0:
                left[cat] -= 1
                kept.append(i)
        return sorted(kept)

    kept_a = take(a)
    kept_b = take(b)
    return kept_a, kept_b
