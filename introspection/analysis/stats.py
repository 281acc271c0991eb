"""Accuracy intervals and the paired self-vs-cross comparison (docs/method.md#45-statistics).

Every function takes a 0/1 (or bool) correctness vector and returns a plain dict of Python
floats/ints/strs, so results serialise to JSON. Where a quantity is undefined (n=0, a single
cluster for an SE) the value is NaN instead of an exception.

Intervals stay inside their range and keep a width at 0% and 100% (a normal interval there has none):

* one proportion: the Wilson score interval (Wilson 1927);
* one proportion whose rows repeat items (several properties per item): the Wilson interval at the
  effective sample size n_eff = p(1-p) / Var_cluster(p), i.e. n divided by the design effect, with
  n_eff <= n; when every row agrees (p = 0 or 1) the variance says nothing and n_eff = the number of
  items (clusters), the conservative choice;
* a paired difference self - cross: Agresti & Min (2005): add 1/2 to each cell of the paired 2x2
  table, then a Wald interval; with clusters, on the table scaled to the effective n of the differences.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import numpy as np
from scipy import stats as sps

Z_95 = 1.96  # the paper's normal intervals use the rounded quantile; kept for the SEs' reference
Z_975 = float(sps.norm.ppf(0.975))  # 1.959964...: the Wilson and Agresti-Min intervals use the exact quantile
_BOOT_CELLS = 2_000_000  # cap on resample-matrix cells held in memory at once

NAN = float("nan")


# --------------------------------------------------------------------------- input checks


def _as_binary(values: Sequence[bool] | np.ndarray, name: str) -> np.ndarray:
    """Return `values` as a 1-D float array of 0.0/1.0, or raise a one-line ValueError."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of bools or 0/1, got shape {arr.shape}")
    try:
        out = arr.astype(float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must contain only True/False or 0/1, got dtype {arr.dtype}") from None
    bad = ~((out == 0.0) | (out == 1.0))  # NaN also lands here
    if bad.any():
        raise ValueError(f"{name} must contain only True/False or 0/1, got {arr[bad][0]!r}")
    return out


def _cluster_codes(clusters: Sequence[Hashable] | np.ndarray, n: int) -> np.ndarray:
    """Map arbitrary hashable cluster labels to 0..C-1 in order of first appearance."""
    labels = list(clusters.tolist() if isinstance(clusters, np.ndarray) else clusters)
    if len(labels) != n:
        raise ValueError(f"clusters has length {len(labels)}, must match the {n} correctness values")
    mapping: dict[Hashable, int] = {}
    codes = np.empty(n, dtype=np.int64)
    for i, label in enumerate(labels):
        if label is None or (isinstance(label, float) and math.isnan(label)):
            raise ValueError(f"clusters[{i}] is {label!r}; every row needs a cluster label")
        codes[i] = mapping.setdefault(label, len(mapping))
    return codes


def _check_resampling(n_resamples: int, seed: int | None) -> None:
    if not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise ValueError(f"n_resamples={n_resamples!r} must be a positive integer")
    if seed is not None and not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed={seed!r} must be an int or None")


# --------------------------------------------------------------------------- building blocks


def _sample_se(x: np.ndarray) -> float:
    """Standard error of the mean with the sample SD (ddof=1); NaN below two values."""
    if x.size < 2:
        return NAN
    return float(np.std(x, ddof=1) / math.sqrt(x.size))


def _clustered_se(x: np.ndarray, codes: np.ndarray) -> tuple[float, int]:
    """Cluster-robust SE of the mean with the C/(C-1) small-sample factor.

    Var = C/(C-1) * sum_c (sum_{i in c} (x_i - mean))^2 / n^2  (Miller 2024, App. A; the
    estimator inspect_ai's `stderr(cluster=...)` uses). With singleton clusters it reduces to
    s^2/n, i.e. the ordinary SE.
    """
    n = x.size
    n_clusters = int(codes.max()) + 1 if n else 0
    if n_clusters < 2:
        return NAN, n_clusters
    resid_sums = np.bincount(codes, weights=x - x.mean(), minlength=n_clusters)
    var = n_clusters / (n_clusters - 1) * float(np.sum(resid_sums**2)) / n**2
    return math.sqrt(var), n_clusters


def _clip(value: float, low: float, high: float) -> float:
    return value if math.isnan(value) else float(min(max(value, low), high))


def _bootstrap_means(
    x: np.ndarray, n_resamples: int, rng: np.random.Generator, codes: np.ndarray | None = None
) -> np.ndarray:
    """Means of `n_resamples` resamples with replacement: of items, or of whole clusters.

    Item resampling draws `rng.integers(0, n, size=(rows, n))`, which yields the same indices
    as the original repo's loop of `rng.choice(data, size=n)` for the same seed. Rows are drawn
    in chunks so large n does not allocate an n_resamples x n matrix at once.
    """
    if codes is None:
        units_sum, units_n = x, np.ones_like(x)
    else:
        # A resampled cluster contributes all of its rows: track its sum and size.
        units_sum = np.bincount(codes, weights=x)
        units_n = np.bincount(codes).astype(float)
    n_units = units_sum.size
    chunk = max(1, _BOOT_CELLS // n_units)
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        idx = rng.integers(0, n_units, size=(stop - start, n_units))
        means[start:stop] = units_sum[idx].sum(axis=1) / units_n[idx].sum(axis=1)
    return means


# --------------------------------------------------------------------------- public API


def wilson_interval(successes: float, n: float, z: float = Z_975) -> tuple[float, float]:
    """Wilson score interval for a proportion successes/n; n may be fractional (an effective n).

    centre = (p + z^2/2n) / (1 + z^2/n),  half = z / (1 + z^2/n) * sqrt(p(1-p)/n + z^2/4n^2).
    At p = 0 it is [0, z^2/(n + z^2)], never zero-width. (NaN, NaN) when n is 0.
    """
    if not n > 0:
        return NAN, NAN
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(max(0.0, p * (1 - p) / n + z * z / (4 * n * n)))
    low, high = _clip(centre - half, 0.0, 1.0), _clip(centre + half, 0.0, 1.0)
    # At p = 0 (p = 1) the bound is exactly 0 (1); rounding would leave 1e-17 off it.
    return (0.0 if p <= 0.0 else low), (1.0 if p >= 1.0 else high)


def effective_n(x: np.ndarray, codes: np.ndarray) -> float:
    """n divided by the design effect of clustering: mean((x - mean)^2) / Var_cluster(mean), at most n.

    Var_cluster = sum_c (sum_{i in c} (x_i - mean))^2 / n^2 (the cluster-robust variance without
    its small-sample factor, so singleton clusters give exactly n). With fewer than two clusters, or
    no variation at all (every row equal), the variance carries no information and the number of
    clusters is returned: each item counted once.
    """
    n = x.size
    if n == 0:
        return 0.0
    n_clusters = int(codes.max()) + 1
    per_row = float(np.mean((x - x.mean()) ** 2))
    if n_clusters < 2 or per_row == 0.0:
        return float(n_clusters)
    resid_sums = np.bincount(codes, weights=x - x.mean(), minlength=n_clusters)
    var_mean = float(np.sum(resid_sums**2)) / n**2
    if var_mean * n <= per_row:  # no positive correlation within clusters: never more than n
        return float(n)
    return per_row / var_mean


def accuracy_ci(correct: Sequence[bool] | np.ndarray) -> dict:
    """Accuracy with the Wilson score 95% interval; `se` is the sample SE s/sqrt(n) (ddof=1)."""
    x = _as_binary(correct, "correct")
    n = int(x.size)
    acc = float(x.mean()) if n else NAN
    low, high = wilson_interval(float(x.sum()), n)
    return {"accuracy": acc, "n": n, "se": _sample_se(x), "ci_low": low, "ci_high": high, "ci_method": "wilson"}


def clustered_accuracy_ci(correct: Sequence[bool] | np.ndarray, clusters: Sequence[Hashable]) -> dict:
    """Accuracy for rows sharing an object item across properties: Wilson at the effective n.

    `se` is the cluster-robust SE (C/(C-1) factor; NaN with fewer than two clusters); the interval is
    `wilson_interval(p * n_eff, n_eff)` with n_eff from `effective_n`.
    """
    x = _as_binary(correct, "correct")
    codes = _cluster_codes(clusters, x.size)
    n = int(x.size)
    acc = float(x.mean()) if n else NAN
    se, n_clusters = _clustered_se(x, codes)
    n_eff = effective_n(x, codes)
    low, high = wilson_interval(acc * n_eff, n_eff) if n else (NAN, NAN)
    return {
        "accuracy": acc,
        "n": n,
        "n_clusters": n_clusters,
        "n_effective": n_eff,
        "se": se,
        "ci_low": low,
        "ci_high": high,
        "ci_method": "wilson, clustered effective n",
    }


def agresti_min_interval(self_only: float, cross_only: float, n: float, z: float = Z_975) -> tuple[float, float]:
    """Agresti & Min (2005) interval for a paired difference of proportions (self - cross).

    Add 1/2 to each of the four cells of the paired table (n -> n + 2), then Wald:
    d = (b - c)/(n + 2), Var = ((b + .5)/(n + 2) + (c + .5)/(n + 2) - d^2) / (n + 2), with
    b = self_only, c = cross_only. With no discordant pairs the half-width is z/(n + 2), not 0.
    Counts may be fractional (scaled to an effective n). (NaN, NaN) when n is 0.
    """
    if not n > 0:
        return NAN, NAN
    total = n + 2.0
    p_b, p_c = (self_only + 0.5) / total, (cross_only + 0.5) / total
    diff = p_b - p_c
    half = z * math.sqrt(max(0.0, (p_b + p_c - diff * diff) / total))
    return _clip(diff - half, -1.0, 1.0), _clip(diff + half, -1.0, 1.0)


def bootstrap_accuracy_ci(
    correct: Sequence[bool] | np.ndarray, n_resamples: int = 1000, seed: int | None = 42
) -> dict:
    """Percentile bootstrap (2.5/97.5) of the accuracy, `numpy.default_rng(seed)` (docs/method.md §4.5).

    `se` is the SD of the bootstrap means. Interval is NaN below two items (a one-item
    bootstrap is degenerate).
    """
    x = _as_binary(correct, "correct")
    _check_resampling(n_resamples, seed)
    n = int(x.size)
    result = {"accuracy": float(x.mean()) if n else NAN, "n": n, "n_resamples": int(n_resamples)}
    if n < 2:
        return result | {"se": NAN, "ci_low": NAN, "ci_high": NAN}
    means = _bootstrap_means(x, n_resamples, np.random.default_rng(seed))
    low, high = np.percentile(means, [2.5, 97.5])
    return result | {"se": float(np.std(means, ddof=1)), "ci_low": float(low), "ci_high": float(high)}


def mcnemar_exact(
    self_correct: Sequence[bool] | np.ndarray, cross_correct: Sequence[bool] | np.ndarray
) -> dict:
    """Exact McNemar test: two-sided binomial test of the discordant pairs against p=0.5.

    self_only = #(self right, cross wrong), cross_only = #(self wrong, cross right).
    p_value = 1.0 when there are no discordant pairs (no evidence either way).
    """
    s = _as_binary(self_correct, "self_correct")
    c = _as_binary(cross_correct, "cross_correct")
    if s.size != c.size:
        raise ValueError(f"self_correct has {s.size} items but cross_correct has {c.size}; they must be paired")
    self_only = int(np.sum((s == 1) & (c == 0)))
    cross_only = int(np.sum((s == 0) & (c == 1)))
    n_disc = self_only + cross_only
    p = 1.0 if n_disc == 0 else float(sps.binomtest(self_only, n_disc, 0.5, alternative="two-sided").pvalue)
    return {"self_only": self_only, "cross_only": cross_only, "n_discordant": n_disc, "p_value": p}


def paired_comparison(
    self_correct: Sequence[bool] | np.ndarray,
    cross_correct: Sequence[bool] | np.ndarray,
    clusters: Sequence[Hashable] | None = None,
    n_resamples: int = 2000,
    seed: int | None = 42,
) -> dict:
    """Self- vs cross-prediction on the same items: Δ = mean(self − cross) with SE, CI and tests.

    * SE: sd(d, ddof=1)/√n on the per-item differences d; with `clusters`, the cluster-robust SE
      of d (C/(C-1) factor).
    * CI: Agresti-Min (`agresti_min_interval`) on the paired table; with `clusters`, on the table
      scaled to the effective n of d (`effective_n`), so repeated items do not narrow it.
    * McNemar exact p-value on the discordant pairs (it ignores clusters).
    * Paired percentile bootstrap of Δ over items, or over whole clusters when given; NaN when no
      pair is discordant (every resample would be 0, a zero-width interval that means nothing).
    """
    s = _as_binary(self_correct, "self_correct")
    c = _as_binary(cross_correct, "cross_correct")
    if s.size != c.size:
        raise ValueError(f"self_correct has {s.size} items but cross_correct has {c.size}; they must be paired")
    _check_resampling(n_resamples, seed)
    n = int(s.size)
    d = s - c
    delta = float(d.mean()) if n else NAN

    if clusters is None:
        codes = np.arange(n, dtype=np.int64)
        se, n_clusters = _sample_se(d), n
    else:
        codes = _cluster_codes(clusters, n)
        se, n_clusters = _clustered_se(d, codes)

    test = mcnemar_exact(s, c)
    n_eff = effective_n(d, codes)
    scale = n_eff / n if n else 0.0
    ci_low, ci_high = agresti_min_interval(test["self_only"] * scale, test["cross_only"] * scale, n_eff)

    if n_clusters >= 2 and test["n_discordant"] > 0:
        boot = _bootstrap_means(d, n_resamples, np.random.default_rng(seed), None if clusters is None else codes)
        boot_low, boot_high = (float(v) for v in np.percentile(boot, [2.5, 97.5]))
    else:
        boot_low = boot_high = NAN

    return {
        "n": n,
        "n_clusters": int(n_clusters),
        "n_effective": n_eff,
        "self_accuracy": float(s.mean()) if n else NAN,
        "cross_accuracy": float(c.mean()) if n else NAN,
        "delta": delta,
        "se": se,
        "ci_low": ci_low,
        "ci_high": ci_high,
        "ci_method": "agresti-min" if clusters is None else "agresti-min, clustered effective n",
        "mcnemar_p": test["p_value"],
        "self_only": test["self_only"],
        "cross_only": test["cross_only"],
        "boot_ci_low": boot_low,
        "boot_ci_high": boot_high,
    }


def _as_pvalues(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"p_values must be a 1-D sequence, got shape {p.shape}")
    finite = p[~np.isnan(p)]
    if ((finite < 0) | (finite > 1)).any():
        raise ValueError(f"p_values must lie in [0, 1] (or be NaN), got {finite[(finite < 0) | (finite > 1)][0]!r}")
    return p


def holm(p_values: Sequence[float] | np.ndarray) -> list[float]:
    """Holm step-down adjusted p-values (FWER). NaN entries stay NaN and do not count toward m."""
    p = _as_pvalues(p_values)
    out = np.full(p.size, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = ok.size
    if m:
        order = ok[np.argsort(p[ok], kind="stable")]
        scaled = (m - np.arange(m)) * p[order]  # (m - j + 1) * p_(j), j = 1..m
        out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)  # enforce monotonicity
    return [float(v) for v in out]


def benjamini_hochberg(p_values: Sequence[float] | np.ndarray) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (FDR) via scipy; NaN entries stay NaN, excluded from m."""
    p = _as_pvalues(p_values)
    out = np.full(p.size, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = sps.false_discovery_control(p[ok], method="bh")
    return [float(v) for v in out]
