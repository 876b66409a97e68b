"""Short plain-text summaries of the significance and oracle tables, for the terminal."""

from __future__ import annotations

import pandas as pd

from repbench.analysis.oracle import ORACLE_LABEL

_TEST_NAMES = {"t": "paired t-test", "wilcoxon": "Wilcoxon signed-rank", "randomization": "paired randomization"}


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
    return [fmt(header), *(fmt(r) for r in rows)]


def _p(p: float) -> str:
    return f"{p:.2e}" if p < 1e-3 else f"{p:.4f}"


def format_significance(table: pd.DataFrame, alignment: str = "", max_rows: int = 30) -> str:
    """Human-readable significance table: one line per comparison, '*' marking significant rows."""
    if table.empty:
        return "significance: no comparisons"
    first = table.iloc[0]
    lines = [
        f"significance ({_TEST_NAMES.get(first['test'], first['test'])}, {first['correction']} correction, "
        f"measure {first['measure']}, n = {first['n']} queries)"
    ]
    if alignment:
        lines.append(f"  queries: {alignment}")
    rows = [
        [str(r.system), str(r.baseline), f"{r.mean_system:.4f}", f"{r.mean_baseline:.4f}",
         f"{r.mean_diff:+.4f}", f"[{r.ci_low:+.4f}, {r.ci_high:+.4f}]", _p(r.p_value), _p(r.p_adjusted),
         "*" if r.significant else ""]
        for r in table.head(max_rows).itertuples()
    ]
    header = ["system", "baseline", "mean", "base", "diff", "95% CI", "p", "p_adj", "sig"]
    lines += ["  " + line for line in _table(header, rows)]
    if len(table) > max_rows:
        lines.append(f"  ... {len(table) - max_rows} more rows in the CSV")
    lines.append(f"  {int(table['significant'].sum())} of {len(table)} comparisons significant after correction")
    return "\n".join(lines)


def format_oracle(oracle: pd.DataFrame, max_rows: int = 30) -> str:
    """Human-readable oracle summary, labelled as an optimistic upper bound."""
    if oracle.empty:
        return "oracle: no group has two or more (K_q, K_p) cells to choose from"
    lines = [f"oracle over K -- {ORACLE_LABEL}"]
    rows = []
    for r in oracle.head(max_rows).itertuples():
        scope = r.scope if pd.isna(r.fixed_k) else f"{r.scope} ({'k_p' if r.scope == 'kq' else 'k_q'}={r.fixed_k})"
        budget = "" if pd.isna(r.budget_q) and pd.isna(r.budget_p) else (
            f"q<={'-' if pd.isna(r.budget_q) else r.budget_q} p<={'-' if pd.isna(r.budget_p) else r.budget_p}")
        rows.append([f"{r.backbone}/{r.encoder}/{r.mode}", scope, budget, f"{r.oracle_mean:.4f}",
                     f"{r.best_cell} {r.best_mean:.4f}", f"{r.gap:+.4f}", f"[{r.gap_ci_low:+.4f}, {r.gap_ci_high:+.4f}]",
                     str(r.n)])
    header = ["system", "scope", "budget", "oracle", "best fixed", "gap", "gap 95% CI", "n"]
    lines += ["  " + line for line in _table(header, rows)]
    if len(oracle) > max_rows:
        lines.append(f"  ... {len(oracle) - max_rows} more rows in the CSV")
    return "\n".join(lines)
