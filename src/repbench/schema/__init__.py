"""The tidy contract between stages: column lists, system naming, the encoder names.

This package imports nothing heavier than the standard library at import time, so every stage (from
the encoders down to the report) can depend on it. The one reader and one writer per file kind live in
sub-modules: `schema.tables` (per_query.csv, summary.csv, significance.csv, oracle.csv, oracle_cells.csv)
and `schema.bench` (the pytest-benchmark JSON with machine_info.repbench); docs/contracts.md describes
the files.
"""

from __future__ import annotations

from repbench import SCHEMA_VERSION

__all__ = [
    "ENCODERS", "ORACLE_CELL_COLUMNS", "ORACLE_COLUMNS", "PER_QUERY_COLUMNS", "SCHEMA_VERSION",
    "SIGNIFICANCE_COLUMNS", "SUMMARY_COLUMNS", "FILE_NAMES", "system_name",
]

ENCODERS: tuple[str, ...] = ("sequential", "parallel", "meanpool", "lasttoken")
# The score modes are not listed here: their one registry is repbench.retrieval.modes (standard library
# only at import), so adding a mode touches that file alone.

PER_QUERY_COLUMNS: tuple[str, ...] = (
    "dataset", "backbone", "family", "encoder", "k_q", "k_p", "mode", "qid", "measure", "value",
)
SUMMARY_COLUMNS: tuple[str, ...] = (
    "dataset", "backbone", "family", "encoder", "k_q", "k_p", "mode", "measure", "mean", "n",
)
SIGNIFICANCE_COLUMNS: tuple[str, ...] = (
    "dataset", "system", "baseline", "measure", "n", "mean_system", "mean_baseline", "mean_diff", "ci_low",
    "ci_high", "test", "p_value", "p_adjusted", "correction", "significant",
)
ORACLE_COLUMNS: tuple[str, ...] = (
    "dataset", "backbone", "encoder", "mode", "measure", "scope", "fixed_k", "budget_q", "budget_p", "n",
    "oracle_mean", "oracle_ci_low", "oracle_ci_high", "best_cell", "best_mean", "best_ci_low", "best_ci_high",
    "gap", "gap_ci_low", "gap_ci_high", "label",
)
ORACLE_CELL_COLUMNS: tuple[str, ...] = (
    "dataset", "backbone", "encoder", "mode", "measure", "scope", "k_q", "k_p", "n_queries", "share",
)
# repbench adapt (cross-validated adaptive K per query, and the optimal-K analyses)
SELECTORS: tuple[str, ...] = ("fixed_cv", "threshold", "logistic", "gbt")
_GROUP = ("dataset", "backbone", "encoder", "mode", "measure", "scope", "fixed_k")
ADAPTIVE_COLUMNS: tuple[str, ...] = _GROUP + (
    "selector", "n", "n_folds", "seed", "probe_k", "adaptive_mean", "adaptive_ci_low", "adaptive_ci_high",
    "oracle_mean", "oracle_ci_low", "oracle_ci_high", "best_cell", "best_mean", "best_ci_low", "best_ci_high",
    "gain", "gain_ci_low", "gain_ci_high", "gap_closed", "test", "p_value", "p_adjusted", "significant", "rule",
)
ADAPTIVE_CHOICE_COLUMNS: tuple[str, ...] = _GROUP + (
    "selector", "qid", "fold", "k_q", "k_p", "value", "oracle_k_q", "oracle_k_p", "oracle_value", "best_value",
)
ADAPTIVE_CELL_COLUMNS: tuple[str, ...] = _GROUP + ("selector", "k_q", "k_p", "n_queries", "share")
ADAPTIVE_RULE_COLUMNS: tuple[str, ...] = _GROUP + ("selector", "fold", "n_train", "rule")
FOLD_COLUMNS: tuple[str, ...] = ("dataset", "qid", "fold")
ORACLE_K_COLUMNS: tuple[str, ...] = _GROUP + (
    "qid", "k_q", "k_p", "oracle_value", "n_best", "all_tied", "difficulty", "difficulty_source", "length",
)
ORACLE_K_CORR_COLUMNS: tuple[str, ...] = _GROUP + (
    "target", "variable", "difficulty_source", "subset", "n", "rho", "ci_low", "ci_high", "p_value",
)
# repbench adapt's kinds -> their columns (the writer builds empty tables from these)
KIND_COLUMNS: dict[str, tuple[str, ...]] = {
    "adaptive": ADAPTIVE_COLUMNS, "adaptive_choices": ADAPTIVE_CHOICE_COLUMNS, "adaptive_cells": ADAPTIVE_CELL_COLUMNS,
    "adaptive_rules": ADAPTIVE_RULE_COLUMNS, "folds": FOLD_COLUMNS, "oracle_k": ORACLE_K_COLUMNS,
    "oracle_k_corr": ORACLE_K_CORR_COLUMNS,
}
# File kind -> the name the stage that writes it gives the file (the report finds inputs by these names).
FILE_NAMES: dict[str, str] = {
    "per_query": "per_query.csv",
    "summary": "summary.csv",
    "significance": "significance.csv",
    "oracle": "oracle.csv",
    "oracle_cells": "oracle_cells.csv",
    "adaptive": "adaptive.csv",
    "adaptive_choices": "adaptive_choices.csv",
    "adaptive_cells": "adaptive_cells.csv",
    "adaptive_rules": "adaptive_rules.csv",
    "folds": "folds.csv",
    "oracle_k": "oracle_k.csv",
    "oracle_k_corr": "oracle_k_corr.csv",
}


def system_name(backbone: str, encoder: str, k_q: int, k_p: int, mode: str) -> str:
    """`backbone/encoder/q{k_q}p{k_p}/mode`: how analysis tables name one sweep cell and mode."""
    return f"{backbone}/{encoder}/q{int(k_q)}p{int(k_p)}/{mode}"
