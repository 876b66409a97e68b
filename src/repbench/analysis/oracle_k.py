"""The optimal K per query (oracle.TIE_RULE: ties go to the cheapest cell) and what it correlates with.

Difficulty of a query is its score under the best fixed cell of the option set, or under a baseline run
given by the user (e.g. BM25); length is its number of text tokens (from the encode-time signals).
Correlations are Spearman's rho with percentile bootstrap CIs over queries. Queries whose cells all tie
(often: every cell scores 0) get the cheapest cell by the tie rule, which pulls the optimal K down; the
`informative` subset leaves them out.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from repbench.analysis.oracle import OptionSet
from repbench.errors import RepbenchError
from repbench.schema import ORACLE_K_COLUMNS, ORACLE_K_CORR_COLUMNS
from repbench.stats import spearman_ci


def optimal_k_rows(option: OptionSet, baseline: pd.Series | None = None, baseline_name: str = "",
                   lengths: pd.Series | None = None) -> list[dict]:
    """One row per query: its optimal cell, how many cells tie at the top, its difficulty and length.

    `baseline` (qid -> score) replaces the best fixed cell as the difficulty; a query it lacks scores 0,
    as in evaluation. `lengths` is qid -> text tokens (NaN where unknown).
    """
    V = option.values
    top = V.max(axis=0)
    pick = np.argmax(V, axis=0)
    n_best = np.isclose(V, top[None, :], rtol=0, atol=1e-12).sum(axis=0)
    if baseline is None:
        difficulty = V[option.best_fixed]
        source = f"best fixed cell {option.cell_label(option.best_fixed)}"
    else:
        difficulty = baseline.reindex(option.qids).fillna(0.0).to_numpy(dtype=np.float64)
        source = baseline_name or "baseline run"
    length = (lengths.reindex(option.qids).to_numpy(dtype=np.float64) if lengths is not None
              else np.full(len(option.qids), np.nan))
    base = {**option.ident, "scope": option.scope, "fixed_k": option.fixed_k}
    rows = []
    for j, q in enumerate(option.qids):
        kq, kp = option.cells[pick[j]]
        rows.append({**base, "qid": q, "k_q": kq, "k_p": kp, "oracle_value": top[j], "n_best": int(n_best[j]),
                     "all_tied": bool(n_best[j] == V.shape[0]), "difficulty": difficulty[j],
                     "difficulty_source": source, "length": length[j]})
    return rows


def correlation_rows(optimal: pd.DataFrame, n_bootstrap: int = 10_000, seed: int = 0) -> list[dict]:
    """Spearman of the optimal K (k_q for scope kq, k_p for kp, both for grid) with difficulty and length,
    over all queries and over the informative ones (not every cell tied)."""
    keys = ["dataset", "backbone", "encoder", "mode", "measure", "scope", "fixed_k"]
    rows = []
    for key, group in optimal.groupby(keys, sort=True, dropna=False):
        ident = dict(zip(keys, key, strict=True))
        targets = {"kq": ["k_q"], "kp": ["k_p"], "grid": ["k_q", "k_p"]}[ident["scope"]]
        for subset, part in (("all", group), ("informative", group[~group["all_tied"].astype(bool)])):
            for target in targets:
                for variable in ("difficulty", "length"):
                    ok = part[variable].notna().to_numpy()
                    x = part[target].to_numpy(dtype=np.float64)[ok]
                    y = part[variable].to_numpy(dtype=np.float64)[ok]
                    rho, low, high, p = spearman_ci(x, y, n_bootstrap=n_bootstrap, seed=seed)
                    rows.append({**ident, "target": target, "variable": variable,
                                 "difficulty_source": group["difficulty_source"].iat[0] if variable == "difficulty"
                                 else "", "subset": subset, "n": int(ok.sum()), "rho": rho, "ci_low": low,
                                 "ci_high": high, "p_value": p})
    return rows


def optimal_k_tables(options: Iterable[OptionSet], baselines: dict[str, pd.Series] | None = None,
                     baseline_name: str = "", lengths: dict[tuple[str, str, str], pd.Series] | None = None,
                     n_bootstrap: int = 10_000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-query optimal K table, correlation table). `baselines`: dataset -> (qid -> score);
    `lengths`: (dataset, backbone, encoder) -> (qid -> text tokens)."""
    rows = []
    for option in options:
        ds = str(option.ident["dataset"])
        baseline = None
        if baselines is not None:
            if ds not in baselines:
                raise RepbenchError(f"the baseline run has no scores for dataset {ds}")
            baseline = baselines[ds]
        length = (lengths or {}).get((ds, option.ident["backbone"], option.ident["encoder"]))
        rows += optimal_k_rows(option, baseline, baseline_name, length)
    optimal = pd.DataFrame(rows, columns=list(ORACLE_K_COLUMNS))
    optimal["fixed_k"] = optimal["fixed_k"].astype("Int64")
    corr = pd.DataFrame(correlation_rows(optimal, n_bootstrap, seed) if len(optimal) else [],
                        columns=list(ORACLE_K_CORR_COLUMNS))
    corr["fixed_k"] = corr["fixed_k"].astype("Int64")
    return optimal, corr
