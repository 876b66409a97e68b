"""Percentile bootstraps: of one statistic over raw samples, of many means sharing one set of query
resamples, and of a ratio of medians of two unpaired sample sets.

Every function takes a seed or a numpy Generator: the same inputs give the same interval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from repbench.errors import RepbenchError

# Rows of a sign / bootstrap matrix held at once: ~2**22 float64 cells (32 MiB) per chunk,
# independent of the number of comparisons so a random stream (and every p-value) does not depend on it.
_CHUNK_CELLS = 1 << 22


def as_diffs(d: np.ndarray) -> np.ndarray:
    d = np.asarray(d, dtype=np.float64)
    if d.ndim == 1:
        d = d[None, :]
    if d.ndim != 2:
        raise RepbenchError(f"expected a [comparisons, queries] difference matrix, got shape {d.shape}")
    if not np.isfinite(d).all():
        raise RepbenchError("paired differences contain NaN or infinite values")
    return d


def chunk_rows(n: int) -> int:
    return max(1, _CHUNK_CELLS // max(n, 1))


def bootstrap_statistics(x: np.ndarray, statistic: Callable, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """`n_boot` values of `statistic` (a numpy reducer taking `axis=`) over resamples of `x`.

    Drawn in chunks of ~2M values so a long sample list never allocates more at once.
    """
    n = len(x)
    out = np.empty(n_boot)
    step = max(1, 2_000_000 // n)
    for start in range(0, n_boot, step):
        m = min(step, n_boot - start)
        out[start:start + m] = statistic(x[rng.integers(0, n, size=(m, n))], axis=1)
    return out


def bootstrap_ci(
    samples, statistic: Callable = np.median, n_resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Seeded percentile-bootstrap CI of `statistic` over raw samples (non-finite values dropped).

    A single sample gives a degenerate interval (the value itself); an empty list gives NaNs.
    """
    x = np.asarray(samples, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    if x.size == 1:
        return float(x[0]), float(x[0])
    stats = bootstrap_statistics(x, statistic, n_resamples, np.random.default_rng(seed))
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(low), float(high)


def bootstrap_median_ci(
    samples: Sequence[float] | np.ndarray, level: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> tuple[float | None, float | None]:
    """Percentile-bootstrap CI of the median (seeded, so a result file is reproducible); None below 2 samples."""
    if np.asarray(samples).size < 2:
        return None, None
    return bootstrap_ci(samples, np.median, n_boot, level, seed)


def bootstrap_mean_ci(
    diffs: np.ndarray,
    n_bootstrap: int = 10_000,
    seed: int | np.random.SeedSequence = 0,
    level: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap CI of each row's mean, resampling queries with replacement.

    All rows share the same resamples (paired across comparisons too), drawn as a [B, n] count
    matrix so the B resampled means of all rows are one matrix product.
    """
    d = as_diffs(diffs)
    if n_bootstrap < 1:
        raise RepbenchError(f"n_bootstrap must be >= 1, got {n_bootstrap}")
    if not 0 < level < 1:
        raise RepbenchError(f"confidence level must be in (0, 1), got {level}")
    s, n = d.shape
    rng = np.random.default_rng(seed)
    means = np.empty((n_bootstrap, s))
    rows = chunk_rows(n)
    dt = np.ascontiguousarray(d.T)
    for start in range(0, n_bootstrap, rows):
        r = min(rows, n_bootstrap - start)
        idx = rng.integers(0, n, size=(r, n))
        idx += (np.arange(r) * n)[:, None]
        counts = np.bincount(idx.ravel(), minlength=r * n).reshape(r, n).astype(np.float64)
        means[start : start + r] = (counts @ dt) / n
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha], axis=0)
    return low, high


def ratio_of_medians_ci(base: np.ndarray, new: np.ndarray, *, n_boot: int = 10_000, confidence: float = 0.95,
                        rng: np.random.Generator | None = None) -> tuple[float, float, float]:
    """(median(new)/median(base), ci_low, ci_high): percentile bootstrap, the two sides resampled
    independently (the samples are unpaired iterations of two runs)."""
    base = np.asarray(base, dtype=float)
    new = np.asarray(new, dtype=float)
    if len(base) == 0 or len(new) == 0:
        raise ValueError("both sample sets must be non-empty")
    rng = rng if rng is not None else np.random.default_rng(0)
    ratio = float(np.median(new) / np.median(base))
    boots = bootstrap_statistics(new, np.median, n_boot, rng) / bootstrap_statistics(base, np.median, n_boot, rng)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(boots, [alpha, 1.0 - alpha])
    return ratio, float(lo), float(hi)
