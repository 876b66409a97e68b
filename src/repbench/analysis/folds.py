"""Seeded k-fold assignment of queries (shared by the outer and the inner cross-validation)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from repbench.errors import RepbenchError


def make_folds(qids: Sequence[str], n_folds: int = 5, seed: int = 0) -> np.ndarray:
    """Fold number per query (aligned with `qids`): a seeded permutation dealt round-robin into folds,
    so fold sizes differ by at most one. Fewer queries than folds gives leave-one-out."""
    n = len(qids)
    if n < 2:
        raise RepbenchError(f"cross-validation needs at least 2 queries, got {n}")
    if n_folds < 2:
        raise RepbenchError(f"--folds must be at least 2, got {n_folds}")
    n_folds = min(n_folds, n)
    # The permutation depends on the seed and the sorted query ids only, not on the order given.
    order = np.argsort(np.asarray([str(q) for q in qids], dtype=object), kind="stable")
    perm = np.random.default_rng(seed).permutation(n)
    folds = np.empty(n, dtype=np.int64)
    folds[order[perm]] = np.arange(n) % n_folds
    return folds
