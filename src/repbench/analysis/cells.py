"""The oracle's option sets as value matrices: one [cells, queries] matrix per group and option set.

Shared by the adaptive selectors and the optimal-K analyses so that both see exactly the cells, the
cheapest-first order and the missing-query rule of analysis.oracle.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from repbench.analysis.oracle import (
    SCOPES,
    _scope_cell_sets,
    best_fixed_index,
    cell_name,
    group_matrices,
    select_measure,
)
from repbench.errors import RepbenchError


@dataclass
class OptionSet:
    ident: dict  # dataset, backbone, encoder, mode, measure
    scope: str  # kq | kp | grid
    fixed_k: int | None
    cells: list[tuple[int, int]]  # cheapest first (oracle.TIE_RULE)
    values: np.ndarray  # [cells, queries], float64
    qids: list[str]  # sorted

    @property
    def best_fixed(self) -> int:
        """Index of the best fixed cell on all queries (oracle.best_fixed_index: ties -> cheapest)."""
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
) -> Iterator[OptionSet]:
    """Every (group, option set) with two or more cells; queries missing from a cell score 0 unless
    `intersect` (then only queries present in every cell of the group are kept). A grid holding the same
    cells as a kq or kp set (only one K_p or K_q swept) is left out rather than analysed twice."""
    for scope in scopes:
        if scope not in SCOPES:
            raise RepbenchError(f"unknown oracle scope {scope!r}; expected one of {', '.join(SCOPES)}")
    df = select_measure(per_query, measure)
    if modes is not None:
        unknown = sorted(set(modes) - set(df["mode"]))
        if unknown:
            raise RepbenchError(f"mode(s) {', '.join(unknown)} not in the per-query table")
        df = df[df["mode"].isin(list(modes))]
    for g in group_matrices(df, intersect):
        seen: set[tuple] = set()
        for scope, fixed_k, option in _scope_cell_sets(g.cells, scopes, fixed_kq, fixed_kp):
            if scope == "grid" and tuple(option) in seen:
                continue  # one K_p (or K_q) swept: the grid is the kq (kp) set again
            seen.add(tuple(option))
            yield OptionSet(g.ident, scope, fixed_k, list(option), g.rows(option), g.qids)
