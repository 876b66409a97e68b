"""The report's tables as `Table` objects: effectiveness, latency, oracle vs fixed.

Pure functions of tidy frames; rendering to LaTeX/Markdown is in `latex`.
"""

from __future__ import annotations

import math

import pandas as pd

from repbench.report import noise
from repbench.report.inputs import base_backbone, is_encode
from repbench.report.latex import Cell, Raw, Table
from repbench.report.provenance import load_statement
from repbench.retrieval.modes import MODES

BETTER = Raw(r"$^{\dagger}$", "†")
WORSE = Raw(r"$^{\ddagger}$", "‡")
NOISY = Raw(r"$^{\circ}$", "°")
MEASURE_NAMES = {"ndcg_cut_10": "nDCG@10", "recip_rank_10": "MRR@10", "recall_100": "R@100",
                 "recall_1000": "R@1000", "map": "MAP"}
MODE_ORDER = {m: i for i, m in enumerate(MODES)}


def measure_name(measure: str) -> str:
    return MEASURE_NAMES.get(measure, measure)


def pick_measure(measures, preferred: str = "ndcg_cut_10") -> str:
    measures = list(dict.fromkeys(measures))
    return preferred if preferred in measures else sorted(measures)[0]


def _fmt(x: float, digits: int = 3) -> str:
    return "--" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _truthy(v) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    return bool(v) and not (isinstance(v, float) and math.isnan(v))


def _system_sort_key(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(_mode=frame["mode"].map(MODE_ORDER).fillna(99)).sort_values(
        ["backbone", "encoder", "k_q", "k_p", "_mode"]).drop(columns="_mode")


def effectiveness_table(
    means: pd.DataFrame,
    significance: pd.DataFrame | None = None,
    paper: pd.DataFrame | None = None,
    measure: str | None = None,
) -> Table:
    """Systems x datasets of mean `measure`; the best value per dataset bold; marks vs the baseline.

    `paper` (reference, dataset, measure, mode, value, source) adds non-competing "paper" rows for the
    datasets that also appear in the measured columns.
    """
    measure = measure or pick_measure(means["measure"])
    data = means[means["measure"] == measure]
    datasets = sorted(data["dataset"].astype(str).unique())
    wide = data.pivot_table(index="system", columns="dataset", values="mean", aggfunc="first")
    systems = _system_sort_key(data.drop_duplicates("system"))[["system", "backbone", "encoder", "k_q", "k_p",
                                                              "mode"]]
    best = {d: wide[d].max() for d in datasets}
    marks: dict[tuple[str, str], tuple[Raw, ...]] = {}
    baselines: list[str] = []
    test_desc = ""
    if significance is not None and len(significance):
        # Each significance row names its dataset (schema.SIGNIFICANCE_COLUMNS); rows for datasets this
        # table does not show are left out.
        sig = significance[(significance["measure"] == measure)
                           & significance["dataset"].astype(str).isin(datasets)]
        if len(sig):
            # One baseline per table: the most frequent one (marks against several would be ambiguous).
            baseline = sig["baseline"].value_counts().index[0]
            sig = sig[sig["baseline"] == baseline]
            baselines = [baseline]
            tests = ", ".join(sorted(sig["test"].astype(str).unique()))
            corrections = ", ".join(sorted(sig["correction"].astype(str).unique()))
            test_desc = f"paired {tests} test, {corrections}-adjusted p-values"
            for _, row in sig.iterrows():
                if _truthy(row["significant"]):
                    marks[(row["system"], row["dataset"])] = (BETTER,) if row["mean_diff"] > 0 else (WORSE,)
    columns = ["system", Raw("$K_q$", "K_q"), Raw("$K_p$", "K_p"), "mode", *datasets]
    rows = []
    for _, s in systems.iterrows():
        label = f"{s['backbone']}/{s['encoder']}" + (" (baseline)" if s["system"] in baselines else "")
        row = [Cell(label), Cell(str(int(s["k_q"]))), Cell(str(int(s["k_p"]))), Cell(str(s["mode"]))]
        for d in datasets:
            v = wide.at[s["system"], d] if d in wide.columns and s["system"] in wide.index else float("nan")
            is_best = not pd.isna(v) and v == best[d]
            row.append(Cell(_fmt(v), bold=is_best, marks=marks.get((s["system"], d), ())))
        rows.append(row)
    rule_before = set()
    if paper is not None and len(paper):
        ref = paper[(paper["measure"] == measure) & paper["dataset"].astype(str).str.lower().isin(
            [d.lower() for d in datasets])]
        if len(ref):
            rule_before.add(len(rows))
            for (reference, mode), grp in ref.groupby(["reference", "mode"], sort=False):
                vals = {str(r["dataset"]).lower(): r["value"] for _, r in grp.iterrows()}
                k_q = grp["k_q"].iloc[0] if "k_q" in grp else ""
                k_p = grp["k_p"].iloc[0] if "k_p" in grp else ""
                rows.append([Cell(str(reference)), Cell("" if pd.isna(k_q) else str(int(k_q))),
                             Cell("" if pd.isna(k_p) else str(int(k_p))), Cell(str(mode))]
                            + [Cell(_fmt(vals.get(d.lower(), float("nan")))) for d in datasets])
    caption: list = [f"Effectiveness: mean {measure_name(measure)} per dataset and system "
                     "(system = backbone/encoder, K_q query and K_p passage representatives, score mode). "
                     "Bold: best measured value per dataset."]
    if baselines:
        caption += [" ", BETTER, "/", WORSE, f" significantly better/worse than the baseline {baselines[0]} "
                    f"({test_desc}; marked where repbench analyze flags the difference as significant)."]
    else:
        caption.append(" No significance tests were found for this measure.")
    if rule_before:
        caption.append(" Rows below the rule are the paper's reported numbers "
                       "(the paper tables shipped with repbench, a different model size and setting; not compared).")
    return Table(columns=columns, rows=rows, caption=caption, label="tab:effectiveness",
                 align="llll" + "r" * len(datasets), rule_before=rule_before)


def _ci(median: float, low: float, high: float, digits: int) -> str:
    if pd.isna(median):
        return "--"
    return f"{median:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _digits(x: float) -> int:
    return 3 if x < 1 else 2 if x < 100 else 1


def latency_table(bench: pd.DataFrame, paper: pd.DataFrame | None = None) -> Table:
    """Encoding cells: median [95% bootstrap CI] ms/query, peak memory, energy, n; skipped cells listed."""
    enc = bench[is_encode(bench)].copy()
    enc["_k"] = pd.to_numeric(enc["k"], errors="coerce")
    enc["_len"] = pd.to_numeric(enc["input_tokens"], errors="coerce")
    enc = enc.sort_values(["device_label", "backbone", "encoder", "_len", "batch_size", "_k"])
    paper_ms: dict[tuple, float] = {}
    if paper is not None and len(paper):
        for _, r in paper.iterrows():
            paper_ms[(r["backbone"], r["encoder"], int(r["k"]), int(r["input_tokens"]))] = float(r["latency_ms"])

    def paper_for(row) -> float | None:
        # A paper reading matches a cell of the same backbone/encoder/K within 10% of its input length.
        for (bb, e, k, length), ms in paper_ms.items():
            if (bb == base_backbone(row["backbone"]) and e == row["encoder"] and k == row["_k"]
                    and not pd.isna(row["_len"]) and abs(row["_len"] - length) <= 0.1 * length):
                return ms
        return None

    matched = [paper_for(r) for _, r in enc.iterrows()]
    with_paper = any(m is not None for m in matched)
    multi_device = enc["device_label"].nunique() > 1
    with_floor = "floor_ms" in enc and pd.to_numeric(enc["floor_ms"], errors="coerce").notna().any()
    columns = (["device"] if multi_device else []) + [
        "backbone", "encoder", "K", "input tokens", "batch", "ms/query median [95% CI]", "peak memory (MiB)",
        "energy (J/query)", "n", "IQR/median"] + (["floor ms/query", "MBU", "MFU"] if with_floor else []) + (
        ["paper ms (H100)", "H100 floor ms"] if with_paper else [])
    rows = []
    for (_, r), paper_v in zip(enc.iterrows(), matched, strict=True):
        lead = [Cell(str(r["device_label"]))] if multi_device else []
        common = [Cell(str(r["backbone"])), Cell(str(r["encoder"])), Cell(str(int(r["_k"]))),
                  Cell("--" if pd.isna(r["_len"]) else str(int(r["_len"]))), Cell(str(int(r["batch_size"])))]
        if r["skipped"]:
            rest = [Cell(f"skipped: {r.get('reason') or 'no reason given'}"), Cell("--"), Cell("--"), Cell("0"),
                    Cell("--")]
        else:
            mem = r.get("cell_peak_memory_bytes")  # the cell's own peak; a process-wide one is not shown
            energy = r["energy_j_per_query"]
            d = _digits(r["median_ms"]) if not pd.isna(r["median_ms"]) else 2
            flag = r.get("noise_flag")
            bad = flag in noise.FLAGGED
            ratio = r.get("iqr_over_median")
            rest = [Cell(_ci(r["median_ms"], r["ci_low_ms"], r["ci_high_ms"], d), marks=(NOISY,) if bad else ()),
                    Cell("--" if mem is None or pd.isna(mem) else f"{float(mem) / 2**20:.1f}"),
                    Cell("--" if energy is None or pd.isna(energy) else f"{float(energy):.3g}"),
                    Cell(str(int(r["n_samples"]))),
                    Cell("--" if ratio is None or pd.isna(ratio) else f"{ratio:.0%}" + (f" {flag}" if bad else ""),
                         bold=bad)]
        extra = _roofline_cells(r) if with_floor else []
        if with_paper:
            extra += [Cell("--" if paper_v is None else f"{paper_v:.1f}"), Cell(_paper_floor(r) if paper_v else "--")]
        rows.append(lead + common + rest + extra)
    devices = ", ".join(sorted(enc["device_label"].astype(str).unique()))
    caption = [f"Encoding latency on {devices}: median ms per query with a 95% percentile-bootstrap CI from "
               "the raw per-iteration samples (time per call divided by the batch size); peak memory in MiB: the "
               "cell's own (its backbone's weights plus the growth over its memory pass; '--' where the file holds "
               "only a process-wide peak, which includes backbones loaded earlier); "
               "energy in joules per query ('--' where not measured, e.g. on CPU)."]
    if with_floor:
        sources = "; ".join(sorted(str(v) for v in enc["floor_source"].dropna().unique()))
        caption.append(" Floor: the roofline floor per query (each forward pass's max of FLOPs / peak FLOP/s and "
                       "bytes / peak bandwidth, summed); MBU and MFU: bytes and FLOPs per second over the peaks ("
                       + sources + "); formulas in the README, section Roofline.")
    if with_paper:
        caption.append(" Paper: the paper's H100 reading for the same backbone, encoder and K at a similar "
                       "input length (docs/method.md §8); H100 floor: that cell's floor for the published "
                       "architecture in bfloat16 on an H100 SXM (989.4 TFLOP/s, 3.35 TB/s).")
    measured = enc[~enc["skipped"].astype(bool)]
    caption += [" ", NOISY, f": flagged noisy, IQR/median of the raw samples > {noise.NOISY_IQR_RATIO:.0%} "
                f"(invalid > {noise.INVALID_IQR_RATIO:.0%}); drawn hollow in the figures, its differences from other "
                f"cells are not findings ({int(noise.flagged(measured).sum())} of {len(measured)} cells). "
                + load_statement(measured)]
    align = "l" * int(multi_device) + "llrrr" + "rrrrr" + ("rrr" if with_floor else "") + ("rr" if with_paper else "")
    return Table(columns=columns, rows=rows, caption=caption, label="tab:latency", align=align)


def _roofline_cells(r) -> list[Cell]:
    floor, mbu, mfu = (pd.to_numeric(r.get(k), errors="coerce") for k in ("floor_ms", "mbu", "mfu"))
    if r["skipped"] or pd.isna(floor):
        return [Cell("--"), Cell("--"), Cell("--")]
    per_query = floor / float(r.get("queries_per_call") or 1)
    return [Cell(f"{per_query:.3g}"), Cell("--" if pd.isna(mbu) else f"{mbu:.2%}"),
            Cell("--" if pd.isna(mfu) else f"{mfu:.2%}")]


def _paper_floor(r) -> str:
    from repbench.analysis.roofline_cells import paper_floor_ms

    tokens = pd.to_numeric(r.get("model_input_tokens"), errors="coerce")
    if pd.isna(tokens):
        return "--"
    ms = paper_floor_ms(str(r["backbone"]), str(r["encoder"]), int(r["_k"]), int(tokens))
    return "--" if math.isnan(ms) else f"{ms:.2f}"


def oracle_table(oracle: pd.DataFrame, measure: str | None = None) -> Table:
    """Oracle mean vs the best fixed cell, with bootstrap CIs and the gap, per group and option set."""
    measure = measure or pick_measure(oracle["measure"])
    data = oracle[oracle["measure"] == measure].copy()
    scope_order = {"kq": 0, "kp": 1, "grid": 2}
    data["_scope"] = data["scope"].map(scope_order).fillna(9)
    data = data.sort_values(["dataset", "backbone", "encoder", "mode", "_scope", "fixed_k"])
    columns = ["dataset", "system", "options", "n", "oracle [95% CI]", "best fixed cell", "fixed [95% CI]",
               "gap [95% CI]"]
    rows = []
    for _, r in data.iterrows():
        rows.append([
            Cell(str(r["dataset"])), Cell(f"{r['backbone']}/{r['encoder']}/{r['mode']}"),
            Cell(_scope_label(r)), Cell(str(int(r["n"]))),
            Cell(_ci(r["oracle_mean"], r["oracle_ci_low"], r["oracle_ci_high"], 3)),
            Cell(str(r["best_cell"])), Cell(_ci(r["best_mean"], r["best_ci_low"], r["best_ci_high"], 3)),
            Cell(_ci(r["gap"], r["gap_ci_low"], r["gap_ci_high"], 3)),
        ])
    label = str(data["label"].dropna().iloc[0]) if data["label"].notna().any() else "optimistic upper bound"
    caption = [f"Per-query oracle over (K_q, K_p) vs the best fixed cell, mean {measure_name(measure)} with "
               f"95% bootstrap CIs over queries. The oracle is an {label}: it is not an achievable system. "
               "Options: K_q varies at fixed K_p (kq), K_p varies at fixed K_q (kp), or the whole grid; "
               "budget limits shown where set."]
    return Table(columns=columns, rows=rows, caption=caption, label="tab:oracle", align="lllrrlrr")


def _scope_label(r) -> str:
    scope = str(r["scope"])
    if scope == "kq" and not pd.isna(r["fixed_k"]):
        text = f"K_q varies, K_p={int(r['fixed_k'])}"
    elif scope == "kp" and not pd.isna(r["fixed_k"]):
        text = f"K_p varies, K_q={int(r['fixed_k'])}"
    else:
        text = "grid"
    budget = [f"{n}<={int(r[c])}" for n, c in (("K_q", "budget_q"), ("K_p", "budget_p")) if not pd.isna(r[c])]
    return text + (f" ({', '.join(budget)})" if budget else "")
