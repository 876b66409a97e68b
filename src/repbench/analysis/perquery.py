"""Per-query effectiveness tables aligned into a system x query matrix (reading and system naming are
`repbench.schema.tables`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from repbench.errors import RepbenchError, did_you_mean
from repbench.schema.tables import system_names


def check_finite(tidy: pd.DataFrame, system_col: str = "system") -> None:
    """Refuse NaN or infinite values, naming the first offending system and query."""
    values = tidy["value"].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise RepbenchError(
            f"non-finite value {values[i]} for system {tidy[system_col].iat[i]}, query {tidy['qid'].iat[i]}"
        )


@dataclass
class Aligned:
    """A system x query matrix plus how the query sets were reconciled."""

    matrix: pd.DataFrame  # index: system (input order), columns: qid (sorted), float64
    n_union: int  # queries seen for any system
    n_common: int  # queries seen for every system
    intersect: bool  # True: only common queries kept; False: missing entries filled with 0
    missing: dict[str, int] = field(default_factory=dict)  # system -> queries it lacked (of the union)

    @property
    def n(self) -> int:
        return self.matrix.shape[1]

    def describe(self) -> str:
        if not self.missing:
            return f"{self.n} queries, identical for every system"
        worst = ", ".join(f"{s} ({k})" for s, k in sorted(self.missing.items(), key=lambda kv: -kv[1])[:3])
        how = (f"restricted to the {self.n_common} queries common to all systems" if self.intersect
               else f"missing queries scored 0 over all {self.n_union} queries")
        return f"{self.n} queries: {how}; systems missing queries: {worst}"


def align(tidy: pd.DataFrame, intersect: bool = False) -> Aligned:
    """Pivot a tidy (system, qid, value) table to a system x qid matrix.

    By default a query missing from a system scores 0 (as in evaluation); `intersect=True` keeps only
    the queries every system has. Non-finite values and duplicated (system, qid) pairs are refused.
    """
    for col in ("system", "qid", "value"):
        if col not in tidy.columns:
            raise RepbenchError(f"expected a tidy table with columns system, qid, value; missing {col}")
    if tidy.empty:
        raise RepbenchError("no per-query values to analyse")
    check_finite(tidy)
    dup = tidy.duplicated(["system", "qid"]).to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise RepbenchError(f"system {tidy['system'].iat[i]} has query {tidy['qid'].iat[i]} more than once")
    tidy = tidy.assign(qid=tidy["qid"].astype(str))
    systems = list(dict.fromkeys(tidy["system"]))
    wide = tidy.pivot(index="system", columns="qid", values="value").reindex(systems)
    wide = wide.reindex(columns=sorted(wide.columns))
    present = wide.notna()
    n_union = wide.shape[1]
    common = present.all(axis=0)
    missing = {s: int(k) for s, k in (~present).sum(axis=1).items() if k}
    if intersect:
        wide = wide.loc[:, common]
        if wide.shape[1] == 0:
            raise RepbenchError("--intersect: the systems have no query in common")
    else:
        wide = wide.fillna(0.0)
    wide.columns.name = "qid"
    return Aligned(wide.astype(np.float64), n_union, int(common.sum()), intersect, missing)


def select(per_query: pd.DataFrame, measure: str, dataset: str | None = None) -> pd.DataFrame:
    """Rows of one measure on one dataset (the dataset may be omitted when the table holds only one)."""
    measures = sorted(per_query["measure"].astype(str).unique())
    if measure not in measures:
        raise RepbenchError(f"measure {measure!r} not in the per-query table; it has {', '.join(measures)}")
    out = per_query[per_query["measure"] == measure]
    datasets = sorted(out["dataset"].astype(str).unique())
    if dataset is None:
        if len(datasets) > 1:
            raise RepbenchError(f"the table holds several datasets ({', '.join(datasets)}); choose one")
    else:
        if dataset not in datasets:
            raise RepbenchError(f"dataset {dataset!r} not in the per-query table{did_you_mean(dataset, datasets)}; "
                                f"it has {', '.join(datasets)}")
        out = out[out["dataset"] == dataset]
    return out


def per_query_matrix(
    per_query: pd.DataFrame, measure: str, dataset: str | None = None, intersect: bool = False
) -> Aligned:
    """The system x qid matrix of one measure (system = `backbone/encoder/q{k_q}p{k_p}/mode`)."""
    rows = select(per_query, measure, dataset)
    tidy = pd.DataFrame({"system": system_names(rows).to_numpy(), "qid": rows["qid"].astype(str).to_numpy(),
                         "value": rows["value"].to_numpy(dtype=np.float64)})
    return align(tidy, intersect=intersect)
