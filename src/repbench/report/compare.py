"""`repbench compare` rendered: display rows, Markdown, the JSON record and the forest plot of latency
ratios. Pure functions of the comparison results of `repbench.analysis.compare`.
"""

from __future__ import annotations

import io
import math
import os
from typing import Any

import numpy as np
import pandas as pd

from repbench.analysis.compare import EffectivenessComparison, LatencyComparison
from repbench.errors import RepbenchError


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g}"


def latency_rows(comp: LatencyComparison) -> list[list[str]]:
    """Display rows: cell, n, BASE median ms, NEW median ms, ratio, 95% CI, verdict, note."""
    out = []
    for _, r in comp.table.iterrows():
        noisy = max(r["iqr_rel_base"], r["iqr_rel_new"])
        note = f"noisy (IQR/median {noisy:.0%})" if noisy > 0.10 else ""
        if r["tolerance"] != comp.tolerance:
            note = "; ".join(x for x in (note, f"tolerance ±{r['tolerance']:.0%}") if x)
        out.append([r["label"], f"{r['n_base']}/{r['n_new']}", _ms(r["median_base_s"]), _ms(r["median_new_s"]),
                    f"{r['ratio']:.3f}", f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]", r["verdict"], note,
                    _efficiency(r)])
    return out


def _efficiency(r: Any) -> str:
    """`78.00% -> 41.00% (x0.53)`: MBU base -> new and their ratio; '--' without a roofline on both sides."""
    b, n, e = (float(r.get(k, float("nan"))) for k in ("mbu_base", "mbu_new", "efficiency_ratio"))
    if not math.isfinite(e):
        return "--"
    return f"{b:.2%} -> {n:.2%} (x{e:.2f})"


LATENCY_HEADERS = ["cell", "n base/new", "base median (ms)", "new median (ms)", "ratio new/base", "95% CI",
                   "verdict", "note", "MBU base -> new (ratio)"]
EFF_HEADERS = ["cell", "n", "mean base", "mean new", "diff", "95% CI", "p", "p Holm", "verdict"]


def effectiveness_rows(comp: EffectivenessComparison) -> list[list[str]]:
    return [[r["label"], str(r["n"]), f"{r['mean_base']:.4f}", f"{r['mean_new']:.4f}", f"{r['mean_diff']:+.4f}",
             f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]", f"{r['p_value']:.3g} ({r['test']})",
             f"{r['p_holm']:.3g}", r["verdict"]]
            for _, r in comp.table.iterrows()]


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    from repbench.report.latex import md_cell

    esc = [[md_cell(c) for c in row] for row in rows]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in esc]
    return "\n".join(lines)


def comparison_markdown(base_name: str, new_name: str, latency: LatencyComparison | None,
                        effectiveness: EffectivenessComparison | None, warnings: list[str],
                        gate: dict[str, Any] | None = None) -> str:
    out = [f"# repbench compare: `{new_name}` vs `{base_name}`", ""]
    if warnings:
        out += ["**Environment differences (numbers may not be comparable):**", ""]
        out += [f"- WARNING: {w}" for w in warnings] + [""]
    if latency is not None:
        out += [f"## Latency (ratio NEW/BASE of medians, 95% bootstrap CI; tolerance ±{latency.tolerance:.0%})",
                "", _md_table(LATENCY_HEADERS, latency_rows(latency)), ""]
        out += _side_lists(latency.only_base, latency.only_new, latency.skipped)
        if gate is not None and gate.get("fail_above") is not None:
            failed = gate["failed"]
            out += [f"Gate --fail-above {gate['fail_above']:.0%}: "
                    + (f"**FAILED** ({', '.join(failed)})" if failed else "passed"), ""]
        if gate is not None and gate.get("min_efficiency") is not None:
            low = gate["efficiency_failed"]
            out += [f"Gate --fail-efficiency-below {gate['min_efficiency']:.0%}: "
                    + (f"**FAILED** ({', '.join(low)})" if low else "passed"), ""]
    if effectiveness is not None:
        out += ["## Effectiveness (mean NEW - BASE over shared queries; OK |diff| <= 0.0005, OKish within "
                "tolerance, else FAIL)", "", _md_table(EFF_HEADERS, effectiveness_rows(effectiveness)), ""]
        out += [f"- note: {w}" for w in effectiveness.warnings]
        out += _side_lists(effectiveness.only_base, effectiveness.only_new, [])
    return "\n".join(out).rstrip() + "\n"


def _side_lists(only_base: list[str], only_new: list[str], skipped: list[str]) -> list[str]:
    out = []
    if only_base:
        out += ["Only in BASE: " + "; ".join(only_base), ""]
    if only_new:
        out += ["Only in NEW: " + "; ".join(only_new), ""]
    if skipped:
        out += ["Skipped: " + "; ".join(skipped), ""]
    return out


def plot_ratios(comp: LatencyComparison, path: str | os.PathLike, *, title: str = "") -> None:
    """Forest plot of per-cell ratios with their CIs on a log axis, the tolerance band shaded.

    Uses the Agg canvas directly, so it neither needs a display nor changes pyplot's global backend.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from repbench.io import atomic_write_bytes

    t = comp.table
    if t.empty:
        raise RepbenchError("no matched cells to plot")
    n = len(t)
    fig = Figure(figsize=(9.0, max(2.5, 0.3 * n + 1.4)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    y = np.arange(n)[::-1]
    colors = {"faster": "#1b7837", "slower": "#b2182b", "same": "#525252"}
    ax.axvspan(1.0 - comp.tolerance, 1.0 + comp.tolerance, color="#d9d9d9", alpha=0.6,
               label=f"tolerance ±{comp.tolerance:.0%}")
    ax.axvline(1.0, color="black", lw=0.8)
    for verdict, color in colors.items():
        m = (t["verdict"] == verdict).to_numpy()
        if not m.any():
            continue
        r = t["ratio"].to_numpy()[m]
        err = np.vstack([r - t["ci_low"].to_numpy()[m], t["ci_high"].to_numpy()[m] - r])
        ax.errorbar(r, y[m], xerr=err, fmt="o", color=color, ms=4, capsize=3, label=verdict)
    ax.set_xscale("log")
    ax.set_yticks(y, t["label"].tolist(), fontsize=7)
    ax.set_xlabel("latency ratio NEW / BASE\n(median per cell, 95% bootstrap CI; < 1 is faster)")
    ax.set_ylim(-0.7, n - 0.3)
    lo = min(t["ci_low"].min(), 1 - comp.tolerance) * 0.95
    hi = max(t["ci_high"].max(), 1 + comp.tolerance) * 1.05
    ax.set_xlim(lo, hi)
    # Log axis with plain ratio labels (1.1, not 1.1x10^0); NullFormatter silences the default minor labels.
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    nice = np.array([0.1, 0.2, 0.25, 0.5, 0.67, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.25, 1.5, 2, 3, 4, 5, 10])
    ticks = _spaced_ticks(nice[(nice >= lo) & (nice <= hi)], lo, hi)
    ax.xaxis.set_major_locator(FixedLocator(ticks if len(ticks) >= 2 else np.geomspace(lo, hi, 5)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(axis="x", which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    if title:
        ax.set_title(title, fontsize=9)
    buf = io.BytesIO()
    fmt = os.fspath(path).rsplit(".", 1)[-1].lower() if "." in os.fspath(path) else "png"
    fig.savefig(buf, format=fmt, dpi=150)
    atomic_write_bytes(path, buf.getvalue())


def _spaced_ticks(ticks: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Drop ticks closer than 7% of the axis (in log space) to a kept one, keeping 1 always."""
    gap = 0.07 * math.log(hi / lo)
    kept = [1.0] if lo <= 1.0 <= hi else []
    for t in sorted(ticks, key=lambda v: abs(math.log(v))):
        if all(abs(math.log(t / k)) >= gap for k in kept):
            kept.append(float(t))
    return np.array(sorted(kept))


def comparison_record(latency: LatencyComparison | None, effectiveness: EffectivenessComparison | None,
                      warnings: list[str], gate: dict[str, Any] | None) -> dict[str, Any]:
    """JSON-ready body of a comparison (the CLI adds the result header)."""
    def records(df: pd.DataFrame) -> list[dict[str, Any]]:
        return [{k: (None if isinstance(v, float) and math.isnan(v) else
                     v.item() if isinstance(v, np.generic) else v) for k, v in r.items()}
                for r in df.to_dict(orient="records")]

    out: dict[str, Any] = {"environment_warnings": warnings}
    if latency is not None:
        out["latency"] = {"tolerance": latency.tolerance, "keys": latency.keys, "cells": records(latency.table),
                          "only_base": latency.only_base, "only_new": latency.only_new,
                          "skipped": latency.skipped}
        if gate is not None:
            out["latency"]["gate"] = gate
    if effectiveness is not None:
        out["effectiveness"] = {"keys": effectiveness.keys, "cells": records(effectiveness.table),
                                "only_base": effectiveness.only_base, "only_new": effectiveness.only_new,
                                "notes": effectiveness.warnings}
    return out
