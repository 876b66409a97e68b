"""spearman_ci against scipy: the point estimate is spearmanr's, the CI agrees with scipy.stats.bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from repbench.stats import spearman_ci


def test_spearman_ci_matches_scipy():
    rng = np.random.default_rng(0)
    x = rng.choice([1, 2, 4, 8], size=80).astype(float)  # optimal K: heavily tied, as in real tables
    y = 0.1 * x + rng.normal(size=80)
    rho, low, high, p = spearman_ci(x, y, n_bootstrap=4000, seed=1)
    ref = scipy.stats.spearmanr(x, y)
    assert rho == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)

    def stat(a, b):
        return scipy.stats.spearmanr(a, b).statistic

    boot = scipy.stats.bootstrap((x, y), stat, paired=True, vectorized=False, n_resamples=4000,
                                 method="percentile", random_state=2).confidence_interval
    assert low == pytest.approx(boot.low, abs=0.03) and high == pytest.approx(boot.high, abs=0.03)


def test_spearman_undefined_for_a_constant():
    assert all(np.isnan(v) for v in spearman_ci(np.ones(10), np.arange(10.0)))
