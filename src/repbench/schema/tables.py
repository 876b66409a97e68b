"""The one reader and one writer of each tidy CSV kind (per_query, summary, significance, oracle,
oracle_cells, and repbench adapt's adaptive*, folds, oracle_k*), with the same strict checks for all.

Reading checks the columns, integer K >= 1, finite numbers, booleans and one row per key; every error
names the file, the CSV line (header = line 1) and what was expected. Writing refuses a table that the
reader would refuse, so nothing malformed reaches disk, and writes atomically.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from repbench.errors import InputError, RepbenchError
from repbench.io import atomic_write_csv, read_csv_lines
from repbench.schema import (
    ADAPTIVE_CELL_COLUMNS,
    ADAPTIVE_CHOICE_COLUMNS,
    ADAPTIVE_COLUMNS,
    ADAPTIVE_RULE_COLUMNS,
    FOLD_COLUMNS,
    ORACLE_CELL_COLUMNS,
    ORACLE_COLUMNS,
    ORACLE_K_COLUMNS,
    ORACLE_K_CORR_COLUMNS,
    PER_QUERY_COLUMNS,
    SELECTORS,
    SIGNIFICANCE_COLUMNS,
    SUMMARY_COLUMNS,
)


def system_names(frame: pd.DataFrame) -> pd.Series:
    """`backbone/encoder/q{k_q}p{k_p}/mode` for each row of a table with those columns."""
    return (
        frame["backbone"].astype(str) + "/" + frame["encoder"].astype(str)
        + "/q" + frame["k_q"].astype(int).astype(str) + "p" + frame["k_p"].astype(int).astype(str)
        + "/" + frame["mode"].astype(str)
    )


def _describe_per_query(row: pd.Series) -> str:
    return f"system {system_names(row.to_frame().T).iat[0]}, query {row['qid']}, measure {row['measure']}"


def _describe_cell(row: pd.Series) -> str:
    return f"system {system_names(row.to_frame().T).iat[0]}, measure {row['measure']}"


def _describe_sig(row: pd.Series) -> str:
    return f"{row['system']} vs {row['baseline']} on {row['dataset']}, measure {row['measure']}"


def _describe_group(row: pd.Series) -> str:
    return f"{row['dataset']}/{row['backbone']}/{row['encoder']}/{row['mode']}, measure {row['measure']}"


@dataclass(frozen=True)
class Kind:
    """How one CSV kind is checked. Columns not named in a type set are strings."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]  # one row per key
    key_text: str  # the key, in words, for the duplicate message
    describe: Callable[[pd.Series], str]  # a row, in words, for messages
    k: tuple[str, ...] = ()  # positive integers (K)
    counts: tuple[str, ...] = ()  # non-negative integers
    optional_k: tuple[str, ...] = ()  # positive integers or empty
    floats: tuple[str, ...] = ()  # finite numbers
    optional_floats: tuple[str, ...] = ()  # finite numbers or empty (undefined, e.g. a correlation of a constant)
    bools: tuple[str, ...] = ()
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _adapt_kind(name: str, columns: tuple[str, ...], extra_key: tuple[str, ...], key_text: str, *,
                choices: dict[str, tuple[str, ...]] | None = None, optional_k: tuple[str, ...] = (), **types
                ) -> Kind:
    """A repbench adapt table: keyed by group, option set (scope, fixed_k; fixed_k empty for the grid) and more."""
    return Kind(name, columns, key=("dataset", "backbone", "encoder", "mode", "measure", "scope", "fixed_k")
                + extra_key, key_text=key_text, describe=_describe_group, optional_k=("fixed_k",) + optional_k,
                choices={"scope": ("kq", "kp", "grid"), **(choices or {})}, **types)


KINDS: dict[str, Kind] = {
    "per_query": Kind(
        "per_query", PER_QUERY_COLUMNS,
        key=("dataset", "backbone", "encoder", "k_q", "k_p", "mode", "qid", "measure"),
        key_text="(system, query, measure)", describe=_describe_per_query, k=("k_q", "k_p"), floats=("value",)),
    "summary": Kind(
        "summary", SUMMARY_COLUMNS, key=("dataset", "backbone", "encoder", "k_q", "k_p", "mode", "measure"),
        key_text="(dataset, system, measure)", describe=_describe_cell, k=("k_q", "k_p"), counts=("n",),
        floats=("mean",)),
    "significance": Kind(
        "significance", SIGNIFICANCE_COLUMNS, key=("dataset", "system", "baseline", "measure"),
        key_text="(dataset, system, baseline, measure)", describe=_describe_sig, counts=("n",),
        floats=("mean_system", "mean_baseline", "mean_diff", "ci_low", "ci_high", "p_value", "p_adjusted"),
        bools=("significant",)),
    "oracle": Kind(
        "oracle", ORACLE_COLUMNS,
        key=("dataset", "backbone", "encoder", "mode", "measure", "scope", "fixed_k", "budget_q", "budget_p"),
        key_text="(group, scope, fixed K, budget)", describe=_describe_group, counts=("n",),
        optional_k=("fixed_k", "budget_q", "budget_p"),
        floats=("oracle_mean", "oracle_ci_low", "oracle_ci_high", "best_mean", "best_ci_low", "best_ci_high",
                "gap", "gap_ci_low", "gap_ci_high"),
        choices={"scope": ("kq", "kp", "grid")}),
    "oracle_cells": Kind(
        "oracle_cells", ORACLE_CELL_COLUMNS,
        key=("dataset", "backbone", "encoder", "mode", "measure", "scope", "k_q", "k_p"),
        key_text="(group, scope, cell)", describe=_describe_group, k=("k_q", "k_p"), counts=("n_queries",),
        floats=("share",), choices={"scope": ("kq", "kp", "grid")}),
    "adaptive": _adapt_kind(
        "adaptive", ADAPTIVE_COLUMNS, ("selector",), "(group, scope, fixed K, selector)", optional_k=("probe_k",),
        counts=("n", "n_folds", "seed"),
        floats=("adaptive_mean", "adaptive_ci_low", "adaptive_ci_high", "oracle_mean", "oracle_ci_low",
                "oracle_ci_high", "best_mean", "best_ci_low", "best_ci_high", "gain", "gain_ci_low",
                "gain_ci_high", "p_value"),
        optional_floats=("gap_closed", "p_adjusted"), bools=("significant",), choices={"selector": SELECTORS}),
    "adaptive_choices": _adapt_kind(
        "adaptive_choices", ADAPTIVE_CHOICE_COLUMNS, ("selector", "qid"), "(group, scope, selector, query)",
        k=("k_q", "k_p", "oracle_k_q", "oracle_k_p"), counts=("fold",),
        floats=("value", "oracle_value", "best_value")),
    "adaptive_cells": _adapt_kind(
        "adaptive_cells", ADAPTIVE_CELL_COLUMNS, ("selector", "k_q", "k_p"), "(group, scope, selector, cell)",
        k=("k_q", "k_p"), counts=("n_queries",), floats=("share",)),
    "adaptive_rules": _adapt_kind(
        "adaptive_rules", ADAPTIVE_RULE_COLUMNS, ("selector", "fold"), "(group, scope, selector, fold)",
        counts=("fold", "n_train")),
    "oracle_k": _adapt_kind(
        "oracle_k", ORACLE_K_COLUMNS, ("qid",), "(group, scope, fixed K, query)", k=("k_q", "k_p"),
        counts=("n_best",), floats=("oracle_value", "difficulty"), optional_floats=("length",), bools=("all_tied",)),
    "oracle_k_corr": _adapt_kind(
        "oracle_k_corr", ORACLE_K_CORR_COLUMNS, ("target", "variable", "subset"),
        "(group, scope, fixed K, target, variable, subset)", counts=("n",),
        optional_floats=("rho", "ci_low", "ci_high", "p_value"),
        choices={"target": ("k_q", "k_p"), "variable": ("difficulty", "length"), "subset": ("all", "informative")}),
    "folds": Kind("folds", FOLD_COLUMNS, key=("dataset", "qid"), key_text="(dataset, query)",
                  describe=lambda row: f"{row['dataset']}, query {row['qid']}", counts=("fold",)),
}
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _integers(df: pd.DataFrame, col: str, path, lines, *, low: int, optional: bool, what: str) -> pd.Series:
    text = df[col].str.strip()
    empty = text.eq("").to_numpy()
    num = pd.to_numeric(text.where(~empty, "0"), errors="coerce")
    bad = (num.isna() | ~np.isfinite(num) | (num != np.round(num)) | (num < low)).to_numpy()
    bad = bad & ~empty if optional else bad | empty
    if bad.any():
        i = _first(bad)
        raise InputError(path, int(lines[i]), f"expected {what} {col}, got {df[col].iat[i]!r}")
    out = pd.array(num.astype(np.int64), dtype="Int64")
    if optional:
        out[empty] = pd.NA
        return pd.Series(out, index=df.index)
    return pd.Series(out.astype(np.int64), index=df.index)


def _parse(raw: pd.DataFrame, path, kind: Kind, lines: list[int] | None = None) -> pd.DataFrame:
    """Check and convert an all-string table of `kind` (lines: each row's CSV line, header = 1)."""
    missing = [c for c in kind.columns if c not in raw.columns]
    if missing:
        raise InputError(path, 1, f"expected columns {', '.join(kind.columns)}; missing {', '.join(missing)}")
    df = raw[list(kind.columns)].copy()
    lines = np.asarray(lines) if lines is not None else np.arange(len(df)) + 2
    for col in kind.k:
        df[col] = _integers(df, col, path, lines, low=1, optional=False, what="a positive integer")
    for col in kind.optional_k:
        df[col] = _integers(df, col, path, lines, low=1, optional=True, what="empty or a positive integer")
    for col in kind.counts:
        df[col] = _integers(df, col, path, lines, low=0, optional=False, what="a non-negative integer")
    for col in kind.floats:
        text = df[col].str.strip()
        value = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(value)
        if bad.any():
            i = _first(bad)
            got = df[col].iat[i]
            # Text that is no number at all, and a number that is NaN or infinite, are different mistakes.
            what = f"a finite numeric {col}" if _is_number(got) else f"a numeric {col!r}"
            raise InputError(path, int(lines[i]), f"expected {what} for {kind.describe(df.iloc[i])}; got {got!r}")
        df[col] = text.astype(np.float64)  # float() of each string: exact round trip of what was written
    for col in kind.optional_floats:
        text = df[col].str.strip()
        value = pd.to_numeric(text.replace("", np.nan), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = (text != "").to_numpy() & ~np.isfinite(value)
        if bad.any():
            i = _first(bad)
            raise InputError(path, int(lines[i]), f"expected empty or a finite numeric {col} for "
                                                  f"{kind.describe(df.iloc[i])}; got {df[col].iat[i]!r}")
        df[col] = value
    for col in kind.bools:
        low = df[col].str.strip().str.lower()
        bad = ~low.isin(_TRUE + _FALSE).to_numpy()
        if bad.any():
            i = _first(bad)
            raise InputError(path, int(lines[i]), f"expected {col} true or false, got {df[col].iat[i]!r}")
        df[col] = low.isin(_TRUE).to_numpy()
    for col, allowed in kind.choices.items():
        bad = ~df[col].isin(allowed).to_numpy()
        if bad.any():
            i = _first(bad)
            raise InputError(path, int(lines[i]), f"expected {col} one of {', '.join(allowed)}, "
                                                  f"got {df[col].iat[i]!r}")
    key = list(kind.key)
    dup = df.duplicated(key, keep="first").to_numpy()
    if dup.any():
        i = _first(dup)
        same = (df[key].iloc[:i].astype(str) == df[key].iloc[i].astype(str)).all(axis=1).to_numpy()
        row = df.iloc[i]
        where = f"query {row['qid']} of {system_names(df.iloc[[i]]).iat[0]}" if kind.name == "per_query" \
            else kind.describe(row)
        raise InputError(path, int(lines[i]), f"expected one row per {kind.key_text}; {where} repeats line "
                                              f"{int(lines[_first(same)])}")
    return df


def read_table(path: str | os.PathLike, kind: str) -> pd.DataFrame:
    """Read one CSV (optionally .gz) of `kind` (a key of KINDS), checked as the module docstring says."""
    spec = KINDS[kind]
    # repbench.io's rules: gzip by content, BOM dropped, strict UTF-8, every row as wide as the header. A
    # header-only per_query/summary is refused: its "mean over nothing" would read as a result.
    raw, lines = read_csv_lines(path, f"a CSV {kind} table with columns {', '.join(spec.columns)}",
                                require_rows=kind in ("per_query", "summary"), dtype=str, keep_default_na=False)
    return _parse(raw, path, spec, lines)


def _as_text(frame: pd.DataFrame, kind: Kind) -> pd.DataFrame:
    """The table as the reader would see it on disk (missing values as empty cells)."""
    missing = [c for c in kind.columns if c not in frame.columns]
    if missing:
        raise RepbenchError(f"a {kind.name} table needs columns {', '.join(kind.columns)}; missing "
                            f"{', '.join(missing)}")
    out = frame[list(kind.columns)].reset_index(drop=True)
    # A NaN float reads as "nan" (refused as not finite); None / pd.NA as an empty cell (an optional K).
    def text(v, optional: bool) -> str:
        if v is None or v is pd.NA or (optional and isinstance(v, float | np.floating) and np.isnan(v)):
            return ""
        return repr(float(v)) if isinstance(v, float) else str(v)

    optional = set(kind.optional_k) | set(kind.optional_floats)
    return pd.DataFrame({c: [text(v, c in optional) for v in out[c]] for c in kind.columns}, dtype=str)


def write_table(path: str | os.PathLike, frame: pd.DataFrame, kind: str) -> Path:
    """Check `frame` as `read_table` would and write exactly the kind's columns, atomically."""
    spec = KINDS[kind]
    _parse(_as_text(frame, spec), f"{path} (being written)", spec)
    return atomic_write_csv(path, frame[list(spec.columns)])


def read_per_query(path: str | os.PathLike) -> pd.DataFrame:
    """per_query.csv: one row per (dataset, system, query, measure)."""
    return read_table(path, "per_query")


def write_per_query(path: str | os.PathLike, frame: pd.DataFrame) -> Path:
    return write_table(path, frame, "per_query")


def read_summary(path: str | os.PathLike) -> pd.DataFrame:
    """summary.csv: mean and n per (dataset, system, measure)."""
    return read_table(path, "summary")


def write_summary(path: str | os.PathLike, frame: pd.DataFrame) -> Path:
    return write_table(path, frame, "summary")


def read_significance(path: str | os.PathLike) -> pd.DataFrame:
    """significance.csv: one paired comparison per (dataset, system, baseline, measure)."""
    return read_table(path, "significance")


def write_significance(path: str | os.PathLike, frame: pd.DataFrame) -> Path:
    return write_table(path, frame, "significance")


def read_oracle(path: str | os.PathLike) -> pd.DataFrame:
    """oracle.csv: oracle vs best fixed cell per group and option set."""
    return read_table(path, "oracle")


def write_oracle(path: str | os.PathLike, frame: pd.DataFrame) -> Path:
    return write_table(path, frame, "oracle")


def read_oracle_cells(path: str | os.PathLike) -> pd.DataFrame:
    """oracle_cells.csv: how often the oracle picked each cell."""
    return read_table(path, "oracle_cells")


def write_oracle_cells(path: str | os.PathLike, frame: pd.DataFrame) -> Path:
    return write_table(path, frame, "oracle_cells")
