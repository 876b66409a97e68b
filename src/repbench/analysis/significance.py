"""The significance table: paired tests of systems against a baseline (or all pairs) over queries.

The tests, bootstrap and corrections are `repbench.stats`; this module chooses the pairs, adjusts
p-values across one table and lays out `significance.csv` (schema.SIGNIFICANCE_COLUMNS).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from repbench.analysis.perquery import Aligned, per_query_matrix, select
from repbench.errors import RepbenchError
from repbench.schema import SIGNIFICANCE_COLUMNS
from repbench.stats import CORRECTIONS, TESTS, adjust_pvalues, paired_tests

__all__ = ["CORRECTIONS", "SIGNIFICANCE_COLUMNS", "TESTS", "compare_per_query", "comparison_pairs",
           "significance_table"]


def comparison_pairs(
    systems: list[str], baseline: str | None = None, all_pairs: bool = False
) -> list[tuple[str, str]]:
    """(system, baseline) pairs: every system against `baseline`, or every unordered pair once.

    For all pairs the order is the given one with `baseline` (if any) moved first, and in each pair the
    earlier system is the baseline.
    """
    if baseline is not None and baseline not in systems:
        shown = ", ".join(systems[:10]) + (f", ... ({len(systems)} in all)" if len(systems) > 10 else "")
        raise RepbenchError(f"baseline {baseline!r} is not among the systems: {shown}")
    if all_pairs:
        order = ([baseline] if baseline else []) + [s for s in systems if s != baseline]
        return [(order[j], order[i]) for i in range(len(order)) for j in range(i + 1, len(order))]
    if baseline is None:
        raise RepbenchError("choose a baseline system, or compare all pairs")
    return [(s, baseline) for s in systems if s != baseline]


def significance_table(
    matrix: pd.DataFrame,
    baseline: str | None = None,
    all_pairs: bool = False,
    measure: str = "",
    dataset: str = "",
    test: str = "t",
    correction: str = "holm",
    alpha: float = 0.05,
    n_permutations: int = 10_000,
    n_bootstrap: int = 10_000,
    seed: int = 0,
) -> pd.DataFrame:
    """Paired tests of systems against a baseline (or all pairs) on a system x query matrix.

    p-values are adjusted across all rows of the table (`correction`: holm, bonferroni, bh, none);
    `significant` is p_adjusted < alpha. ci_low/ci_high: percentile bootstrap 95% CI of the mean
    difference. `dataset` names the collection the matrix comes from (written into every row).
    Columns: schema.SIGNIFICANCE_COLUMNS.
    """
    if test not in TESTS:
        raise RepbenchError(f"unknown test {test!r}; expected one of {', '.join(TESTS)}")
    if correction not in CORRECTIONS:
        raise RepbenchError(f"unknown correction {correction!r}; expected one of {', '.join(CORRECTIONS)}")
    if not 0 < alpha < 1:
        raise RepbenchError(f"alpha must be in (0, 1), got {alpha}")
    values = matrix.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        r, c = np.argwhere(~np.isfinite(values))[0]
        raise RepbenchError(f"non-finite value {values[r, c]} for system {matrix.index[r]}, query {matrix.columns[c]}")
    systems = [str(s) for s in matrix.index]
    if len(set(systems)) != len(systems):
        raise RepbenchError("system names must be unique")
    pairs = comparison_pairs(systems, baseline, all_pairs)
    if not pairs:
        raise RepbenchError("nothing to compare: need at least two systems")
    pos = {s: i for i, s in enumerate(systems)}
    sys_idx = np.array([pos[s] for s, _ in pairs])
    base_idx = np.array([pos[b] for _, b in pairs])
    diffs = values[sys_idx] - values[base_idx]
    res = paired_tests(diffs, test=test, n_permutations=n_permutations, n_bootstrap=n_bootstrap, seed=seed)
    p_adj = adjust_pvalues(res["p_value"], correction)
    means = values.mean(axis=1)
    return pd.DataFrame({
        "dataset": dataset,
        "system": [s for s, _ in pairs],
        "baseline": [b for _, b in pairs],
        "measure": measure,
        "n": values.shape[1],
        "mean_system": means[sys_idx],
        "mean_baseline": means[base_idx],
        "mean_diff": res["mean_diff"],
        "ci_low": res["ci_low"],
        "ci_high": res["ci_high"],
        "test": test,
        "p_value": res["p_value"],
        "p_adjusted": p_adj,
        "correction": correction,
        "significant": p_adj < alpha,
    }, columns=list(SIGNIFICANCE_COLUMNS))


def compare_per_query(
    per_query: pd.DataFrame,
    measure: str,
    baseline: str | None = None,
    all_pairs: bool = False,
    dataset: str | None = None,
    intersect: bool = False,
    **kwargs,
) -> tuple[pd.DataFrame, Aligned]:
    """significance_table straight from a per-query table (columns as in docs/contracts.md).

    Returns the table and the alignment (query counts, systems that lacked queries).
    """
    aligned = per_query_matrix(per_query, measure, dataset=dataset, intersect=intersect)
    if dataset is None:  # per_query_matrix refused a table of several datasets: there is exactly one
        dataset = str(select(per_query, measure)["dataset"].iat[0])
    table = significance_table(aligned.matrix, baseline=baseline, all_pairs=all_pairs, measure=measure,
                               dataset=dataset, **kwargs)
    return table, aligned
