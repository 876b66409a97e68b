"""Per-query oracle over K: an optimistic upper bound, selected on the test queries (docs/method.md §9).

For each query the oracle takes the best value of a measure over a set of cells: K_q only (K_p fixed),
K_p only (K_q fixed), or the whole (K_q, K_p) grid, optionally within a budget K_q <= B_q, K_p <= B_p.
It is compared with the best *fixed* cell of the same set (one cell for every query).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby

import numpy as np
import pandas as pd

from repbench.analysis.perquery import align
from repbench.errors import RepbenchError
from repbench.schema import ORACLE_CELL_COLUMNS, ORACLE_COLUMNS
from repbench.schema.choices import SCOPES
from repbench.stats import bootstrap_mean_ci

GROUP_KEYS: tuple[str, ...] = ("dataset", "backbone", "encoder", "mode", "measure")
TIE_RULE = "ties go to the cheapest cell: smallest K_q + K_p, then smallest K_p, then smallest K_q"
ORACLE_LABEL = f"optimistic upper bound (per-query best cell selected on the test queries); {TIE_RULE}"


def cell_cost(cell: tuple[int, int]) -> tuple[int, int, int]:
    """Sort key of a (k_q, k_p) cell, cheapest first (see TIE_RULE)."""
    k_q, k_p = cell
    return (k_q + k_p, k_p, k_q)


def cell_name(k_q: int, k_p: int) -> str:
    return f"q{int(k_q)}p{int(k_p)}"


def best_fixed_index(values: np.ndarray) -> int:
    """The best fixed cell of a [cells, queries] matrix (cells cheapest first): the row with the largest
    mean over queries, ties -> cheapest. The one definition every table and figure uses.

    Rows are compared on their exactly rounded sums (math.fsum), not on `mean`: a float mean depends on the
    order of summation, so two cells whose means are equal would otherwise tie or not by rounding alone
    and the choice between them would ignore TIE_RULE."""
    values = np.asarray(values, dtype=np.float64)
    sums = [math.fsum(row) for row in values]
    return sums.index(max(sums))  # index() finds the first (= cheapest) maximum


def oracle_of(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Given a [cells, queries] matrix with cells ordered cheapest first, return the per-query maximum,
    the per-query picked cell index and the best fixed cell index (both ties -> cheapest)."""
    values = np.asarray(values, dtype=np.float64)
    picks = np.argmax(values, axis=0)  # argmax returns the first (= cheapest) maximum
    return values[picks, np.arange(values.shape[1])], picks, best_fixed_index(values)


def _scope_cell_sets(
    cells: list[tuple[int, int]],
    scopes: Sequence[str],
    fixed_kq: Sequence[int] | None,
    fixed_kp: Sequence[int] | None,
) -> list[tuple[str, int | None, list[tuple[int, int]]]]:
    """(scope, fixed_k, cells) option sets; sets with fewer than two cells (nothing to choose) are left out."""
    out: list[tuple[str, int | None, list[tuple[int, int]]]] = []
    for scope in scopes:
        if scope == "grid":
            out.append(("grid", None, cells))
            continue
        axis = 1 if scope == "kq" else 0  # kq varies K_q with K_p fixed, and vice versa
        wanted = fixed_kp if scope == "kq" else fixed_kq
        fixed_values = sorted({c[axis] for c in cells}) if wanted is None else sorted(set(wanted))
        for f in fixed_values:
            out.append((scope, int(f), [c for c in cells if c[axis] == f]))
    return [s for s in out if len(s[2]) >= 2]


def select_measure(per_query: pd.DataFrame, measure: str | None) -> pd.DataFrame:
    """The rows of one measure (all rows when `measure` is None); an absent measure is an error."""
    if measure is None:
        return per_query
    if measure not in set(per_query["measure"]):
        raise RepbenchError(f"measure {measure!r} not in the per-query table; it has "
                            f"{', '.join(sorted(set(per_query['measure'].astype(str))))}")
    return per_query[per_query["measure"] == measure]


@dataclass
class GroupMatrix:
    """One (dataset, backbone, encoder, mode, measure) group as a [cells, queries] value matrix."""

    ident: dict
    cells: list[tuple[int, int]]  # cheapest first (TIE_RULE)
    matrix: np.ndarray  # float64, rows follow `cells`
    qids: list[str]
    n: int  # queries used (see `intersect`)

    def rows(self, option: Sequence[tuple[int, int]]) -> np.ndarray:
        row_of = {c: i for i, c in enumerate(self.cells)}
        return self.matrix[[row_of[c] for c in option]]


def group_matrices(df: pd.DataFrame, intersect: bool = False) -> Iterator[GroupMatrix]:
    """Each group of a per-query table, aligned over queries: a query missing from a cell scores 0 unless
    `intersect` (then only the queries present in every cell of the group are kept)."""
    for key, group in df.groupby(list(GROUP_KEYS), sort=True):
        tidy = pd.DataFrame({
            "system": [cell_name(q, p) for q, p in zip(group["k_q"], group["k_p"], strict=True)],
            "qid": group["qid"].astype(str).to_numpy(),
            "value": group["value"].to_numpy(dtype=np.float64),
        })
        try:
            aligned = align(tidy, intersect=intersect)
        except RepbenchError as exc:
            raise RepbenchError(f"{'/'.join(str(v) for v in key)}: {exc}") from None
        cell_of = dict(zip(tidy["system"], zip(group["k_q"].astype(int), group["k_p"].astype(int), strict=True),
                           strict=True))
        cells = sorted((cell_of[name] for name in aligned.matrix.index), key=cell_cost)
        yield GroupMatrix(dict(zip(GROUP_KEYS, key, strict=True)), cells,
                          aligned.matrix.loc[[cell_name(*c) for c in cells]].to_numpy(),
                          [str(q) for q in aligned.matrix.columns], aligned.n)


@dataclass
class OptionSet:
    """One group's option set as a [cells, queries] matrix: what the oracle tables, the adaptive selectors and
    the optimal-K analyses all consume, so they see the same cells, order and missing-query rule."""

    ident: dict  # dataset, backbone, encoder, mode, measure
    scope: str  # kq | kp | grid
    fixed_k: int | None
    cells: list[tuple[int, int]]  # cheapest first (TIE_RULE)
    values: np.ndarray  # [cells, queries], float64
    qids: list[str]  # sorted

    @property
    def n(self) -> int:
        """Queries used (see `intersect`)."""
        return self.values.shape[1]

    @property
    def best_fixed(self) -> int:
        """Index of the best fixed cell on all queries (best_fixed_index: ties -> cheapest)."""
        return best_fixed_index(self.values)

    def cell_label(self, index: int) -> str:
        return cell_name(*self.cells[index])


def option_sets(
    per_query: pd.DataFrame,
    measure: str | None = "ndcg_cut_10",
    scopes: Sequence[str] = SCOPES,
    fixed_kq: Sequence[int] | None = None,
    fixed_kp: Sequence[int] | None = None,
    modes: Sequence[str] | None = None,
    intersect: bool = False,
    budget_q: int | None = None,
    budget_p: int | None = None,
) -> Iterator[OptionSet]:
    """Every (group, option set) with two or more cells, a group's sets consecutive. Cells outside the budget
    are dropped first; queries missing from a cell score 0 unless `intersect` (then only queries present in
    every cell of the group are kept). A grid holding the same cells as a kq or kp set (only one K_p or K_q
    swept) is left out rather than analysed twice."""
    for scope in scopes:
        if scope not in SCOPES:
            raise RepbenchError(f"unknown oracle scope {scope!r}; expected one of {', '.join(SCOPES)}")
    for name, budget in (("budget_q", budget_q), ("budget_p", budget_p)):
        if budget is not None and budget < 1:
            raise RepbenchError(f"{name} must be a positive integer, got {budget}")
    df = select_measure(per_query, measure)
    if modes is not None:
        unknown = sorted(set(modes) - set(df["mode"]))
        if unknown:
            raise RepbenchError(f"mode(s) {', '.join(unknown)} not in the per-query table")
        df = df[df["mode"].isin(list(modes))]
    if budget_q is not None:
        df = df[df["k_q"] <= budget_q]
    if budget_p is not None:
        df = df[df["k_p"] <= budget_p]
    for g in group_matrices(df, intersect):
        seen: set[tuple] = set()
        for scope, fixed_k, option in _scope_cell_sets(g.cells, scopes, fixed_kq, fixed_kp):
            if scope == "grid" and tuple(option) in seen:
                continue  # one K_p (or K_q) swept: the grid is the kq (kp) set again
            seen.add(tuple(option))
            yield OptionSet(g.ident, scope, fixed_k, list(option), g.rows(option), g.qids)


def oracle_tables(
    per_query: pd.DataFrame,
    measure: str | None = None,
    scopes: Sequence[str] = SCOPES,
    fixed_kq: Sequence[int] | None = None,
    fixed_kp: Sequence[int] | None = None,
    budget_q: int | None = None,
    budget_p: int | None = None,
    intersect: bool = False,
    n_bootstrap: int = 10_000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The oracle table (ORACLE_COLUMNS) and the picked-cell distribution (ORACLE_CELL_COLUMNS).

    One row per option set of `option_sets` (the same sets the adaptive selectors see): scope `kq` (one row
    per fixed K_p; `fixed_kp` restricts which), `kp` (one per fixed K_q) and `grid`, within the budget.
    Queries missing from a cell score 0 unless `intersect`; `n` says how many were used. CIs are percentile
    bootstraps over queries (one paired resample per group for every oracle, best cell and gap); the best
    cell is chosen on all queries, not re-chosen per resample. Ties: TIE_RULE. Every row carries
    ORACLE_LABEL. Both tables are empty (with their columns) when no group has two cells to choose from.
    """
    sets = option_sets(per_query, measure, scopes, fixed_kq, fixed_kp, intersect=intersect,
                       budget_q=budget_q, budget_p=budget_p)
    oracle_rows: list[dict] = []
    cell_rows: list[dict] = []
    for _, group in groupby(sets, key=lambda o: tuple(o.ident.values())):
        series: list[np.ndarray] = []
        pending: list[dict] = []
        for o in group:
            oracle, picks, best = oracle_of(o.values)  # values keep the cheapest-first order
            best_values = o.values[best]
            series += [oracle, best_values, oracle - best_values]
            pending.append({
                **o.ident, "scope": o.scope, "fixed_k": o.fixed_k, "budget_q": budget_q, "budget_p": budget_p,
                "n": o.n, "oracle_mean": oracle.mean(), "best_cell": o.cell_label(best),
                "best_mean": best_values.mean(), "gap": oracle.mean() - best_values.mean(),
                "label": ORACLE_LABEL,
            })
            counts = np.bincount(picks, minlength=len(o.cells))
            for c, k in zip(o.cells, counts, strict=True):
                cell_rows.append({**o.ident, "scope": o.scope, "k_q": c[0], "k_p": c[1], "n_queries": int(k),
                                  "share": k / o.n})
        # One bootstrap for every series of the group: the same query resamples for all of them.
        low, high = bootstrap_mean_ci(np.vstack(series), n_bootstrap=n_bootstrap, seed=seed, level=level)
        for i, row in enumerate(pending):
            for j, name in enumerate(("oracle", "best", "gap")):
                row[f"{name}_ci_low"] = low[3 * i + j]
                row[f"{name}_ci_high"] = high[3 * i + j]
            oracle_rows.append(row)
    oracle_df = pd.DataFrame(oracle_rows, columns=list(ORACLE_COLUMNS))
    for col in ("fixed_k", "budget_q", "budget_p"):
        oracle_df[col] = oracle_df[col].astype("Int64")
    cells_df = pd.DataFrame(cell_rows, columns=list(ORACLE_CELL_COLUMNS))
    return oracle_df, cells_df
