"""Report figures and tables for the adaptive-K selectors and the optimal-K analyses (repbench adapt)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from repbench.report import style
from repbench.report.inputs import SkipRecipe
from repbench.report.latex import Cell, Table
from repbench.report.provenance import provenance_note
from repbench.report.tables import measure_name, pick_measure

SYSTEM_KEYS = ["dataset", "backbone", "encoder"]
SELECTOR_NAMES = {"fixed_cv": "fixed (CV)", "threshold": "threshold rule", "logistic": "logistic regression",
                  "gbt": "boosted trees"}


def _note(frame: pd.DataFrame, synthetic: dict | None) -> str:
    """The provenance sentences for the datasets and backbones this figure or table shows."""
    return provenance_note(frame["dataset"], frame["backbone"], synthetic or {})


def _ci(m: float, lo: float, hi: float) -> str:
    if m is None or pd.isna(m):
        return "--"
    return f"{m:.3f} [{lo:.3f}, {hi:.3f}]"


def _widest_scope(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the widest option set present per system: the grid, else K_q varying at the largest K_p."""
    parts = []
    for _, grp in frame.groupby(SYSTEM_KEYS + ["mode"], sort=True):
        if (grp["scope"] == "grid").any():
            parts.append(grp[grp["scope"] == "grid"])
            continue
        kq = grp[grp["scope"] == "kq"]
        use = kq if not kq.empty else grp
        parts.append(use[use["fixed_k"] == use["fixed_k"].max()] if use["fixed_k"].notna().any() else use)
    return pd.concat(parts) if parts else frame.iloc[:0]


def _option_label(r) -> str:
    if r["scope"] == "kq":
        return f"K_q varies, K_p={int(r['fixed_k'])}"
    if r["scope"] == "kp":
        return f"K_p varies, K_q={int(r['fixed_k'])}"
    return "grid"


def adaptive_table(adaptive: pd.DataFrame, synthetic: dict | None = None) -> Table:
    measure = pick_measure(adaptive["measure"])
    data = _widest_scope(adaptive[(adaptive["measure"] == measure) & (adaptive["selector"] != "fixed_cv")])
    if data.empty:
        raise SkipRecipe("adaptive.csv has no learned-selector rows")
    data = data.sort_values(SYSTEM_KEYS + ["mode", "selector"])
    columns = ["dataset", "system", "options", "selector", "n", "adaptive [95% CI]", "best fixed", "fixed [95% CI]",
               "oracle [95% CI]", "gap closed", "p (Holm)"]
    rows = []
    for _, r in data.iterrows():
        # Older adaptive.csv files computed it for any positive gap: also require the oracle's CI to clear
        # the fixed cell's mean.
        shown = not pd.isna(r["gap_closed"]) and r["oracle_ci_low"] > r["best_mean"]
        closed = f"{100 * r['gap_closed']:.0f}%" if shown else "--"
        rows.append([Cell(str(r["dataset"])), Cell(f"{r['backbone']}/{r['encoder']}/{r['mode']}"),
                     Cell(_option_label(r)), Cell(SELECTOR_NAMES.get(r["selector"], r["selector"])),
                     Cell(str(int(r["n"]))),
                     Cell(_ci(r["adaptive_mean"], r["adaptive_ci_low"], r["adaptive_ci_high"]),
                          bold=bool(r["significant"]) and r["gain"] > 0),
                     Cell(str(r["best_cell"])), Cell(_ci(r["best_mean"], r["best_ci_low"], r["best_ci_high"])),
                     Cell(_ci(r["oracle_mean"], r["oracle_ci_low"], r["oracle_ci_high"])), Cell(closed),
                     Cell(f"{r['p_adjusted']:.3g}")])
    folds = int(data["n_folds"].iloc[0])
    caption = [f"Cross-validated adaptive K per query ({folds}-fold over queries, seed {int(data['seed'].iloc[0])}), "
               f"mean {measure_name(measure)} with 95% bootstrap CIs. Each query is scored by a selector fitted on "
               "the other folds only, from encode-time signals of the query; the best fixed cell and the oracle are "
               "chosen on all queries (optimistic). Gap closed = (adaptive - fixed) / (oracle - fixed). p: paired "
               "test against the best fixed cell, Holm-adjusted across datasets; bold = significant gain. Gap closed is "
               "shown only where the oracle's lead over the fixed cell exceeds its 95% CI ('--' otherwise: a share "
               "of a gap indistinguishable from 0 is not a finding)." + _note(data, synthetic)]
    return Table(columns=columns, rows=rows, caption=caption, label="tab:adaptive", align="llllrrlrrrr")


def adaptive_figure(adaptive: pd.DataFrame, synthetic: dict | None = None):
    measure = pick_measure(adaptive["measure"])
    data = _widest_scope(adaptive[adaptive["measure"] == measure])
    systems = list(data.groupby(SYSTEM_KEYS, sort=True))[:6]
    if not systems:
        raise SkipRecipe("adaptive.csv has no rows for the chosen measure")
    fig, axes = style.subplots(min(len(systems), 2), int(np.ceil(len(systems) / 2)), panel_w=3.6, panel_h=2.4)
    selectors = [s for s in ("fixed_cv", "threshold", "logistic", "gbt") if (data["selector"] == s).any()]
    series = [("best fixed", "best")] + [(SELECTOR_NAMES[s], s) for s in selectors] + [("oracle", "oracle")]
    width = 0.8 / len(series)
    for ax, ((ds, bb, enc), grp) in zip(axes.flat, systems, strict=False):
        modes = sorted(grp["mode"].unique())
        x = np.arange(len(modes))
        for i, (label, key) in enumerate(series):
            means, lows, highs = [], [], []
            for mode in modes:
                rows = grp[grp["mode"] == mode]
                if key in ("best", "oracle"):
                    r = rows.iloc[0]
                    means.append(r[f"{key}_mean"])
                    lows.append(r[f"{key}_ci_low"])
                    highs.append(r[f"{key}_ci_high"])
                else:
                    r = rows[rows["selector"] == key].iloc[0]
                    means.append(r["adaptive_mean"])
                    lows.append(r["adaptive_ci_low"])
                    highs.append(r["adaptive_ci_high"])
            means = np.asarray(means)
            err = np.vstack([means - np.asarray(lows), np.asarray(highs) - means])
            ax.bar(x + (i - (len(series) - 1) / 2) * width, means, width, yerr=err, capsize=1.5,
                   color=style.PALETTE[i % len(style.PALETTE)], label=label)
        ax.set_xticks(x, [m.replace("fusion_", "f_").replace("_sparse_max", "+sp") for m in modes], rotation=30,
                      ha="right")
        ax.set_ylabel(f"mean {measure_name(measure)}")
        ax.set_title(f"{ds}: {bb}\n{enc}", fontsize=7.5)
    for ax in list(axes.flat)[len(systems):]:
        ax.set_visible(False)
    style.legend_below(fig, axes, ncol=min(len(series), 5))
    caption = (f"Adaptive K per query (cross-validated selectors) vs the best fixed cell and the oracle, mean "
               f"{measure_name(measure)} with 95% bootstrap CIs, over the widest option set (the (K_q, K_p) grid "
               "where swept). The oracle is an optimistic upper bound selected on the test queries."
               + _note(data, synthetic))
    return fig, caption


def _panels(optimal: pd.DataFrame) -> pd.DataFrame:
    """K_q varying at the largest fixed K_p per system and mode (the oracle's kq scope)."""
    kq = optimal[optimal["scope"] == "kq"]
    if kq.empty:
        raise SkipRecipe("oracle_k.csv has no rows where K_q varies")
    keep = kq.groupby(SYSTEM_KEYS + ["mode"])["fixed_k"].transform("max")
    return kq[kq["fixed_k"] == keep]


def difficulty_sources(rows: pd.DataFrame) -> dict[str, str]:
    """mode -> what its difficulty was scored under, as oracle_k.csv states it (one option set per mode)."""
    return {str(m): str(g["difficulty_source"].iloc[0]) for m, g in rows.groupby("mode", sort=True)}


def optimal_k_distribution(optimal: pd.DataFrame, synthetic: dict | None = None):
    measure = pick_measure(optimal["measure"])
    data = _panels(optimal[optimal["measure"] == measure])
    systems = list(data.groupby(SYSTEM_KEYS, sort=True))[:6]
    fig, axes = style.subplots(min(len(systems), 2), int(np.ceil(len(systems) / 2)), panel_w=3.4, panel_h=2.3)
    for ax, ((ds, bb, enc), grp) in zip(axes.flat, systems, strict=False):
        ks = sorted(grp["k_q"].unique())
        modes = sorted(grp["mode"].unique())
        width = 0.8 / len(modes)
        x = np.arange(len(ks))
        for i, mode in enumerate(modes):
            rows = grp[grp["mode"] == mode]
            share = [100 * np.mean(rows["k_q"] == k) for k in ks]
            tied = [100 * np.mean((rows["k_q"] == k) & rows["all_tied"].astype(bool)) for k in ks]
            pos = x + (i - (len(modes) - 1) / 2) * width
            ax.bar(pos, share, width, color=style.mode_colour(mode), label=mode)
            ax.bar(pos, tied, width, color="none", edgecolor="black", hatch="///", linewidth=0.3)
        ax.set_xticks(x, [str(int(k)) for k in ks])
        ax.set_xlabel(f"optimal K_q (K_p = {int(grp['fixed_k'].iloc[0])})")
        ax.set_ylabel("queries (%)")
        ax.set_title(f"{ds}: {bb}\n{enc}", fontsize=7.5)
    for ax in list(axes.flat)[len(systems):]:
        ax.set_visible(False)
    style.legend_below(fig, axes, ncol=3)
    caption = (f"Distribution of the optimal K_q per query on {measure_name(measure)} (the per-query oracle's "
               "pick; ties go to the cheapest cell). Hatched: queries whose cells all tie (often all zero), which "
               "the tie rule sends to the smallest K." + _note(data, synthetic))
    return fig, caption


def optimal_k_scatter(optimal: pd.DataFrame, synthetic: dict | None = None):
    measure = pick_measure(optimal["measure"])
    data = _panels(optimal[optimal["measure"] == measure])
    panels = list(data.groupby(SYSTEM_KEYS, sort=True))[:6]
    fig, axes = style.subplots(min(len(panels), 2), int(np.ceil(len(panels) / 2)), panel_w=3.4, panel_h=2.4)
    rng = np.random.default_rng(0)  # jitter only, so overlapping points stay visible
    per_mode: list[str] = []
    for ax, ((ds, bb, enc), grp) in zip(axes.flat, panels, strict=False):
        for mode, rows in grp.groupby("mode", sort=True):
            y = np.log2(rows["k_q"].to_numpy(float)) + rng.uniform(-0.12, 0.12, len(rows))
            ax.scatter(rows["difficulty"], y, s=7, alpha=0.6, color=style.mode_colour(mode), label=mode)
        ks = sorted(grp["k_q"].unique())
        ax.set_yticks(np.log2(ks), [str(int(k)) for k in ks])
        sources = difficulty_sources(grp)
        if len(set(sources.values())) == 1:
            ax.set_xlabel(f"difficulty: {next(iter(sources.values()))}".replace("best fixed cell",
                                                                                 "score under best fixed"))
        else:  # each mode's difficulty is its own best fixed cell: one name on the axis would be wrong
            ax.set_xlabel("difficulty: score under the mode's best fixed cell")
            per_mode.append(f"{ds} {bb}/{enc}: " + ", ".join(f"{m} {src.removeprefix('best fixed cell ')}"
                                                              for m, src in sources.items()))
        ax.set_ylabel("optimal K_q")
        ax.set_title(f"{ds}: {bb}\n{enc}", fontsize=7.5)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    style.legend_below(fig, axes, ncol=3)
    caption = (f"Optimal K_q per query against query difficulty ({measure_name(measure)} under the best fixed "
               "cell, or the baseline run given to repbench adapt), jittered vertically. Spearman correlations with "
               "bootstrap CIs are in the table."
               + (f" Best fixed cell per mode: {'; '.join(per_mode)}." if per_mode else "") + _note(data, synthetic))
    return fig, caption


def correlation_table(corr: pd.DataFrame, synthetic: dict | None = None) -> Table:
    measure = pick_measure(corr["measure"])
    data = corr[(corr["measure"] == measure) & (corr["scope"] == "kq") & (corr["target"] == "k_q")
                & (corr["subset"] == "all")]
    if data.empty:
        raise SkipRecipe("oracle_k_corr.csv has no K_q rows")
    keep = data.groupby(SYSTEM_KEYS + ["mode"])["fixed_k"].transform("max")
    data = data[data["fixed_k"] == keep].sort_values(SYSTEM_KEYS + ["mode"])
    columns = ["dataset", "system", "K_p", "n", "difficulty under", "rho(K_q*, difficulty) [95% CI]",
               "rho(K_q*, length) [95% CI]"]
    rows = []
    for _, grp in data.groupby(SYSTEM_KEYS + ["mode"], sort=True):
        by = {r["variable"]: r for _, r in grp.iterrows()}
        d, ln = by.get("difficulty"), by.get("length")
        r0 = grp.iloc[0]
        rows.append([Cell(str(r0["dataset"])), Cell(f"{r0['backbone']}/{r0['encoder']}/{r0['mode']}"),
                     Cell(str(int(r0["fixed_k"]))), Cell(str(int(r0["n"]))),
                     Cell(str(d["difficulty_source"]).removeprefix("best fixed cell ") if d is not None else "--"),
                     Cell(_ci(d["rho"], d["ci_low"], d["ci_high"]) if d is not None else "--"),
                     Cell(_ci(ln["rho"], ln["ci_low"], ln["ci_high"]) if ln is not None else "--")])
    caption = [f"Spearman correlation of the optimal K_q per query (oracle pick, cheapest on ties) with query "
               f"difficulty ({measure_name(measure)} under the row's best fixed cell or the baseline run, named in "
               "the column 'difficulty under') and with query length (text tokens), 95% percentile bootstrap CIs "
               "over queries; -- = undefined (a constant variable). All queries; oracle_k_corr.csv also has the subset without all-tied "
               "queries. Difficulty under the best fixed cell is not independent of the optimum (that cell is one "
               "of the options); a baseline run (e.g. BM25) gives an independent one." + _note(data, synthetic)]
    return Table(columns=columns, rows=rows, caption=caption, label="tab:oracle-k-corr", align="llrrlrr")
