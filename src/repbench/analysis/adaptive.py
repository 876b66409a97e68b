"""Cross-validated adaptive K per query: a selector fitted on training folds picks each held-out query's cell.

Unlike the oracle (analysis.oracle), which picks each query's best cell on the test queries themselves,
every query here is scored by a selector that never saw it: queries are split into k seeded folds, a
selector is fitted on the other folds' queries (features + per-cell values) and predicts the held-out
fold's cells from features alone. The result is compared with the oracle (upper bound) and with the
best fixed cell chosen on all queries (an optimistic fixed baseline: beating it is conservative).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from repbench.analysis.folds import make_folds
from repbench.analysis.oracle import OptionSet
from repbench.analysis.selectors import Selector
from repbench.errors import RepbenchError
from repbench.stats import adjust_pvalues, bootstrap_mean_ci, pvalues

__all__ = ["cross_validate", "holm_across_datasets", "make_folds", "score_option_set"]
# The Holm family of one row: the same system, scope and selector across datasets.
_FAMILY = ("backbone", "encoder", "mode", "measure", "scope", "fixed_k", "selector")


def cross_validate(
    values: np.ndarray,
    features: np.ndarray,
    qids: Sequence[str],
    feature_names: Sequence[str],
    folds: np.ndarray,
    factory: Callable[[], Selector],
) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """Held-out cell picks [n] and (fold, n_train, rule) per fold for one selector.

    Each fold's picks come from a fresh selector fitted on the other folds only.
    """
    values = np.asarray(values, dtype=np.float64)
    features = np.asarray(features, dtype=np.float64)
    qids = np.asarray([str(q) for q in qids], dtype=object)
    picks = np.full(values.shape[1], -1, dtype=np.int64)
    rules = []
    for fold in np.unique(folds):
        test = folds == fold
        train = ~test
        model = factory().fit(features[train], values[:, train], list(qids[train]), list(feature_names))
        picks[test] = model.predict(features[test], list(qids[test]))
        rules.append((int(fold), int(train.sum()), model.describe()))
    if (picks < 0).any() or (picks >= values.shape[0]).any():
        raise RepbenchError("a selector returned a cell index outside the option set")
    return picks, rules


def score_option_set(
    option: OptionSet,
    features: pd.DataFrame,
    folds: Mapping[str, int],
    selectors: Mapping[str, Callable[[], Selector]],
    *,
    probe_k: int | None = None,
    test: str = "t",
    n_bootstrap: int = 10_000,
    n_permutations: int = 10_000,
    seed: int = 0,
) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
    """Summary rows (ADAPTIVE_COLUMNS less p_adjusted/significant), choice rows, cell rows and rule rows
    of every selector on one option set. `features` is indexed by qid (missing queries: all unknown)."""
    X = features.reindex(option.qids).to_numpy(dtype=np.float64)
    names = list(features.columns)
    fold_of = np.asarray([folds[q] for q in option.qids], dtype=np.int64)
    V = option.values
    n = V.shape[1]
    cols = np.arange(n)
    oracle_pick = np.argmax(V, axis=0)
    oracle = V[oracle_pick, cols]
    best = option.best_fixed
    best_values = V[best]
    base = {**option.ident, "scope": option.scope, "fixed_k": option.fixed_k}
    summary, choices, cells, rules = [], [], [], []
    for s_i, (name, factory) in enumerate(selectors.items()):
        picks, fold_rules = cross_validate(V, X, option.qids, names, fold_of, factory)
        adaptive = V[picks, cols]
        low, high = bootstrap_mean_ci(np.vstack([adaptive, oracle, best_values, adaptive - best_values,
                                                 oracle - best_values]), n_bootstrap=n_bootstrap, seed=seed)
        gap = oracle.mean() - best_values.mean()
        p = pvalues(adaptive - best_values, test=test, n_permutations=n_permutations,
                    seed=np.random.SeedSequence([seed, s_i]))[0]
        rule_texts = sorted({r for _, _, r in fold_rules})
        summary.append({
            **base, "selector": name, "n": n, "n_folds": int(np.unique(fold_of).size), "seed": seed,
            "probe_k": probe_k, "adaptive_mean": adaptive.mean(), "adaptive_ci_low": low[0],
            "adaptive_ci_high": high[0], "oracle_mean": oracle.mean(), "oracle_ci_low": low[1],
            "oracle_ci_high": high[1], "best_cell": option.cell_label(best), "best_mean": best_values.mean(),
            "best_ci_low": low[2], "best_ci_high": high[2], "gain": adaptive.mean() - best_values.mean(),
            "gain_ci_low": low[3], "gain_ci_high": high[3],
            # A share of a gap indistinguishable from 0 is noise over noise (the "-3419%"): only a
            # gap whose bootstrap CI excludes 0 gets one.
            "gap_closed": (adaptive.mean() - best_values.mean()) / gap if gap > 0 and low[4] > 0 else np.nan,
            "test": test, "p_value": p, "rule": rule_texts[0] if len(rule_texts) == 1 else
            f"{len(rule_texts)} different rules over {len(fold_rules)} folds",
        })
        for j, q in enumerate(option.qids):
            kq, kp = option.cells[picks[j]]
            oq, op = option.cells[oracle_pick[j]]
            choices.append({**base, "selector": name, "qid": q, "fold": int(fold_of[j]), "k_q": kq, "k_p": kp,
                            "value": adaptive[j], "oracle_k_q": oq, "oracle_k_p": op, "oracle_value": oracle[j],
                            "best_value": best_values[j]})
        counts = np.bincount(picks, minlength=len(option.cells))
        for (kq, kp), c in zip(option.cells, counts, strict=True):
            cells.append({**base, "selector": name, "k_q": kq, "k_p": kp, "n_queries": int(c), "share": c / n})
        for fold, n_train, rule in fold_rules:
            rules.append({**base, "selector": name, "fold": fold, "n_train": n_train, "rule": rule})
    return summary, choices, cells, rules


def holm_across_datasets(summary: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Add p_adjusted (Holm within each system/scope/selector family, across datasets) and significant."""
    out = summary.copy()
    out["p_adjusted"] = np.nan
    if out.empty:
        out["significant"] = pd.Series(dtype=bool)
        return out
    # fixed_k is empty for the grid: group on a text key so missing values form their own family
    keys = [out[c].astype(object).where(out[c].notna(), "").astype(str) for c in _FAMILY]
    for _, idx in out.groupby(keys, sort=False, dropna=False).groups.items():
        out.loc[idx, "p_adjusted"] = adjust_pvalues(out.loc[idx, "p_value"].to_numpy(dtype=np.float64), "holm")
    out["significant"] = out["p_adjusted"] < alpha
    return out
