"""Latency summary statistics against numpy/scipy/statistics references and MLPerf's published floors."""

from __future__ import annotations

import statistics

import numpy as np
import pytest
from scipy import stats as sstats

from repbench.stats import bootstrap_median_ci, min_samples_for_percentile, summarize


def test_mlperf_floors_match_published_values():
    # MLPerf LoadGen early stopping: 64 queries for the 90th percentile, 662 for the 99th.
    assert min_samples_for_percentile(0.90) == 64
    assert min_samples_for_percentile(0.99) == 662
    # p95 sits between them; check the defining inequality directly: the floor is the first n whose
    # (n-1) passing queries alongside one failing one give P(Bin(n, p) >= n-1) <= 1%.
    n = min_samples_for_percentile(0.95)
    tail = lambda m: sstats.binom.sf(m - 2, m, 0.95)  # noqa: E731  P(X >= m-1)
    assert tail(n) <= 0.01 < tail(n - 1)


def test_summary_matches_references():
    rng = np.random.default_rng(3)
    x = rng.lognormal(mean=-4, sigma=0.3, size=200)
    s = summarize(x)
    assert s["n"] == 200
    assert s["median"] == pytest.approx(statistics.median(x))
    assert s["mean"] == pytest.approx(statistics.fmean(x))
    assert s["std"] == pytest.approx(statistics.stdev(x))
    assert s["iqr"] == pytest.approx(sstats.iqr(x))
    assert s["min"] == min(x) and s["max"] == max(x)
    assert s["cv"] == pytest.approx(statistics.stdev(x) / statistics.fmean(x))
    assert s["p90"] == pytest.approx(sstats.scoreatpercentile(x, 90))
    assert s["p95"] == pytest.approx(sstats.scoreatpercentile(x, 95))
    assert s["p99"] is None  # n = 200 < 662
    assert s["median_ci_low"] <= s["median"] <= s["median_ci_high"]


@pytest.mark.parametrize("n, p90_present, p99_present", [(63, False, False), (64, True, False),
                                                           (661, True, False), (662, True, True)])
def test_percentiles_gated_by_n(n, p90_present, p99_present):
    x = np.arange(1, n + 1, dtype=float)
    s = summarize(x, n_boot=50)
    assert (s["p90"] is not None) == p90_present
    assert (s["p99"] is not None) == p99_present
    if p99_present:
        assert s["p99"] == pytest.approx(np.percentile(x, 99))


def test_bootstrap_ci_hand_cases():
    # Constant samples: every resample has the same median.
    assert bootstrap_median_ci([2.0] * 10) == (2.0, 2.0)
    # Two values: resampled medians lie in [1, 2]; with 2000 draws both extremes appear.
    lo, hi = bootstrap_median_ci([1.0, 2.0], n_boot=2000, seed=1)
    assert (lo, hi) == (1.0, 2.0)
    assert bootstrap_median_ci([1.0]) == (None, None)
    # Seeded: reproducible.
    x = np.random.default_rng(0).normal(10, 1, 50)
    assert bootstrap_median_ci(x, seed=5) == bootstrap_median_ci(x, seed=5)


def test_noise_flags_follow_iqr_over_median():
    # torch Measurement thresholds: IQR/median <= 10% ok, <= 25% noisy, above invalid.
    base = np.array([1.0, 2.0, 3.0, 4.0, 5.0])  # q25 = 2, q75 = 4, median = 3
    for spread, flag in [(0.075, "ok"), (0.2, "noisy"), (0.3, "invalid")]:
        x = 100 + (base - 3) * spread * 100 / 2  # IQR = spread * 100, median = 100
        s = summarize(x, n_boot=10)
        assert s["iqr_over_median"] == pytest.approx(spread)
        assert s["flag"] == flag


def test_single_sample_and_bad_input():
    s = summarize([0.5])
    assert s["n"] == 1 and s["median"] == 0.5 and s["std"] is None and s["cv"] is None
    with pytest.raises(ValueError):
        summarize([])
    with pytest.raises(ValueError):
        summarize([1.0, float("nan")])
