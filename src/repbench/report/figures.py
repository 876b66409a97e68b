"""The report's figures. Each function takes tidy frames and returns (matplotlib Figure, caption).

Latency is always ms per query (per-call time / queries per call); bands are 95% percentile-bootstrap
CIs of the median from the raw samples (computed in `inputs.load_bench`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from repbench.report import noise, style
from repbench.report.inputs import SkipRecipe, base_backbone
from repbench.report.provenance import load_statement
from repbench.report.tables import measure_name

PAPER_NAMES = {"qwen2.5-7b-instruct": "Qwen2.5", "llama3-8b-instruct": "LLaMA3", "dream-7b-instruct": "Dream",
               "llada-8b-instruct": "LLaDA"}


def _backbone_styles(backbones) -> dict[str, tuple[str, str]]:
    return {b: (style.marker_for(i), style.LINESTYLES[i % len(style.LINESTYLES)])
            for i, b in enumerate(sorted(set(backbones)))}


def _band(ax, frame: pd.DataFrame, x: str, colour, marker: str, ls: str, label: str) -> None:
    frame = frame.sort_values(x)
    bad = noise.flagged(frame).to_numpy()
    ax.plot(frame[x], frame["median_ms"], color=colour, marker=marker, ls=ls, label=label,
            markevery=[int(i) for i in np.flatnonzero(~bad)])
    noise.draw_hollow(ax, frame[bad], x, "median_ms", colour, marker)
    ax.fill_between(frame[x], frame["ci_low_ms"], frame["ci_high_ms"], color=colour, alpha=0.22, lw=0)


def _zero_based(ax) -> None:
    """y from 0 with 6% headroom, so the top point never sits on the frame."""
    top = ax.dataLim.ymax if np.isfinite(ax.dataLim.ymax) else 1.0
    ax.set_ylim(0, float(top) * 1.06)


def _log_axis(ax, axis: str = "x") -> None:
    """Log scale with plain-number ticks (1, 2, 5, 10, ...) and no crowded minor labels."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator, StrMethodFormatter

    getattr(ax, f"set_{axis}scale")("log")
    lo, hi = getattr(ax, f"get_{axis}lim")()
    ticks = [m * 10.0**e for e in range(-4, 8) for m in (1, 2, 5) if lo <= m * 10.0**e <= hi]
    if len(ticks) < 2:  # a range inside one decade (e.g. 250-900 ms) needs finer mantissas
        ticks = [m * 10.0**e for e in range(-4, 8) for m in (1, 1.5, 2, 3, 4, 5, 6, 8) if lo <= m * 10.0**e <= hi]
    if len(ticks) > 7:
        ticks = [t for t in ticks if str(t).lstrip("0.").startswith("1")]
    target = getattr(ax, f"{axis}axis")
    if len(ticks) >= 2:
        target.set_major_locator(FixedLocator(ticks))
        target.set_major_formatter(StrMethodFormatter("{x:g}"))
        target.set_minor_locator(NullLocator())
    target.set_minor_formatter(NullFormatter())


def _pick_lengths(lengths, n: int = 3) -> list[int]:
    lengths = sorted(int(v) for v in set(lengths) if not pd.isna(v))
    if len(lengths) <= n:
        return lengths
    return sorted({lengths[0], lengths[len(lengths) // 2], lengths[-1]})


def _k_axis(ax, ks) -> None:
    ks = sorted(set(int(k) for k in ks))
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks)
    ax.set_xticklabels([str(k) for k in ks])
    ax.minorticks_off()


def _series_label(row_backbone: str, encoder: str, device: str | None) -> str:
    return f"{row_backbone} / {encoder}" + (f" ({device})" if device else "")


def _smallest_batch(cells: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    batch = int(cells["batch_size"].min())
    return cells[cells["batch_size"] == batch], batch


def latency_vs_k(cells: pd.DataFrame):
    """Encoding ms/query vs K, one panel per input length, one line per backbone/encoder."""
    cells = cells[cells["input_tokens"].notna()]
    if cells.empty:
        raise SkipRecipe("no encoding cells with an input length in the latency JSON")
    cells, batch = _smallest_batch(cells)
    lengths = _pick_lengths(cells["input_tokens"])
    multi_device = cells["device_label"].nunique() > 1
    styles = _backbone_styles(cells["backbone"])
    medians = pd.to_numeric(cells["median_ms"], errors="coerce")
    # Backbones of very different size (tiny vs 135M vs 7B) would flatten each other on a linear axis.
    log_y = bool(medians.gt(0).all() and medians.max() / medians.min() > 20)
    fig, axes = style.subplots(len(lengths))
    for ax, length in zip(axes.flat, lengths, strict=True):
        sub = cells[cells["input_tokens"] == length]
        for (dev, bb, enc), grp in sub.groupby(["device_label", "backbone", "encoder"]):
            marker, ls = styles[bb]
            _band(ax, grp, "k", style.encoder_colour(enc), marker, ls,
                  _series_label(bb, enc, dev if multi_device else None))
        _k_axis(ax, sub["k"])
        ax.set_title(f"input length {length} tokens")
        ax.set_xlabel("K (representatives)")
        ax.set_ylabel("encoding latency (ms/query" + (", log)" if log_y else ")"))
        if log_y:
            _log_axis(ax, "y")
        else:
            _zero_based(ax)
    shown = cells[cells["input_tokens"].isin(lengths)]
    if noise.flagged(shown).any():
        noise.add_legend_entry(axes.flat[0])
    style.legend_below(fig, axes)
    devices = ", ".join(sorted(cells["device_label"].unique()))
    caption = (f"Encoding latency vs K on {devices}, batch size {batch}: median ms per query with 95% bootstrap "
               "CI bands from the raw samples. Sequential (autoregressive, K decode steps) vs parallel "
               "(one bidirectional pass over K mask positions); line style and marker identify the backbone."
               + noise.caption(shown) + " " + load_statement(shown))
    return fig, caption


def _multi_k(ks) -> int | None:
    ks = sorted(set(int(k) for k in ks if k > 1))
    if not ks:
        return None
    return 4 if 4 in ks else ks[-1]


def latency_vs_length(cells: pd.DataFrame, paper: pd.DataFrame | None):
    """Encoding ms/query vs input length, K=1 (single) vs multi, one panel per backbone, plus the paper."""
    cells = cells[cells["input_tokens"].notna()]
    if cells.empty or cells["input_tokens"].nunique() < 2:
        raise SkipRecipe("fewer than two input lengths among the encoding cells")
    cells, batch = _smallest_batch(cells)
    groups = list(cells.groupby(["device_label", "backbone"]))
    multi_device = cells["device_label"].nunique() > 1
    n_panels = len(groups) + (paper is not None)
    ncols = min(n_panels, 3)
    nrows = int(np.ceil(n_panels / ncols))
    fig, axes = style.subplots(ncols, nrows)
    flat = list(axes.flat)
    multi_ks = set()
    overlaid = False  # the caption names only the markers actually drawn
    for ax, ((dev, bb), grp) in zip(flat, groups, strict=False):
        mk = _multi_k(grp["k"])
        for enc, egrp in grp.groupby("encoder"):
            colour = style.encoder_colour(enc)
            for k, ls, marker in ((1, "-", "o"), (mk, "--", "s")):
                kg = egrp[egrp["k"] == k] if k else egrp.iloc[0:0]
                if len(kg):
                    multi_ks.add(k) if k != 1 else None
                    _band(ax, kg, "input_tokens", colour, marker, ls, f"{enc} K={k}" + (" (multi)" if k > 1 else ""))
        if paper is not None:
            ref = paper[paper["backbone"] == base_backbone(bb)]
            for variant, ls in (("single", "-"), ("multi", "--")):
                r = ref[ref["variant"] == variant].sort_values("input_tokens")
                if len(r):
                    overlaid = True
                    ax.plot(r["input_tokens"], r["latency_ms"], ls=ls, marker="o", **style.PAPER_OVERLAY,
                            label=f"paper H100 {'K=1' if variant == 'single' else 'multi'}")
        ax.set_title(bb.replace(":", ":\n", 1) + (f" ({dev})" if multi_device else ""))  # long variant names wrap
        ax.set_xlabel("input length (tokens)")
        ax.set_ylabel("encoding latency (ms/query)")
        _zero_based(ax)
    if paper is not None:
        ax = flat[len(groups)]
        # Markers other than the measured panels' o/s, so a paper line is never mistaken for a measured one.
        pmarkers = dict(zip(sorted(set(paper["backbone"])), ("^", "D", "v", "P", "X", "*"), strict=False))
        for (bb, enc, variant), r in paper.groupby(["backbone", "encoder", "variant"]):
            r = r.sort_values("input_tokens")
            ls = "-" if variant == "single" else "--"
            panel = {**style.PAPER_PANEL, "color": style.encoder_colour(enc)}
            ax.plot(r["input_tokens"], r["latency_ms"], marker=pmarkers[bb], ls=ls,
                    **{k: v for k, v in panel.items() if v is not None},
                    label=f"paper {PAPER_NAMES.get(bb, bb)} {r['k_label'].iloc[0]}")
        ax.set_title("paper (H100, 7-8B, batch 1)")
        ax.set_xlabel("input length (tokens)")
        ax.set_ylabel("encoding latency (ms/query)")
        _zero_based(ax)
    for ax in flat[n_panels:]:
        ax.set_visible(False)
    measured = cells[cells["k"].isin({1} | multi_ks)]
    if noise.flagged(measured).any():
        noise.add_legend_entry(flat[0])
    style.legend_below(fig, axes, ncol=4)
    devices = ", ".join(sorted(cells["device_label"].unique()))
    caption = (f"Encoding latency vs input length on {devices}, batch size {batch}: single representation (K=1, "
               f"solid) vs multi (K={', '.join(str(k) for k in sorted(multi_ks)) or '-'}, dashed), median ms per "
               "query with 95% bootstrap CI bands. "
               + ("The " + (f"{style.describe_markers(style.PAPER_OVERLAY)} in the measured panels and the "
                            if overlaid else "") + f"{style.describe_markers(style.PAPER_PANEL)} in the last panel "
                  "are the paper's H100 readings (repbench/recipes/paper; multi = K=4 for AR, (K_q*, K_p*) for "
                  "diffusion)." if paper is not None else "")
               + noise.caption(measured))
    return fig, caption


def search_latency(cells: pd.DataFrame, paper: pd.DataFrame | None):
    """Search ms/query vs index size, log-log, one line per score mode / K_p; panels per query batch."""
    cells = cells[cells["index_size"].notna()]
    if cells.empty:
        raise SkipRecipe("no search cells with an index size in the latency JSON")
    qb = pd.to_numeric(cells["queries_per_call"], errors="coerce")
    batches = sorted(set(qb))
    batches = [batches[0]] + ([batches[-1]] if len(batches) > 1 else [])
    fig, axes = style.subplots(len(batches), panel_w=3.2, panel_h=2.6)
    multi_device = cells["device_label"].nunique() > 1
    kps = sorted(set(cells["k_p"]) | (set(paper["k_p"]) if paper is not None else set()))
    kp_ls = {k: style.LINESTYLES[i % len(style.LINESTYLES)] for i, k in enumerate(kps)}
    for ax, b in zip(axes.flat, batches, strict=True):
        sub = cells[qb == b]
        for (dev, mode, kp), grp in sub.groupby(["device_label", "search_mode", "k_p"]):
            label = f"{mode} K_p={kp}" + (f" ({dev})" if multi_device else "")
            _band(ax, grp, "index_size", style.mode_colour(mode), "o", kp_ls[kp], label)
        if paper is not None:
            for i, (series, r) in enumerate(paper.groupby("series", sort=False)):
                r = r.sort_values("index_size")
                ax.plot(r["index_size"], r["latency_ms"], ls=kp_ls[int(r["k_p"].iloc[0])],
                        marker=style.marker_for(i + 1), **style.PAPER_OVERLAY, label=f"paper H100: {series}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"query batch {int(b)}")
        ax.set_xlabel("index size (documents)")
        ax.set_ylabel("search latency (ms/query)")
    shown = cells[qb.isin(batches)]
    if noise.flagged(shown).any():
        noise.add_legend_entry(axes.flat[0])
    style.legend_below(fig, axes, ncol=2)
    devices = ", ".join(sorted(cells["device_label"].unique()))
    caption = (f"Search latency vs index size (log-log) on {devices}: exact search, median ms per query with 95% "
               "bootstrap CI bands, one line per score mode and K_p (line style)."
               + (f" {style.describe_markers(style.PAPER_OVERLAY).capitalize()}: the paper's H100 readings."
                  if paper is not None else "")
               + noise.caption(shown))
    return fig, caption


def teaser_points(means: pd.DataFrame, enc: pd.DataFrame, search: pd.DataFrame | None,
                  measure: str) -> tuple[pd.DataFrame, str]:
    """Single (1,1 single_dense) and multi (largest K_q*K_p cell, multi_dense) point per backbone/encoder,
    with encoding (+ search) ms/query from the latency cells; returns (points, how latency was formed)."""
    data = means[means["measure"] == measure]
    # Macro-average over datasets, as the paper averages BEIR-7.
    agg = data.groupby(["backbone", "encoder", "k_q", "k_p", "mode"], as_index=False)["mean"].mean()
    n_datasets = data["dataset"].nunique()
    enc = enc[enc["input_tokens"].notna()]
    length = int(enc["input_tokens"].min()) if len(enc) else None
    batch = int(enc["batch_size"].min()) if len(enc) else None
    index_size = None
    if search is not None and len(search):
        sizes = sorted(set(search["index_size"].dropna()))
        index_size = min(sizes, key=lambda s: abs(np.log10(s) - 5.0)) if sizes else None  # nearest to 100K
    rows = []
    for (bb, e), grp in agg.groupby(["backbone", "encoder"]):
        single = grp[(grp["k_q"] == 1) & (grp["k_p"] == 1) & (grp["mode"] == "single_dense")]
        multi = grp[((grp["k_q"] > 1) | (grp["k_p"] > 1)) & (grp["mode"] == "multi_dense")]
        picks = []
        if len(single):
            picks.append(("single", single.iloc[0]))
        if len(multi):
            m = multi.assign(_c=multi["k_q"] * multi["k_p"]).sort_values(["_c", "k_p"]).iloc[-1]
            picks.append(("multi", m))
        for variant, r in picks:
            cell = enc[(enc["backbone"] == bb) & (enc["encoder"] == e) & (enc["k"] == r["k_q"])
                       & (enc["input_tokens"] == length) & (enc["batch_size"] == batch)]
            enc_ms = float(cell["median_ms"].iloc[0]) if len(cell) else float("nan")
            flagged = [noise.cell_name(c) for _, c in cell.iloc[:1][noise.flagged(cell.iloc[:1])].iterrows()]
            s_ms = float("nan")
            if index_size is not None:
                mode = "single_dense" if variant == "single" else "multi_dense"
                s = search[(search["search_mode"] == mode) & (search["index_size"] == index_size)
                           & ((search["k_p"] == r["k_p"]) | (mode == "single_dense"))]
                s = s[s["queries_per_call"] == s["queries_per_call"].min()] if len(s) else s
                s_ms = float(s["median_ms"].iloc[0]) if len(s) else float("nan")
                flagged += [noise.cell_name(c) for _, c in s.iloc[:1][noise.flagged(s.iloc[:1])].iterrows()]
            rows.append({"backbone": bb, "encoder": e, "variant": variant, "k_q": int(r["k_q"]),
                         "k_p": int(r["k_p"]), "value": r["mean"], "encode_ms": enc_ms, "search_ms": s_ms,
                         "noisy_cells": "; ".join(flagged)})
    points = pd.DataFrame(rows)
    if points.empty or points["encode_ms"].isna().all():
        raise SkipRecipe("no system has both an effectiveness cell and a matching encoding latency cell")
    with_search = index_size is not None and points["search_ms"].notna().all()
    points["latency_ms"] = points["encode_ms"] + (points["search_ms"] if with_search else 0.0)
    how = (f"query encoding at {length} input tokens, batch {batch}"
           + (f" + exact search over {int(index_size):,} documents" if with_search else
              " (no matching search cells, so search time is not included)")
           + f"; {measure_name(measure)} averaged over {n_datasets} dataset(s)")
    return points.dropna(subset=["latency_ms"]), how


def teaser(points: pd.DataFrame, how: str, measure: str, device: str, paper: pd.DataFrame | None):
    """Effectiveness vs latency: single and multi of each system linked; the paper's panels beside it."""
    settings = list(dict.fromkeys(paper["setting"])) if paper is not None else []
    fig, axes = style.subplots(1 + len(settings), panel_w=3.0, panel_h=2.6)
    styles = _backbone_styles(points["backbone"])
    ax = axes.flat[0]
    for (bb, enc), grp in points.groupby(["backbone", "encoder"]):
        grp = grp.sort_values("variant", ascending=False)  # single, then multi
        marker, _ = styles[bb]
        bad = (grp["noisy_cells"] != "").to_numpy()
        ax.plot(grp["latency_ms"], grp["value"], color=style.encoder_colour(enc), marker=marker, ls="-",
                label=f"measured: {bb} / {enc}", markevery=[int(i) for i in np.flatnonzero(~bad)])
        noise.draw_hollow(ax, grp[bad], "latency_ms", "value", style.encoder_colour(enc), marker)
        for _, r in grp[grp["variant"] == "multi"].iterrows():
            ax.annotate(f"({r['k_q']},{r['k_p']})", (r["latency_ms"], r["value"]), textcoords="offset points",
                        xytext=(4, 3), fontsize=6)
    ax.margins(x=0.12, y=0.12)
    _log_axis(ax)
    ax.set_title(f"measured ({device})")
    ax.set_xlabel(("encoding + search" if "search over" in how else "encoding") + " (ms/query, log)")
    ax.set_ylabel(measure_name(measure))
    for ax, setting in zip(list(axes.flat)[1:], settings, strict=True):
        ref = paper[paper["setting"] == setting]
        pstyles = _backbone_styles(ref["backbone"].dropna())
        for system, grp in ref[ref["latency_ms"].notna()].groupby("system", sort=False):
            grp = grp.sort_values("variant", ascending=False)
            marker, _ = pstyles.get(grp["backbone"].iloc[0], ("o", "-"))
            ax.plot(grp["latency_ms"], grp["ndcg_cut_10"], color=style.encoder_colour(grp["encoder"].iloc[0]),
                    marker=marker, ls="-", label=f"paper: {system}")
        for _, r in ref[ref["latency_ms"].isna()].iterrows():
            ax.axhline(r["ndcg_cut_10"], color=style.PAPER_COLOUR, ls="--", lw=1, label=f"paper: {r['system']}")
        ax.margins(x=0.08, y=0.08)
        _log_axis(ax)
        ax.set_title(f"paper, {setting} (H100, BEIR-7)")
        ax.set_xlabel("encoding + search (ms/query, log)")
        ax.set_ylabel("nDCG@10")
    noisy = sorted({c for cells in points["noisy_cells"] for c in cells.split("; ") if c})
    if noisy:
        noise.add_legend_entry(axes.flat[0])
    style.legend_below(fig, axes, ncol=3)
    caption = (f"Effectiveness vs latency (the paper's teaser). Left: measured, {how}; each system's single "
               "(K=1, single_dense) and multi (largest (K_q,K_p) cell, multi_dense, labelled) points are linked; "
               "colour = encoder. "
               + ("Right: the paper's BEIR-7 readings (docs/method.md §11.1; latency over a 100K-document sample on "
                  "an H100; dashed line = BM25)." if paper is not None else "")
               + (f" Hollow markers: the point's latency rests on a cell flagged noisy ({'; '.join(noisy)}); its "
                  "position along the latency axis is not a finding." if noisy else ""))
    return fig, caption


def cell_peak_mib(cells: pd.DataFrame) -> pd.Series:
    """Each cell's own peak memory in MiB (`cell_peak_memory_bytes`: its weights plus what its pass added),
    NaN where the cell's peak was not isolated: a process-wide peak (older bench JSONs) is never read as a
    cell's, since it holds every backbone loaded earlier in the session."""
    return pd.to_numeric(cells.get("cell_peak_memory_bytes", pd.Series(index=cells.index, dtype=float)),
                         errors="coerce") / 2**20


def memory_note(cells: pd.DataFrame) -> str:
    """What the memory numbers are, and which cells have none because their peak could not be isolated."""
    mib = cell_peak_mib(cells)
    text = ("Peak memory per cell: the backbone's weights plus the growth of the resident set (CPU, peak RSS "
            "reset before the pass) or of torch's allocated memory (GPU) over a pass separate from timing; memory "
            "that other backbones loaded in the same session hold is not counted.")
    missing = cells[mib.isna()]
    if len(missing):
        names = sorted({f"{r['backbone']}/{r['encoder']}" for _, r in missing.iterrows()})
        text += (f" Not isolated, so not shown: {len(missing)} cell(s) ({', '.join(names[:4])}"
                 f"{', ...' if len(names) > 4 else ''}) whose file records only a process-wide peak.")
    return text


def memory_energy_vs_k(cells: pd.DataFrame):
    """Per-cell peak memory (and energy per query where measured) vs K, one line per backbone/encoder."""
    cells = cells[cells["input_tokens"].notna()].copy()
    note = memory_note(cells)
    cells["peak_mib"] = cell_peak_mib(cells)
    cells["energy"] = pd.to_numeric(cells["energy_j_per_query"], errors="coerce")
    cells = cells[cells["peak_mib"].notna() | cells["energy"].notna()]
    if cells.empty:
        raise SkipRecipe("no encoding cell has peak memory or energy")
    cells, batch = _smallest_batch(cells)
    lengths = sorted(cells["input_tokens"].unique())
    length = 128 if 128 in lengths else lengths[len(lengths) // 2]
    cells = cells[cells["input_tokens"] == length]
    has_energy = cells["energy"].notna().any()
    panels = ([("peak_mib", "cell peak memory (MiB)")] if cells["peak_mib"].notna().any() else []) + (
        [("energy", "energy (J/query)")] if has_energy else [])
    fig, axes = style.subplots(len(panels))
    styles = _backbone_styles(cells["backbone"])
    multi_device = cells["device_label"].nunique() > 1
    for ax, (col, ylabel) in zip(axes.flat, panels, strict=True):
        for (dev, bb, enc), grp in cells.groupby(["device_label", "backbone", "encoder"]):
            grp = grp[grp[col].notna()].sort_values("k")
            marker, ls = styles[bb]
            ax.plot(grp["k"], grp[col], color=style.encoder_colour(enc), marker=marker, ls=ls,
                    label=_series_label(bb, enc, dev if multi_device else None))
        _k_axis(ax, cells["k"])
        ax.set_xlabel("K (representatives)")
        ax.set_ylabel(ylabel)
        _zero_based(ax)
        ax.set_title(ylabel.split(" (")[0] + f", {int(length)} tokens")
    style.legend_below(fig, axes, ncol=2)
    devices = ", ".join(sorted(cells["device_label"].unique()))
    caption = (f"Peak memory{' and energy per query' if has_energy else ''} vs K on {devices} at input length "
               f"{int(length)} tokens, batch size {batch}. {note}"
               + ("" if has_energy else " Energy was not measured on this device (no NVML energy counter)."))
    return fig, caption
