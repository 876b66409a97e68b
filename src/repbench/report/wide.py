"""The paper-style table: datasets as columns, systems as rows, significance marks against one baseline,
the best value per column in bold, and win/tie/loss counts over queries; external TREC runs are rows too.
A pure function of a tidy per-query table (dataset, system, qid, measure, value)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from repbench.report.latex import Cell, Table
from repbench.report.tables import BETTER, WORSE, measure_name
from repbench.stats import adjust_pvalues, t_pvalues

TIE = 1e-9  # per-query values closer than this are a tie (trec_eval prints 4 decimals)


def _matrix(tidy: pd.DataFrame, dataset: str, measure: str) -> pd.DataFrame:
    """systems x judged queries of one dataset and measure; a query a system lacks scores 0."""
    sub = tidy[(tidy["dataset"] == dataset) & (tidy["measure"] == measure)]
    return sub.pivot_table(index="system", columns="qid", values="value", aggfunc="first").fillna(0.0)


def wide_table(tidy: pd.DataFrame, systems: list[str], baseline: str, measures: list[str],
               alpha: float = 0.05) -> Table:
    """Rows `systems` in order; per dataset one column per measure (mean; marks: paired t-test against
    `baseline`, Holm-adjusted over the systems of that column) and a W/T/L column on the first measure."""
    datasets = sorted(tidy["dataset"].astype(str).unique())
    columns: list = ["system"]
    values: dict[tuple[str, str], dict[str, Cell]] = {}
    for d in datasets:
        for m in measures:
            mat = _matrix(tidy, d, m)
            if mat.empty:
                continue
            columns.append(f"{d} {measure_name(m)}")
            means = mat.mean(axis=1)
            best = means.max()
            others = [s for s in mat.index if s != baseline]
            marks: dict[str, tuple] = {}
            if baseline in mat.index and others and mat.shape[1] >= 2:
                diffs = mat.loc[others].to_numpy() - mat.loc[baseline].to_numpy()
                p = adjust_pvalues(t_pvalues(diffs), "holm")
                for s, pv, dm in zip(others, p, diffs.mean(axis=1), strict=True):
                    if pv < alpha:
                        marks[s] = (BETTER,) if dm > 0 else (WORSE,)
            values[(d, m)] = {s: Cell(f"{means[s]:.3f}", bold=bool(np.isclose(means[s], best)),
                                      marks=marks.get(s, ())) for s in mat.index}
        mat = _matrix(tidy, d, measures[0])
        if baseline in mat.index:
            columns.append(f"{d} W/T/L")
            diff = mat.to_numpy() - mat.loc[baseline].to_numpy()
            wtl = {s: (int((row > TIE).sum()), int((np.abs(row) <= TIE).sum()), int((row < -TIE).sum()))
                   for s, row in zip(mat.index, diff, strict=True)}
            values[(d, "wtl")] = {s: Cell("baseline" if s == baseline else "/".join(map(str, wtl[s])))
                                  for s in mat.index}
    keys = [(d, m) for d in datasets for m in [*measures, "wtl"] if (d, m) in values]
    rows = [[Cell(s + (" (baseline)" if s == baseline else ""))]
            + [values[k].get(s, Cell("--")) for k in keys] for s in systems]
    caption = [f"Paper-style comparison: mean {', '.join(measure_name(m) for m in measures)} per dataset "
               "(columns) and system (rows; backbone/encoder/qK_qpK_p/mode, external runs by the name given to "
               "repbench report --run). Bold: best per column. ", BETTER, "/", WORSE,
               f": significantly better/worse than the baseline {baseline} (paired t-test over queries, "
               f"Holm-adjusted over the systems of each column, alpha {alpha}). W/T/L: queries on which the system "
               f"beats / ties / loses to the baseline on {measure_name(measures[0])}."]
    return Table(columns=columns, rows=rows, caption=caption, label="tab:wide", align="l" + "r" * len(keys))
