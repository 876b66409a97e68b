"""Summary statistics of raw latency samples (docs/methodology.md rules 5 and 6).

Percentiles are published only above MLPerf's early-stopping sample-size floors: with fewer samples
the tail estimate is not trustworthy, so the field is null ("insufficient n"), never a guess.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
from scipy.special import betainc

from repbench.stats.bootstrap import bootstrap_median_ci

# IQR/median thresholds of torch.utils.benchmark.Measurement: above NOISY warn, above INVALID rerun.
NOISY_IQR_RATIO = 0.10
INVALID_IQR_RATIO = 0.25
EARLY_STOPPING_CONFIDENCE = 0.99


@cache
def min_samples_for_percentile(p: float, confidence: float = EARLY_STOPPING_CONFIDENCE) -> int:
    """Smallest n at which MLPerf LoadGen's early stopping can certify the p-quantile.

    LoadGen (early_stopping.cc, tolerance 0, one over-latency query allowed) finds the least h with
    I_p(h, 2) <= 1 - confidence and requires h + 1 queries; that gives 64 for p90 and 662 for p99.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"percentile must be in (0, 1), got {p}")
    target = 1.0 - confidence
    lo, hi = 1, 2
    while betainc(hi, 2, p) > target:
        hi *= 2
    while lo < hi:  # betainc(h, 2, p) decreases in h: binary search for the boundary
        mid = (lo + hi) // 2
        if betainc(mid, 2, p) <= target:
            hi = mid
        else:
            lo = mid + 1
    return lo + 1


def _gated_percentile(x: np.ndarray, q: float) -> float | None:
    if x.size < min_samples_for_percentile(q / 100.0):
        return None
    return float(np.percentile(x, q))


def summarize(samples: Sequence[float] | np.ndarray, seed: int = 0, n_boot: int = 2000) -> dict[str, Any]:
    """n, median, mean, std, IQR, min, max, p90/p95/p99 (null below the floors), CV, median 95% CI.

    `flag` is "ok", "noisy" (IQR/median > 10%) or "invalid" (> 25%; rerun the cell).
    """
    x = np.asarray(samples, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"samples must be one-dimensional, got shape {x.shape}")
    if x.size == 0:
        raise ValueError("no samples to summarize")
    if not np.all(np.isfinite(x)):
        raise ValueError("samples contain NaN or infinity")
    n = int(x.size)
    median = float(np.median(x))
    mean = float(np.mean(x))
    std = float(np.std(x, ddof=1)) if n >= 2 else None
    q25, q75 = (float(v) for v in np.percentile(x, [25, 75]))
    iqr = q75 - q25
    ci_low, ci_high = bootstrap_median_ci(x, n_boot=n_boot, seed=seed)
    iqr_ratio = iqr / median if median > 0 else None
    if iqr_ratio is None:
        flag = None
    elif iqr_ratio > INVALID_IQR_RATIO:
        flag = "invalid"
    elif iqr_ratio > NOISY_IQR_RATIO:
        flag = "noisy"
    else:
        flag = "ok"
    return {
        "n": n,
        "median": median,
        "mean": mean,
        "std": std,
        "q25": q25,
        "q75": q75,
        "iqr": iqr,
        "min": float(np.min(x)),
        "max": float(np.max(x)),
        "p90": _gated_percentile(x, 90),
        "p95": _gated_percentile(x, 95),
        "p99": _gated_percentile(x, 99),
        "cv": (std / mean) if (std is not None and mean > 0) else None,
        "median_ci_low": ci_low,
        "median_ci_high": ci_high,
        "iqr_over_median": iqr_ratio,
        "flag": flag,
    }


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or null when either is missing or b is zero (used for K-vs-K=1 tables)."""
    if a is None or b is None or b == 0 or math.isnan(a) or math.isnan(b):
        return None
    return a / b
