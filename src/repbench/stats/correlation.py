"""Spearman's rank correlation with a percentile bootstrap CI over (x, y) pairs."""

from __future__ import annotations

import numpy as np
import scipy.stats

from repbench.stats.bootstrap import chunk_rows


def spearman_ci(x: np.ndarray, y: np.ndarray, n_bootstrap: int = 10_000, seed: int = 0,
                level: float = 0.95) -> tuple[float, float, float, float]:
    """(rho, ci_low, ci_high, p_value): Spearman's rho (scipy, average ranks for ties) with a percentile
    bootstrap CI over pairs. NaN when either variable is constant (rho undefined); resamples in which
    one becomes constant are left out of the CI."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n = x.size
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return np.nan, np.nan, np.nan, np.nan
    res = scipy.stats.spearmanr(x, y)
    rng = np.random.default_rng(seed)
    rhos = np.empty(n_bootstrap)
    chunk = chunk_rows(n)
    for start in range(0, n_bootstrap, chunk):
        r = min(chunk, n_bootstrap - start)
        idx = rng.integers(0, n, size=(r, n))
        rx = scipy.stats.rankdata(x[idx], axis=1)
        ry = scipy.stats.rankdata(y[idx], axis=1)
        rx -= rx.mean(axis=1, keepdims=True)
        ry -= ry.mean(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            rhos[start:start + r] = (rx * ry).sum(1) / np.sqrt((rx * rx).sum(1) * (ry * ry).sum(1))
    alpha = (1 - level) / 2
    finite = rhos[np.isfinite(rhos)]
    low, high = (np.quantile(finite, [alpha, 1 - alpha]) if finite.size else (np.nan, np.nan))
    return float(res.statistic), float(low), float(high), float(res.pvalue)
