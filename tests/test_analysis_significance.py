"""Paired tests, corrections and the significance table against scipy, enumeration and hand values."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from repbench.analysis.significance import SIGNIFICANCE_COLUMNS, significance_table
from repbench.errors import RepbenchError
from repbench.stats import (
    adjust_pvalues,
    bootstrap_mean_ci,
    paired_test,
    randomization_pvalues,
    t_pvalues,
    wilcoxon_pvalues,
)


def _pair(n: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    b = rng.random(n)
    a = np.clip(b + shift + rng.normal(0, 0.2, n), 0, 1)
    return a, b


@pytest.mark.parametrize("n,shift,seed", [(10, 0.05, 1), (37, 0.0, 2), (200, 0.03, 3), (1000, 0.01, 4)])
def test_t_test_equals_scipy_ttest_rel(n, shift, seed):
    a, b = _pair(n, shift, seed)
    res = paired_test(a, b, test="t")
    ref = scipy.stats.ttest_rel(a, b)
    assert res["p_value"] == pytest.approx(ref.pvalue, rel=1e-10, abs=1e-15)
    assert res["mean_diff"] == pytest.approx(np.mean(a) - np.mean(b), abs=1e-12)


def test_t_test_zero_variance():
    b = np.array([0.1, 0.2, 0.3, 0.4])
    assert t_pvalues(b - b)[0] == 1.0  # identical systems
    k = np.array([1.0, 2.0, 3.0, 4.0])  # exactly constant differences: t is infinite
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy warns about the zero variance
        ref = scipy.stats.ttest_rel(k + 1.0, k).pvalue
    assert t_pvalues((k + 1.0) - k)[0] == ref == 0.0


@pytest.mark.parametrize("n,shift,seed", [(12, 0.1, 5), (30, 0.0, 6), (80, 0.05, 7), (500, 0.02, 8)])
def test_wilcoxon_equals_scipy(n, shift, seed):
    a, b = _pair(n, shift, seed)
    # ties and zero differences, as metric values have
    a[:3] = b[:3]
    a = np.round(a, 2)
    b = np.round(b, 2)
    assert paired_test(a, b, test="wilcoxon")["p_value"] == pytest.approx(scipy.stats.wilcoxon(a, b).pvalue,
                                                                            rel=1e-12)


def test_wilcoxon_all_zero_differences_is_one():
    a = np.array([0.5, 0.2, 0.9])
    assert wilcoxon_pvalues(a - a)[0] == 1.0


def _enumerated_p(d: np.ndarray) -> float:
    """Reference: every sign vector over all n queries, |sum| at least the observed one."""
    obs = abs(d.sum())
    hits = 0
    signs = list(itertools.product((1.0, -1.0), repeat=len(d)))
    for s in signs:
        if abs(np.dot(s, d)) >= obs - 1e-12:
            hits += 1
    return hits / len(signs)


@pytest.mark.parametrize("seed", range(5))
def test_randomization_exact_equals_enumeration(seed):
    rng = np.random.default_rng(seed)
    d = np.round(rng.normal(0.05, 0.2, 10), 3)
    d[0] = 0.0  # zero differences do not change the statistic
    p = paired_test(d, np.zeros_like(d), test="randomization", n_permutations=10_000)["p_value"]
    assert p == pytest.approx(_enumerated_p(d), abs=1e-15)


def test_randomization_exact_with_ties_counts_both_extremes():
    # all differences equal: only the identity and the full flip reach |sum| -> p = 2 / 2^4
    d = np.array([0.1, 0.1, 0.1, 0.1])
    assert randomization_pvalues(d)[0] == pytest.approx(2 / 16)
    assert randomization_pvalues(np.zeros(6))[0] == 1.0


@pytest.mark.parametrize("shift,seed", [(0.02, 11), (0.0, 12), (0.04, 13)])
def test_randomization_agrees_with_scipy_permutation_test(shift, seed):
    a, b = _pair(300, shift, seed)
    n_perm = 10_000
    ours = paired_test(a, b, test="randomization", n_permutations=n_perm, seed=3)["p_value"]
    ref = scipy.stats.permutation_test(
        (a, b), lambda x, y, axis: np.mean(x - y, axis=axis), permutation_type="samples",
        n_resamples=n_perm, vectorized=True, alternative="two-sided", random_state=np.random.default_rng(99),
    ).pvalue
    # two independent Monte-Carlo estimates of the same p: allow 4 standard errors of their difference
    p = (ours + ref) / 2
    se = np.sqrt(2 * max(p * (1 - p), 1 / n_perm) / n_perm)
    assert abs(ours - ref) <= 4 * se + 1e-4, (ours, ref)
    if shift == 0.04:
        assert ours < 0.05  # a real effect is detected


def test_randomization_seeded_and_bounded():
    a, b = _pair(500, 0.0, 21)
    p1 = paired_test(a, b, test="randomization", seed=7)["p_value"]
    p2 = paired_test(a, b, test="randomization", seed=7)["p_value"]
    assert p1 == p2
    # a huge effect: no random sign vector reaches it, so p = 1 / (n + 1), never 0
    d = np.full(100, 0.3) + np.random.default_rng(0).normal(0, 0.01, 100)
    assert randomization_pvalues(d, n_permutations=999)[0] == pytest.approx(1 / 1000)


def test_randomization_row_independent_of_other_rows():
    rng = np.random.default_rng(5)
    d = rng.normal(0.01, 0.2, (4, 300))
    together = randomization_pvalues(d, seed=2)
    alone = [randomization_pvalues(row, seed=2)[0] for row in d]
    np.testing.assert_array_equal(together, alone)


def test_bootstrap_ci_matches_normal_interval_and_is_seeded():
    rng = np.random.default_rng(8)
    d = rng.normal(0.02, 0.3, 2000)
    low, high = bootstrap_mean_ci(d, n_bootstrap=4000, seed=1)
    half = 1.96 * d.std(ddof=1) / np.sqrt(d.size)
    assert low[0] == pytest.approx(d.mean() - half, abs=0.15 * half)
    assert high[0] == pytest.approx(d.mean() + half, abs=0.15 * half)
    low2, high2 = bootstrap_mean_ci(d, n_bootstrap=4000, seed=1)
    assert (low2[0], high2[0]) == (low[0], high[0])


def test_effect_size_is_dz():
    a, b = _pair(50, 0.05, 9)
    d = a - b
    assert paired_test(a, b)["effect_size"] == pytest.approx(d.mean() / d.std(ddof=1), rel=1e-12)


def test_corrections_hand_computed():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjust_pvalues(p, "bonferroni"), [0.04, 0.16, 0.12, 0.02])
    # Holm: sorted 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> running max 0.06
    np.testing.assert_allclose(adjust_pvalues(p, "holm"), [0.03, 0.06, 0.06, 0.02])
    # BH: 0.005*4/1=0.02, 0.01*4/2=0.02, 0.03*4/3=0.04, 0.04*4/4=0.04 -> running min from the top
    np.testing.assert_allclose(adjust_pvalues(p, "bh"), [0.02, 0.04, 0.04, 0.02])
    q = np.array([0.5, 0.2, 0.6])
    np.testing.assert_allclose(adjust_pvalues(q, "bonferroni"), [1.0, 0.6, 1.0])
    np.testing.assert_allclose(adjust_pvalues(q, "holm"), [1.0, 0.6, 1.0])  # 0.6, max(0.6,1.0), max(.., 0.6)
    np.testing.assert_allclose(adjust_pvalues(q, "bh"), [0.6, 0.6, 0.6])  # 0.6, 0.75, 0.6 -> min from top
    with pytest.raises(RepbenchError, match="unknown correction"):
        adjust_pvalues(p, "sidak")


def _matrix(seed: int = 0, n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = rng.random(n)
    rows = {"base": base, "better": np.clip(base + 0.1 + rng.normal(0, 0.05, n), 0, 1),
            "same": np.clip(base + rng.normal(0, 0.05, n), 0, 1)}
    return pd.DataFrame(rows).T.set_axis([f"q{i}" for i in range(n)], axis=1)


def test_significance_table_against_baseline():
    m = _matrix()
    table = significance_table(m, baseline="base", measure="ndcg_cut_10", test="t", correction="holm")
    assert tuple(table.columns) == SIGNIFICANCE_COLUMNS
    assert list(table["system"]) == ["better", "same"] and set(table["baseline"]) == {"base"}
    raw = [scipy.stats.ttest_rel(m.loc[s], m.loc["base"]).pvalue for s in ("better", "same")]
    np.testing.assert_allclose(table["p_value"], raw, rtol=1e-10)
    lo, hi = sorted(raw)
    expected_holm = {lo: min(2 * lo, 1), hi: min(max(2 * lo, hi), 1)}
    np.testing.assert_allclose(table["p_adjusted"], [expected_holm[p] for p in raw], rtol=1e-10)
    assert list(table["significant"]) == [True, False]
    assert (table["n"] == 60).all()
    np.testing.assert_allclose(table["mean_system"], [m.loc["better"].mean(), m.loc["same"].mean()])
    assert (table["ci_low"] < table["mean_diff"]).all() and (table["mean_diff"] < table["ci_high"]).all()


def test_significance_table_all_pairs_and_errors():
    m = _matrix()
    table = significance_table(m, baseline="same", all_pairs=True, test="wilcoxon", correction="bh")
    assert list(zip(table["system"], table["baseline"], strict=True)) == [
        ("base", "same"), ("better", "same"), ("better", "base")]
    with pytest.raises(RepbenchError, match="baseline 'nope' is not among"):
        significance_table(m, baseline="nope")
    bad = m.copy()
    bad.loc["same", "q3"] = np.nan
    with pytest.raises(RepbenchError, match="system same, query q3"):
        significance_table(bad, baseline="base")
