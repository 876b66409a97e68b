"""Paired significance tests over queries, vectorised across many comparisons at once, and
multiple-comparison corrections.

Every function takes *difference rows* `d = system - baseline`, shape [S, n] (S comparisons, n queries),
so one sign matrix or one bootstrap count matrix serves all S comparisons in a single matrix product.
Randomness comes from a seeded numpy Generator; the draws depend only on (seed, n, count), never on S,
so a comparison's p-value does not change when other systems are added to the table.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import scipy.stats

from repbench.errors import RepbenchError
from repbench.stats.bootstrap import as_diffs, bootstrap_mean_ci, chunk_rows
from repbench.stats.choices import CORRECTIONS, TESTS

Test = Literal["t", "wilcoxon", "randomization"]

# Exact enumeration is used only while 2^m <= n_permutations and 2^m stays small enough to hold at once.
_MAX_EXACT_BITS = 20


def _random_bits(rng: np.random.Generator, rows: int, n: int) -> np.ndarray:
    """A [rows, n] matrix of fair 0/1 draws, built from raw random bytes (8 draws per byte)."""
    row_bytes = (n + 7) // 8
    raw = np.frombuffer(rng.bytes(rows * row_bytes), dtype=np.uint8).reshape(rows, row_bytes)
    return np.unpackbits(raw, axis=1, count=n)


def _tolerance(d: np.ndarray) -> np.ndarray:
    # Sums of the same numbers in a different order differ by rounding; a permuted statistic that equals
    # the observed one up to that rounding must count as "at least as extreme" (scipy does the same).
    return 1e-9 * np.abs(d).sum(axis=1)


def _exact_pvalue(row: np.ndarray) -> float:
    """Two-sided sign-flip p-value by enumerating all 2^m sign vectors over the m non-zero differences."""
    nz = row[row != 0.0]
    m = nz.size
    if m == 0:
        return 1.0
    codes = np.arange(1 << m, dtype=np.int64)
    bits = ((codes[:, None] >> np.arange(m, dtype=np.int64)) & 1).astype(np.float64)
    total = nz.sum()
    sums = total - 2.0 * (bits @ nz)  # flipping the signs of the 1-bits
    tol = 1e-9 * np.abs(nz).sum()
    extreme = np.count_nonzero(np.abs(sums) >= abs(total) - tol)
    return extreme / float(1 << m)


def randomization_pvalues(
    diffs: np.ndarray, n_permutations: int = 10_000, seed: int | np.random.SeedSequence = 0
) -> np.ndarray:
    """Two-sided paired randomization (sign-flip) test of mean difference 0, one p-value per row.

    Statistic |sum(d)| (equivalent to |mean(d)|). A row whose non-zero differences number m with
    2^m <= n_permutations is enumerated exactly (p = share of the 2^m sign vectors at least as extreme,
    zero differences cannot change the statistic). Other rows share `n_permutations` random sign vectors
    and get p = (b + 1) / (n_permutations + 1), b = number of random sign vectors at least as extreme.
    """
    d = as_diffs(diffs)
    n_permutations = int(n_permutations)
    if n_permutations < 1:
        raise RepbenchError(f"n_permutations must be >= 1, got {n_permutations}")
    s, n = d.shape
    p = np.empty(s)
    nonzero = np.count_nonzero(d, axis=1)
    exact = nonzero <= min(_MAX_EXACT_BITS, n_permutations.bit_length() - 1)
    for i in np.flatnonzero(exact):
        p[i] = _exact_pvalue(d[i])
    mc = np.flatnonzero(~exact)
    if mc.size:
        dm = d[mc]
        total = dm.sum(axis=1)
        threshold = np.abs(total) - _tolerance(dm)
        rng = np.random.default_rng(seed)
        hits = np.zeros(mc.size, dtype=np.int64)
        rows = chunk_rows(n)
        dt = np.ascontiguousarray(dm.T)
        for start in range(0, n_permutations, rows):
            bits = _random_bits(rng, min(rows, n_permutations - start), n).astype(np.float64)
            sums = total[None, :] - 2.0 * (bits @ dt)  # [rows, S]
            hits += np.count_nonzero(np.abs(sums) >= threshold[None, :], axis=0)
        p[mc] = (hits + 1.0) / (n_permutations + 1.0)
    return p


def t_pvalues(diffs: np.ndarray) -> np.ndarray:
    """Two-sided paired t-test p-values (same as scipy.stats.ttest_rel), one per row.

    Zero variance: p = 1 when every difference is 0, else 0 (t is infinite, as scipy reports).
    """
    d = as_diffs(diffs)
    n = d.shape[1]
    if n < 2:
        raise RepbenchError(f"the paired t-test needs at least 2 queries, got {n}")
    mean = d.mean(axis=1)
    sd = d.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / (sd / np.sqrt(n))
    p = 2.0 * scipy.stats.t.sf(np.abs(t), df=n - 1)
    zero_var = sd == 0
    p[zero_var] = np.where(mean[zero_var] == 0, 1.0, 0.0)
    return np.minimum(p, 1.0)


def wilcoxon_pvalues(diffs: np.ndarray) -> np.ndarray:
    """Two-sided Wilcoxon signed-rank p-values (scipy.stats.wilcoxon defaults: zero differences dropped,
    exact null distribution for small untied samples, normal approximation otherwise); p = 1 when every
    difference is 0."""
    d = as_diffs(diffs)
    p = np.empty(d.shape[0])
    for i, row in enumerate(d):  # one scipy call per comparison; scipy vectorises over queries
        if not row.any():
            p[i] = 1.0
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            p[i] = scipy.stats.wilcoxon(row).pvalue
    return p


def pvalues(
    diffs: np.ndarray, test: str = "t", n_permutations: int = 10_000, seed: int | np.random.SeedSequence = 0
) -> np.ndarray:
    if test == "t":
        return t_pvalues(diffs)
    if test == "wilcoxon":
        return wilcoxon_pvalues(diffs)
    if test == "randomization":
        return randomization_pvalues(diffs, n_permutations=n_permutations, seed=seed)
    raise RepbenchError(f"unknown test {test!r}; expected one of {', '.join(TESTS)}")


def effect_sizes(diffs: np.ndarray) -> np.ndarray:
    """Paired standardised effect size d_z = mean(d) / sd(d) (ddof=1); 0 when every d is 0,
    +-inf when d is a non-zero constant."""
    d = as_diffs(diffs)
    mean = d.mean(axis=1)
    sd = d.std(axis=1, ddof=1) if d.shape[1] > 1 else np.zeros(d.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        es = mean / sd
    es[(sd == 0) & (mean == 0)] = 0.0
    return es


def adjust_pvalues(p: np.ndarray, method: str = "holm") -> np.ndarray:
    """Multiple-comparison adjusted p-values across one family (one table).

    holm: step-down max_{j<=i} (m - j + 1) p_(j); bonferroni: m p; bh: Benjamini-Hochberg step-up
    min_{j>=i} m p_(j) / j; none: unchanged. All capped at 1.
    """
    p = np.asarray(p, dtype=np.float64)
    m = p.size
    if method == "none" or m == 0:
        return p.copy()
    if method == "bonferroni":
        return np.minimum(p * m, 1.0)
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    ranks = np.arange(1, m + 1)
    if method == "holm":
        adj_sorted = np.maximum.accumulate(np.minimum((m - ranks + 1) * ranked, 1.0))
    elif method == "bh":
        adj_sorted = np.minimum.accumulate((m * ranked / ranks)[::-1])[::-1]
        adj_sorted = np.minimum(adj_sorted, 1.0)
    else:
        raise RepbenchError(f"unknown correction {method!r}; expected one of {', '.join(CORRECTIONS)}")
    out = np.empty(m)
    out[order] = adj_sorted
    return out


def _streams(seed: int) -> tuple[np.random.SeedSequence, np.random.SeedSequence]:
    # Independent streams for the permutations and the bootstrap, both fixed by one user seed.
    perm, boot = np.random.SeedSequence(seed).spawn(2)
    return perm, boot


def paired_tests(
    diffs: np.ndarray,
    test: str = "t",
    n_permutations: int = 10_000,
    n_bootstrap: int = 10_000,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """p-values, mean differences, bootstrap 95% CIs and effect sizes for each row of `diffs`."""
    d = as_diffs(diffs)
    if d.shape[1] == 0:
        raise RepbenchError("no queries to compare")
    perm_seed, boot_seed = _streams(seed)
    low, high = bootstrap_mean_ci(d, n_bootstrap=n_bootstrap, seed=boot_seed)
    return {
        "p_value": pvalues(d, test=test, n_permutations=n_permutations, seed=perm_seed),
        "mean_diff": d.mean(axis=1),
        "ci_low": low,
        "ci_high": high,
        "effect_size": effect_sizes(d),
    }


def paired_test(
    a: np.ndarray,
    b: np.ndarray,
    test: str = "t",
    n_permutations: int = 10_000,
    seed: int = 0,
    n_bootstrap: int = 10_000,
) -> dict[str, float]:
    """Paired two-sided test of system `a` against baseline `b` (arrays aligned over the same queries).

    Returns p_value, mean_diff (mean of a - b), ci_low/ci_high (percentile bootstrap 95% CI of the mean
    difference) and effect_size (d_z = mean / sd of the differences).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise RepbenchError(f"paired arrays must be 1-D and the same length, got {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise RepbenchError("paired arrays contain NaN or infinite values")
    res = paired_tests(a - b, test=test, n_permutations=n_permutations, n_bootstrap=n_bootstrap, seed=seed)
    return {key: float(value[0]) for key, value in res.items()}
