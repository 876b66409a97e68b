"""The oracle-K figures: a heatmap of the cells the per-query oracle picks, and oracle vs best fixed
cell with bootstrap CIs. Same style and conventions as `figures`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from repbench.report import style
from repbench.report.inputs import SkipRecipe
from repbench.report.tables import measure_name, pick_measure


def _oracle_groups(frame: pd.DataFrame, measure: str, limit: int = 6) -> tuple[pd.DataFrame, int]:
    frame = frame[frame["measure"] == measure]
    keys = ["dataset", "backbone", "encoder", "mode"]
    groups = frame[keys].drop_duplicates()
    total = len(groups)
    if total > limit and (frame["mode"] == "multi_dense").any():
        groups = groups[groups["mode"] == "multi_dense"]
    groups = groups.head(limit)
    return frame.merge(groups, on=keys), total


def oracle_heatmap(cells: pd.DataFrame):
    """Share of queries whose oracle picks each (K_q, K_p) cell, one heatmap per group."""
    measure = pick_measure(cells["measure"])
    scope = next((s for s in ("grid", "kq", "kp") if (cells["scope"] == s).any()), None)
    if scope is None:
        raise SkipRecipe("oracle_cells.csv has no kq/kp/grid rows")
    frame, total = _oracle_groups(cells[cells["scope"] == scope], measure)
    groups = list(frame.groupby(["dataset", "backbone", "encoder", "mode"], sort=True))
    ncols = 2 if len(groups) == 4 else min(len(groups), 3)
    nrows = int(np.ceil(len(groups) / ncols))
    fig, axes = style.subplots(ncols, nrows, panel_w=2.6, panel_h=2.3, layout="constrained")
    import matplotlib.colors as mcolors

    # Scale to the largest share shown, not to 100%: shares spread over 25 cells are all small.
    vmax = float(np.ceil(max(5.0, frame["share"].max() * 100.0) / 5.0) * 5.0)
    norm = mcolors.Normalize(vmin=0, vmax=vmax)
    image = None
    for ax, ((ds, bb, enc, mode), grp) in zip(axes.flat, groups, strict=False):
        table = grp.pivot_table(index="k_q", columns="k_p", values="share", aggfunc="sum") * 100.0
        table = table.sort_index(ascending=False)
        image = ax.imshow(table.to_numpy(dtype=float), cmap="viridis", norm=norm, aspect="auto")
        ax.set_xticks(range(table.shape[1]), [str(int(c)) for c in table.columns])
        ax.set_yticks(range(table.shape[0]), [str(int(i)) for i in table.index])
        ax.grid(False)
        for (i, j), v in np.ndenumerate(table.to_numpy(dtype=float)):
            if not np.isnan(v):
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=6.5,
                        color="white" if v < 0.55 * vmax else "black")
        ax.set_title(f"{ds}: {bb}".replace(":", ":\n", 1) + f"\n{enc} / {mode}", fontsize=7.5)
        ax.set_xlabel("K_p (passage representatives)")
        ax.set_ylabel("K_q (query representatives)")
    for ax in list(axes.flat)[len(groups):]:
        ax.set_visible(False)
    cbar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.85, pad=0.03)
    cbar.set_label("queries picking the cell (%)")
    shown = f" ({len(groups)} of {total} groups shown; all in oracle_cells.csv)" if total > len(groups) else ""
    caption = (f"Cells chosen by the per-query oracle over {scope} options on {measure_name(measure)}: percent of "
               f"queries whose best cell it is (ties go to the cheapest cell){shown}. The oracle is an optimistic "
               "upper bound selected on the test queries. Blank: not among the options.")
    return fig, caption


def oracle_vs_fixed(oracle: pd.DataFrame):
    """Oracle mean vs best fixed cell, with 95% CIs, per group and option set."""
    measure = pick_measure(oracle["measure"])
    frame, total = _oracle_groups(oracle, measure, limit=8)
    frame = frame.sort_values(["dataset", "backbone", "encoder", "mode", "scope", "fixed_k"])
    if frame.empty:
        raise SkipRecipe("oracle.csv has no rows for the chosen measure")
    labels = []
    for _, r in frame.iterrows():
        fixed = "" if pd.isna(r["fixed_k"]) else int(r["fixed_k"])
        opt = {"kq": f"K_q varies, K_p={fixed}", "kp": f"K_p varies, K_q={fixed}"}.get(r["scope"], "grid")
        # a budget (analyze --budget-q/-p) narrows the cells, so its best fixed cell may differ from oracle_k.csv's
        opt += "".join(f", {k}<={int(r[b])}" for k, b in (("K_q", "budget_q"), ("K_p", "budget_p"))
                       if b in r and not pd.isna(r[b]))
        labels.append(f"{r['dataset']}: {r['backbone']}/{r['encoder']}/{r['mode']}\n{opt}")
    height = max(1.8, 0.42 * len(frame) + 0.8)
    fig, axes = style.subplots(1, panel_w=5.2, panel_h=height)
    ax = axes[0, 0]
    y = np.arange(len(frame))[::-1]
    for name, col, colour, off, marker in (("oracle (upper bound)", "oracle", style.PALETTE[2], 0.15, "D"),
                                           ("best fixed cell", "best", style.PALETTE[0], -0.15, "o")):
        mean = frame[f"{col}_mean"].to_numpy(float)
        err = np.vstack([mean - frame[f"{col}_ci_low"].to_numpy(float), frame[f"{col}_ci_high"].to_numpy(float) - mean])
        ax.errorbar(mean, y + off, xerr=err, fmt=marker, color=colour, capsize=2, ms=4, label=name)
    for yi, (_, r) in zip(y, frame.iterrows(), strict=True):
        ax.annotate(str(r["best_cell"]), (r["best_mean"], yi - 0.15), textcoords="offset points", xytext=(0, -9),
                    fontsize=6, ha="center")
    ax.set_yticks(y, labels, fontsize=6.5)
    ax.set_xlabel(f"mean {measure_name(measure)} (95% bootstrap CI)")
    ax.set_ylim(-0.7, len(frame) - 0.3)
    style.legend_below(fig, axes, ncol=2)
    shown = f" ({len(frame)} of {total} groups' rows shown; all in oracle.csv)" if total > frame[
        ["dataset", "backbone", "encoder", "mode"]].drop_duplicates().shape[0] else ""
    caption = (f"Per-query oracle vs the best fixed (K_q, K_p) cell (named under its marker), mean "
               f"{measure_name(measure)} with 95% bootstrap CIs{shown}. The oracle is an optimistic upper bound "
               "(selected on the test queries), not an achievable system.")
    return fig, caption
