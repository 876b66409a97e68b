"""The K axis: mean effectiveness against K_q (at the largest K_p) and against K_p (at the largest K_q),
per score mode, for every swept backbone/encoder (both families), with 95% bootstrap CIs over queries;
external runs on the same dataset as dashed reference lines."""

from __future__ import annotations

import pandas as pd

from repbench.report import style
from repbench.report.figures import _k_axis
from repbench.report.inputs import SkipRecipe
from repbench.report.provenance import provenance_note
from repbench.report.tables import MODE_ORDER, measure_name, pick_measure
from repbench.stats import bootstrap_mean_ci

MAX_SYSTEMS = 4
SYSTEM = ["dataset", "backbone", "family", "encoder"]


def _curve(rows: pd.DataFrame, axis: str) -> pd.DataFrame:
    """Mean and 95% bootstrap CI per K of one mode's per-query values."""
    out = []
    for k, grp in rows.groupby(axis, sort=True):
        values = grp["value"].to_numpy(float)[None, :]
        low, high = bootstrap_mean_ci(values, n_bootstrap=2000, seed=0) if values.shape[1] > 1 else (
            values[:, 0], values[:, 0])
        out.append({"k": int(k), "mean": float(values.mean()), "low": float(low[0]), "high": float(high[0])})
    return pd.DataFrame(out)


def effectiveness_vs_k(per_query: pd.DataFrame, external: pd.DataFrame | None = None,
                       synthetic: dict | None = None):
    measure = pick_measure(per_query["measure"])
    data = per_query[per_query["measure"] == measure]
    systems = list(data.groupby(SYSTEM, sort=True))
    if not systems or data["k_q"].nunique() < 2 and data["k_p"].nunique() < 2:
        raise SkipRecipe("the sweeps vary neither K_q nor K_p")
    systems = systems[:MAX_SYSTEMS]
    fig, axes = style.subplots(2, len(systems), panel_w=3.4, panel_h=2.3)
    fixed = []
    for row, ((ds, bb, fam, enc), grp) in zip(axes, systems, strict=True):
        kp_max, kq_max = int(grp["k_p"].max()), int(grp["k_q"].max())
        fixed.append((kp_max, kq_max))
        for ax, axis, other, value in ((row[0], "k_q", "k_p", kp_max), (row[1], "k_p", "k_q", kq_max)):
            sub = grp[grp[other] == value]
            for mode in sorted(sub["mode"].unique(), key=lambda m: MODE_ORDER.get(m, 99)):
                curve = _curve(sub[sub["mode"] == mode], axis)
                colour = style.mode_colour(mode)
                ax.plot(curve["k"], curve["mean"], color=colour, marker="o", label=mode)
                ax.fill_between(curve["k"], curve["low"], curve["high"], color=colour, alpha=0.18, lw=0)
            if external is not None:
                ext = external[(external["dataset"] == ds) & (external["measure"] == measure)]
                for i, (name, e) in enumerate(ext.groupby("system", sort=True)):
                    ax.axhline(e["value"].mean(), color=style.PAPER_COLOUR, ls=style.LINESTYLES[(i + 1) % 4],
                               lw=1, label=f"run: {name}")
            _k_axis(ax, grp[axis])
            ax.set_xlabel(f"{'K_q (query)' if axis == 'k_q' else 'K_p (passage)'} representatives, "
                          f"{'K_p' if axis == 'k_q' else 'K_q'} = {value}")
            ax.set_ylabel(f"mean {measure_name(measure)}")
            ax.set_title(f"{ds}: {bb}\n{enc} ({fam} family)", fontsize=7)
    style.legend_below(fig, axes, ncol=3)
    shown = pd.concat([g for _, g in systems])
    families = ", ".join(sorted(shown["family"].astype(str).unique()))
    left = "; ".join(sorted({f"K_p = {kp}" for kp, _ in fixed}))
    right = "; ".join(sorted({f"K_q = {kq}" for _, kq in fixed}))
    caption = (f"Effectiveness vs K: mean {measure_name(measure)} over queries with 95% bootstrap CI bands, one "
               f"line per score mode (colour), for each swept backbone/encoder (families: {families}). Left: K_q "
               f"varies at the largest K_p ({left}); right: K_p varies at the largest K_q ({right}). Multi-vector "
               "modes exist only where K_q or K_p exceeds 1."
               + (" Dashed grey lines: external runs given to repbench report --run, on the same dataset."
                  if external is not None and len(external) else "")
               + (f" {len(data.groupby(SYSTEM)) - len(systems)} more systems are in the tables."
                  if len(data.groupby(SYSTEM)) > len(systems) else "")
               + provenance_note(shown["dataset"], shown["backbone"], synthetic or {}))
    return fig, caption
