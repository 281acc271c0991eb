"""Statistics checked against hand calculations and scipy's own results."""

from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pytest
from scipy import stats as sps

from introspection.analysis.stats import (
    accuracy_ci,
    agresti_min_interval,
    benjamini_hochberg,
    bootstrap_accuracy_ci,
    clustered_accuracy_ci,
    holm,
    mcnemar_exact,
    paired_comparison,
    wilson_interval,
)

# ----------------------------------------------------------------------------- accuracy_ci (Wilson)

Z = sps.norm.ppf(0.975)


def _scipy_wilson(k: int, n: int) -> tuple[float, float]:
    ci = sps.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return ci.low, ci.high


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I, method 3
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_wilson_interval_matches_newcombe_and_scipy(k, n, low, high):
    assert wilson_interval(k, n) == pytest.approx((low, high), abs=5e-5)
    assert wilson_interval(k, n) == pytest.approx(_scipy_wilson(k, n), abs=1e-12)


def test_accuracy_ci_is_wilson_with_sample_se():
    x = [1, 0, 1, 0, 1, 0, 0, 0, 0, 0]
    r = accuracy_ci(np.array(x, dtype=bool))
    assert r["se"] == pytest.approx(statistics.stdev(x) / math.sqrt(len(x)))  # ddof=1
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(_scipy_wilson(3, 10), abs=1e-12)
    assert r["ci_method"] == "wilson"


def test_accuracy_ci_has_width_at_the_extremes():
    # Wilson at p = 1: [n / (n + z^2), 1]; at p = 0: [0, z^2 / (n + z^2)]
    for n in (1, 4, 320):
        top, bottom = accuracy_ci([True] * n), accuracy_ci([False] * n)
        assert (top["ci_low"], top["ci_high"]) == pytest.approx((n / (n + Z**2), 1.0))
        assert (bottom["ci_low"], bottom["ci_high"]) == pytest.approx((0.0, Z**2 / (n + Z**2)))
        assert top["ci_high"] - top["ci_low"] > 0 and bottom["ci_high"] - bottom["ci_low"] > 0
        assert top["ci_high"] == 1.0 and bottom["ci_low"] == 0.0  # exactly inside [0, 1]


def test_accuracy_ci_degenerate_sizes_give_nan_not_errors():
    empty = accuracy_ci([])
    assert empty["n"] == 0 and all(math.isnan(empty[k]) for k in ("accuracy", "se", "ci_low", "ci_high"))
    one = accuracy_ci([True])
    assert one["accuracy"] == 1.0 and math.isnan(one["se"]) and one["ci_low"] == pytest.approx(1 / (1 + Z**2))


def test_accuracy_ci_is_json_serialisable_plain_types():
    r = accuracy_ci([1, 0, 1])
    assert all(type(v) in (float, int, str) for v in r.values())
    json.dumps(r)


@pytest.mark.parametrize("bad", [[0, 2], [True, None], [[1, 0], [0, 1]], ["yes"], [0.5], [float("nan")]])
def test_accuracy_ci_rejects_non_binary_input(bad):
    with pytest.raises(ValueError, match="correct"):
        accuracy_ci(bad)


# ----------------------------------------------------------------------------- clustered


def test_clustered_se_hand_example():
    # mean 0.5; residual sums per cluster a=+1, b=-1, c=0; var = 3/2 * 2 / 6^2 = 1/12
    r = clustered_accuracy_ci([1, 1, 0, 0, 1, 0], ["a", "a", "b", "b", "c", "c"])
    assert r["n"] == 6 and r["n_clusters"] == 3
    assert r["se"] == pytest.approx(math.sqrt(1 / 12))
    # n_eff = p(1-p) / (sum of squared residual sums / n^2) = 0.25 / (2/36) = 4.5
    assert r["n_effective"] == pytest.approx(4.5)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(wilson_interval(2.25, 4.5))


def test_clustered_with_singleton_clusters_equals_plain_wilson():
    x = [1, 0, 1, 1, 0, 0, 1, 1]
    clustered, plain = clustered_accuracy_ci(x, list(range(len(x)))), accuracy_ci(x)
    assert clustered["se"] == pytest.approx(plain["se"])
    assert clustered["n_effective"] == len(x)
    assert (clustered["ci_low"], clustered["ci_high"]) == pytest.approx((plain["ci_low"], plain["ci_high"]))


def test_clustered_duplicated_items_count_once():
    # An item copied k times (one per property) carries one item's worth of information.
    unique = [1, 0, 0, 1, 1, 0, 1]
    rows = [v for v in unique for _ in range(3)]
    clusters = [i for i in range(len(unique)) for _ in range(3)]
    r = clustered_accuracy_ci(rows, clusters)
    assert r["se"] == pytest.approx(accuracy_ci(unique)["se"])
    assert r["n_effective"] == pytest.approx(7)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(_scipy_wilson(4, 7))
    assert r["ci_high"] - r["ci_low"] > accuracy_ci(rows)["ci_high"] - accuracy_ci(rows)["ci_low"]


def test_clustered_all_equal_uses_the_number_of_items():
    # 80 items x 4 properties, all correct: no variance, so n_eff = 80 items, Wilson [80/(80+z^2), 1]
    r = clustered_accuracy_ci([True] * 320, [i // 4 for i in range(320)])
    assert r["n_effective"] == 80 and r["ci_high"] == 1.0
    assert r["ci_low"] == pytest.approx(80 / (80 + Z**2))
    assert r["ci_low"] < accuracy_ci([True] * 320)["ci_low"]  # wider than if the 320 rows were independent


def test_clustered_single_cluster_and_bad_labels():
    r = clustered_accuracy_ci([1, 0, 1], ["t", "t", "t"])
    assert r["n_clusters"] == 1 and math.isnan(r["se"]) and r["accuracy"] == pytest.approx(2 / 3)
    assert r["n_effective"] == 1 and (r["ci_low"], r["ci_high"]) == pytest.approx(wilson_interval(2 / 3, 1))
    empty = clustered_accuracy_ci([], [])
    assert empty["n_clusters"] == 0 and math.isnan(empty["ci_low"])
    with pytest.raises(ValueError, match="clusters"):
        clustered_accuracy_ci([1, 0], ["a"])
    with pytest.raises(ValueError, match="clusters"):
        clustered_accuracy_ci([1, 0], ["a", None])


# ----------------------------------------------------------------------------- bootstrap


def test_bootstrap_matches_a_plain_loop_with_rng_choice():
    x = np.array([1, 0, 1, 1, 0, 1, 0, 1, 1, 1, 0, 0, 1], dtype=float)
    rng = np.random.default_rng(42)
    means = [np.mean(rng.choice(x, size=x.size, replace=True)) for _ in range(1000)]
    low, high = np.percentile(means, [2.5, 97.5])
    r = bootstrap_accuracy_ci(x.astype(bool))
    assert r["ci_low"] == pytest.approx(low) and r["ci_high"] == pytest.approx(high)
    assert r["accuracy"] == pytest.approx(x.mean()) and r["n_resamples"] == 1000
    assert r["se"] == pytest.approx(np.std(means, ddof=1))


def test_bootstrap_edge_cases():
    assert bootstrap_accuracy_ci([1, 1, 1])["ci_low"] == 1.0
    assert math.isnan(bootstrap_accuracy_ci([1])["ci_low"])
    assert math.isnan(bootstrap_accuracy_ci([])["accuracy"])
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_accuracy_ci([1, 0], n_resamples=0)


# ----------------------------------------------------------------------------- McNemar


def _table(b: int, c: int, both: int = 0, neither: int = 0) -> tuple[list[int], list[int]]:
    """Paired vectors with b self-only, c cross-only and the given concordant counts."""
    s = [1] * b + [0] * c + [1] * both + [0] * neither
    x = [0] * b + [1] * c + [1] * both + [0] * neither
    return s, x


def test_mcnemar_hand_binomial():
    # 7 vs 2 discordant: P(X>=7 | n=9, 1/2) = (36+9+1)/512, doubled by symmetry
    s, c = _table(7, 2, both=10, neither=5)
    r = mcnemar_exact(s, c)
    assert (r["self_only"], r["cross_only"], r["n_discordant"]) == (7, 2, 9)
    assert r["p_value"] == pytest.approx(92 / 512)
    # 5 vs 0: 2 * (1/2)^5
    assert mcnemar_exact(*_table(5, 0, both=3))["p_value"] == pytest.approx(0.0625)
    # direction does not matter for the two-sided test
    assert mcnemar_exact(*_table(2, 7))["p_value"] == pytest.approx(92 / 512)


def test_mcnemar_agrees_with_binomtest_and_handles_no_discordance():
    s, c = _table(13, 4, both=20, neither=11)
    assert mcnemar_exact(s, c)["p_value"] == pytest.approx(sps.binomtest(13, 17, 0.5).pvalue)
    assert mcnemar_exact(*_table(0, 0, both=4, neither=2))["p_value"] == 1.0
    assert mcnemar_exact([], [])["p_value"] == 1.0
    with pytest.raises(ValueError, match="paired"):
        mcnemar_exact([1, 0], [1])


# ----------------------------------------------------------------------------- paired_comparison


def _agresti_min_by_marginals(n11: float, n12: float, n21: float, n22: float) -> tuple[float, float]:
    """Agresti & Min (2005), written from the marginals: add 1/2 to every cell, then the paired Wald
    interval with Var = [p1(1-p1) + p2(1-p2) - 2(p11 p22 - p12 p21)] / n (n12 = self only)."""
    a, b, c, d = n11 + 0.5, n12 + 0.5, n21 + 0.5, n22 + 0.5
    n = a + b + c + d
    p1, p2 = (a + b) / n, (a + c) / n
    var = (p1 * (1 - p1) + p2 * (1 - p2) - 2 * (a * d - b * c) / n**2) / n
    half = Z * math.sqrt(var)
    return max(-1.0, p1 - p2 - half), min(1.0, p1 - p2 + half)


def test_agresti_min_interval_matches_the_marginal_form():
    for n11, n12, n21, n22 in [(10, 7, 2, 5), (0, 0, 0, 320), (50, 0, 0, 0), (3, 12, 0, 1), (0, 40, 0, 0)]:
        n = n11 + n12 + n21 + n22
        assert agresti_min_interval(n12, n21, n) == pytest.approx(_agresti_min_by_marginals(n11, n12, n21, n22))
    # no discordant pair: centred on 0, half-width z/(n+2) (Var = (1/(n+2))/(n+2))
    assert agresti_min_interval(0, 0, 320) == pytest.approx((-Z / 322, Z / 322))
    assert all(math.isnan(v) for v in agresti_min_interval(0, 0, 0))


def test_paired_comparison_hand_example():
    s = [1, 1, 1, 0, 1, 0]
    c = [0, 1, 0, 0, 1, 1]
    d = [1, 0, 1, 0, 0, -1]  # mean 1/6; sum of squared residuals 102/36
    se = math.sqrt(102 / 36 / 5) / math.sqrt(6)
    r = paired_comparison(s, c)
    assert r["n"] == 6 and r["self_accuracy"] == pytest.approx(4 / 6) and r["cross_accuracy"] == pytest.approx(3 / 6)
    assert r["delta"] == pytest.approx(1 / 6)
    assert r["se"] == pytest.approx(se)
    assert r["se"] == pytest.approx(statistics.stdev(d) / math.sqrt(6))
    # table: both right 2, self only 2, cross only 1, both wrong 1
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(_agresti_min_by_marginals(2, 2, 1, 1))
    assert r["n_effective"] == 6 and r["ci_method"] == "agresti-min"
    assert (r["self_only"], r["cross_only"]) == (2, 1)
    assert r["mcnemar_p"] == pytest.approx(1.0)  # 2 of 3: P(X>=2)=1/2, doubled
    json.dumps(r)


def test_paired_all_agree_has_a_nonzero_interval():
    r = paired_comparison([1] * 200 + [0] * 120, [1] * 200 + [0] * 120)
    assert r["delta"] == 0.0 and r["se"] == 0.0
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((-Z / 322, Z / 322))
    # clustered: 80 items x 4 properties, no discordant pair: the table is scaled to the 80 items
    clustered = paired_comparison([1] * 320, [1] * 320, clusters=[i // 4 for i in range(320)])
    assert clustered["n_effective"] == 80
    assert (clustered["ci_low"], clustered["ci_high"]) == pytest.approx((-Z / 82, Z / 82))
    assert math.isnan(clustered["boot_ci_low"])  # every resample would be 0: no bootstrap interval


def test_paired_item_bootstrap_matches_a_plain_loop():
    rng_data = np.random.default_rng(0)
    s = rng_data.random(40) < 0.7
    c = rng_data.random(40) < 0.5
    d = s.astype(float) - c.astype(float)
    rng = np.random.default_rng(7)
    boot = [rng.choice(d, size=d.size, replace=True).mean() for _ in range(500)]
    r = paired_comparison(s, c, n_resamples=500, seed=7)
    assert (r["boot_ci_low"], r["boot_ci_high"]) == pytest.approx(tuple(np.percentile(boot, [2.5, 97.5])))


def test_paired_clustered_se_interval_and_cluster_bootstrap_by_hand():
    s = [1, 1, 0, 1, 0, 0, 1, 1, 1, 0]
    c = [0, 1, 0, 0, 1, 0, 0, 1, 0, 0]
    clusters = ["t1", "t1", "t1", "t2", "t2", "t3", "t3", "t3", "t4", "t4"]
    d = np.array(s, float) - np.array(c, float)
    labels = sorted(set(clusters))
    members = {k: [i for i, g in enumerate(clusters) if g == k] for k in labels}
    # cluster-robust variance written out from the formula
    mean = d.mean()
    sq = sum(sum(d[i] - mean for i in idx) ** 2 for idx in members.values())
    n_c, n = len(labels), len(d)
    se = math.sqrt(n_c / (n_c - 1) * sq / n**2)
    r = paired_comparison(s, c, clusters=clusters, n_resamples=300, seed=3)
    assert r["n_clusters"] == 4 and r["se"] == pytest.approx(se)
    # effective n: per-row variance of d over the clustered variance of its mean (no small-sample factor)
    n_eff = min(n, np.mean((d - mean) ** 2) / (sq / n**2))
    assert r["n_effective"] == pytest.approx(n_eff)
    k = n_eff / n  # self only 4, cross only 1, concordant 5 (both right 2, both wrong 3), scaled to n_eff
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(_agresti_min_by_marginals(2 * k, 4 * k, 1 * k, 3 * k))
    # cluster bootstrap: draw whole clusters (in first-seen order), pool their rows
    rng = np.random.default_rng(3)
    order = list(dict.fromkeys(clusters))
    boot = []
    for _ in range(300):
        picked = rng.choice(len(order), size=len(order), replace=True)
        rows = [i for p in picked for i in members[order[p]]]
        boot.append(d[rows].mean())
    assert (r["boot_ci_low"], r["boot_ci_high"]) == pytest.approx(tuple(np.percentile(boot, [2.5, 97.5])))


def test_paired_singleton_clusters_match_unclustered():
    s = [1, 0, 1, 1, 0, 1, 1, 0]
    c = [0, 0, 1, 0, 1, 0, 1, 0]
    plain = paired_comparison(s, c, n_resamples=200)
    clustered = paired_comparison(s, c, clusters=list(range(8)), n_resamples=200)
    for key in ("se", "n_effective", "ci_low", "ci_high", "boot_ci_low", "boot_ci_high"):
        assert clustered[key] == pytest.approx(plain[key])


def test_paired_comparison_edge_cases():
    with pytest.raises(ValueError, match="paired"):
        paired_comparison([1, 0, 1], [1, 0])
    empty = paired_comparison([], [])
    assert empty["n"] == 0 and math.isnan(empty["delta"]) and math.isnan(empty["boot_ci_low"])
    assert math.isnan(empty["ci_low"])
    one = paired_comparison([1], [0])
    assert one["delta"] == 1.0 and math.isnan(one["se"])
    assert (one["ci_low"], one["ci_high"]) == pytest.approx(_agresti_min_by_marginals(0, 1, 0, 0))
    same = paired_comparison([1, 0, 1], [1, 0, 1])
    assert same["delta"] == 0.0 and same["se"] == 0.0 and same["mcnemar_p"] == 1.0
    assert same["ci_high"] - same["ci_low"] > 0
    one_cluster = paired_comparison([1, 0, 1], [0, 0, 1], clusters=["a", "a", "a"])
    assert math.isnan(one_cluster["se"]) and math.isnan(one_cluster["boot_ci_low"])
    assert one_cluster["n_effective"] == 1  # three rows of one item count as one


# ----------------------------------------------------------------------------- multiple testing


def test_holm_textbook_example():
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4*.005=.02, 3*.01=.03, 2*.03=.06, max(.06, 1*.04)=.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1, monotone


def test_benjamini_hochberg_textbook_example():
    # p*m/rank: .005*4/1=.02, .01*4/2=.02, .03*4/3=.04, .04*4/4=.04 (already monotone)
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    # step-up minimum: .04*3/2=.06 is lowered to the next rank's .05*3/3=.05
    assert benjamini_hochberg([0.01, 0.04, 0.05]) == pytest.approx([0.03, 0.05, 0.05])


def test_adjustments_are_nan_safe_and_validate():
    adj = holm([0.01, float("nan"), 0.04, 0.03, 0.005])
    assert math.isnan(adj[1])
    assert [adj[i] for i in (0, 2, 3, 4)] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    bh = benjamini_hochberg([float("nan"), 0.01, 0.04, 0.03, 0.005])
    assert math.isnan(bh[0]) and bh[1:] == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert holm([]) == [] and benjamini_hochberg([]) == []
    assert all(math.isnan(v) for v in holm([float("nan")] * 2))
    with pytest.raises(ValueError, match="p_values"):
        holm([0.2, 1.5])
    with pytest.raises(ValueError, match="p_values"):
        benjamini_hochberg([-0.1])
