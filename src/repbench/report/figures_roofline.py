"""The roofline figure: measured encoding latency against the hardware floor, vs K, one panel per backbone.

The floor and MBU/MFU columns come from `analysis.roofline_cells` (stored per cell by the bench harness,
or computed from the JSON's recorded peaks); see README "Roofline" for the formulas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from repbench.report import noise, style
from repbench.report.inputs import SkipRecipe
from repbench.report.provenance import load_statement


def _pick(values, n: int = 3) -> list[int]:
    values = sorted(int(v) for v in set(values) if not pd.isna(v))
    return values if len(values) <= n else sorted({values[0], values[len(values) // 2], values[-1]})


def _range(series: pd.Series, pct: bool = True) -> str:
    v = pd.to_numeric(series, errors="coerce").dropna()
    if v.empty:
        return "n/a"
    fmt = (lambda x: f"{x:.2%}") if pct else (lambda x: f"{x:.3g}")
    return f"{fmt(v.min())}-{fmt(v.max())}"


def measured_vs_floor(cells: pd.DataFrame):
    """ms/query vs K per backbone: measured median with its CI band (solid) and the floor (dashed)."""
    if "floor_ms" in cells:
        cells = cells[cells["input_tokens"].notna() & pd.to_numeric(cells["floor_ms"], errors="coerce").notna()]
    if "floor_ms" not in cells or cells.empty:
        raise SkipRecipe("no encoding cell has a roofline floor (the bench JSON predates the peaks probe: re-run "
                         "pytest bench/)")
    batch = int(cells["batch_size"].min())
    cells = cells[cells["batch_size"] == batch].copy()
    cells["floor_q_ms"] = cells["floor_ms"] / cells["queries_per_call"]
    lengths = _pick(cells["input_tokens"])
    cells = cells[cells["input_tokens"].isin(lengths)]
    colours = {length: style.PALETTE[(i + 3) % len(style.PALETTE)] for i, length in enumerate(lengths)}
    order = sorted(cells.groupby(["device_label", "family", "backbone"]).groups)
    fig, axes = style.subplots(len(order), panel_w=2.9, panel_h=2.4)
    for ax, (dev, family, bb) in zip(axes.flat, order, strict=True):
        sub = cells[(cells["device_label"] == dev) & (cells["backbone"] == bb)]
        several = sub["encoder"].nunique() > 1
        for i, (enc, by_enc) in enumerate(sub.groupby("encoder")):
            marker = style.marker_for(i)
            head = f"{enc}, " if several else ""
            for length, grp in by_enc.groupby("input_tokens"):
                grp = grp.sort_values("k")
                c = colours[int(length)]
                bad = noise.flagged(grp).to_numpy()
                ax.plot(grp["k"], grp["median_ms"], color=c, marker=marker, ls="-",
                        label=f"{head}L={int(length)} measured", markevery=[int(j) for j in np.flatnonzero(~bad)])
                noise.draw_hollow(ax, grp[bad], "k", "median_ms", c, marker)
                ax.fill_between(grp["k"], grp["ci_low_ms"], grp["ci_high_ms"], color=c, alpha=0.2, lw=0)
                ax.plot(grp["k"], grp["floor_q_ms"], color=c, ls="--", lw=1.0, label=f"{head}L={int(length)} floor")
        ks = sorted(int(k) for k in sub["k"].unique())
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.minorticks_off()
        ax.set_yscale("log")
        ax.set_title(f"{bb} ({family}, {'/'.join(sorted(sub['encoder'].unique()))})" + (f"\n{dev}" if cells["device_label"].nunique() > 1 else ""))
        ax.set_xlabel("K (representatives)")
        ax.set_ylabel("ms/query (log)")
    if noise.flagged(cells).any():
        noise.add_legend_entry(axes.flat[0])
    style.legend_below(fig, axes, ncol=2)
    sources = "; ".join(sorted(str(s) for s in cells["floor_source"].dropna().unique()))
    ratio = cells["median_ms"] / cells["floor_q_ms"]
    caption = (f"Measured encoding latency (solid, median with 95% bootstrap CI band) against its roofline floor "
               f"(dashed) vs K, batch size {batch}, one panel per backbone, colour = input length. The floor of a "
               "call is the sum over its forward passes of max(FLOPs / peak FLOP/s, bytes / peak bandwidth) "
               "(sequential: prefill + K-1 cached decode steps; parallel: one pass); peaks: " + sources + ". "
               f"Measured / floor {_range(ratio, pct=False)}x; MBU {_range(cells['mbu'])}, MFU {_range(cells['mfu'])}."
               + noise.caption(cells) + " " + load_statement(cells))
    return fig, caption
