"""Bootstrap confidence intervals for the report (seeded, vectorised)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def bootstrap_ci(
    samples, statistic: Callable = np.median, n_resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap CI of `statistic` (a numpy reducer taking `axis=`) over raw samples.

    Resamples are drawn in chunks so a long sample list never allocates more than ~2M values at once.
    A single sample gives a degenerate interval (the value itself); an empty list gives NaNs.
    """
    x = np.asarray(samples, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    if x.size == 1:
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // x.size)
    stats = np.empty(n_resamples)
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        idx = rng.integers(0, x.size, size=(stop - start, x.size))
        stats[start:stop] = statistic(x[idx], axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(low), float(high)
