"""Statistical comparison of a NEW result against a BASE one (methodology rules 14-16).

Latency: cells are matched by configuration; per cell the ratio NEW/BASE of medians with a percentile
bootstrap 95% CI from the raw per-iteration samples, and a verdict that needs both a ratio beyond the
tolerance and a CI that excludes 1. The regression gate (`gate_failures`) is stricter still: the CI's
lower bound must clear the gate threshold, so a noisy cell never fails a build on its point estimate.

Effectiveness: per (dataset, backbone, encoder, k_q, k_p, mode, measure) the paired mean difference over
queries with a paired test, and a 2CR-style verdict (OK / OKish / FAIL) on the size of the difference.

Everything here is a pure function on tidy tables; rendering (Markdown, figure) takes the result tables.
"""

from __future__ import annotations

import fnmatch
import io
import math
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from repbench.analysis.baselines import (
    CELL_KEYS,
    DISAMBIGUATION_KEYS,
    SEARCH_KEYS,
    BenchRun,
    PerQueryRun,
    gpu_devices,
)
from repbench.errors import RepbenchError
from repbench.telemetry.stats import bootstrap_statistics

EFF_KEYS = ("dataset", "backbone", "encoder", "k_q", "k_p", "mode", "measure")
OK_TOLERANCE = 0.0005  # 2CR: scores equal to the reported precision
VERDICTS = ("faster", "slower", "same")


# ------------------------------------------------------------------------------------------ bootstrap

def ratio_of_medians_ci(base: np.ndarray, new: np.ndarray, *, n_boot: int = 10_000, confidence: float = 0.95,
                        rng: np.random.Generator | None = None) -> tuple[float, float, float]:
    """(median(new)/median(base), ci_low, ci_high): percentile bootstrap, the two sides resampled
    independently (the samples are unpaired iterations of two runs)."""
    base = np.asarray(base, dtype=float)
    new = np.asarray(new, dtype=float)
    if len(base) == 0 or len(new) == 0:
        raise ValueError("both sample sets must be non-empty")
    rng = rng if rng is not None else np.random.default_rng(0)
    ratio = float(np.median(new) / np.median(base))
    boots = bootstrap_statistics(new, np.median, n_boot, rng) / bootstrap_statistics(base, np.median, n_boot, rng)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(boots, [alpha, 1.0 - alpha])
    return ratio, float(lo), float(hi)


def latency_verdict(ratio: float, ci_low: float, ci_high: float, tolerance: float) -> str:
    """`same` when the CI contains 1 or the ratio is within +-tolerance of 1; else faster/slower."""
    if ci_low <= 1.0 <= ci_high or abs(ratio - 1.0) <= tolerance:
        return "same"
    return "slower" if ratio > 1.0 else "faster"


# --------------------------------------------------------------------------------------- cell matching

def cell_label(row: dict[str, Any] | pd.Series, keys: Sequence[str]) -> str:
    """Short human name of a cell, e.g. `tiny-ar/sequential k=4 L=128 B=1`."""
    get = row.get
    parts = []
    head = "/".join(str(get(k)) for k in ("backbone", "encoder") if k in keys and get(k) is not None)
    if head:
        parts.append(head)
    short = {"k": "k", "input_tokens": "L", "batch_size": "B", "index_size": "N", "k_p": "k_p",
             "mode": "mode", "query_batch": "qB"}
    for k in keys:
        if k in ("backbone", "encoder") or get(k) is None:
            continue
        parts.append(f"{short.get(k, k)}={get(k)}")
    return " ".join(parts) if parts else "(all)"


def _key_columns(by: str, any_encoder: bool) -> list[str]:
    keys = list(CELL_KEYS) + list(SEARCH_KEYS)
    if by == "backbone":
        keys.remove("backbone")
    elif by != "cell":
        raise RepbenchError(f"--by must be 'cell' or 'backbone', got {by!r}")
    if any_encoder:
        keys.remove("encoder")
    return keys


def _index_cells(cells: pd.DataFrame, keys: list[str]) -> dict[tuple, int]:
    return {tuple(row[k] for k in keys): i for i, row in cells.iterrows()}


def _duplicates(cells: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    tuples = pd.Series([tuple(r[k] for k in keys) for _, r in cells.iterrows()], index=cells.index, dtype=object)
    return cells[tuples.duplicated(keep=False)]


def _resolve_keys(sides: list[tuple[str, pd.DataFrame]], keys: list[str]) -> list[str]:
    """Extend the match keys with dtype/attn/device/family when one file holds two otherwise identical
    cells; refuse when even that does not tell them apart."""
    extra: list[str] = []
    for _, cells in sides:
        dup = _duplicates(cells, keys)
        for k in DISAMBIGUATION_KEYS:
            if k not in keys and k not in extra and dup[k].astype(str).nunique() > 1:
                extra.append(k)
    keys = keys + extra
    for label, cells in sides:
        dup = _duplicates(cells, keys)
        if len(dup):
            names = ", ".join(map(str, dup["name"].head(4)))
            raise RepbenchError(f"{label}: several benchmarks share the cell "
                                f"{cell_label(dup.iloc[0], keys)!r} ({names}); cannot match them one to one")
    return keys


@dataclass
class LatencyComparison:
    table: pd.DataFrame        # one row per matched cell (see compare_latency)
    only_base: list[str]       # labels of cells present in BASE only
    only_new: list[str]
    skipped: list[str]         # "label: side skipped (reason)"
    keys: list[str]
    tolerance: float
    warnings: list[str] = field(default_factory=list)


def _select_backbone(cells: pd.DataFrame, backbone: str | None, label: str) -> pd.DataFrame:
    if backbone is None:
        return cells
    sel = cells[cells["backbone"].astype(str) == backbone]
    if sel.empty:
        have = sorted({str(b) for b in cells["backbone"] if b is not None})
        raise RepbenchError(f"{label}: no cells for backbone {backbone!r} (it has: {', '.join(have) or 'none'})")
    return sel


def compare_latency(base: BenchRun, new: BenchRun, *, tolerance: float = 0.05, by: str = "cell",
                    base_backbone: str | None = None, new_backbone: str | None = None,
                    any_encoder: bool = False, n_boot: int = 10_000, confidence: float = 0.95,
                    seed: int = 0, group_tolerances: Sequence[tuple[str, float]] = ()) -> LatencyComparison:
    """Match cells of two bench runs and compare their latency.

    `by="backbone"` compares `base_backbone` cells of BASE with `new_backbone` cells of NEW (which may be
    the same run) on matching (encoder, k, input_tokens, batch_size[, search keys]); `any_encoder` also
    drops the encoder from the match, so e.g. sequential AR cells meet parallel diffusion cells.
    `group_tolerances`: (glob pattern on the cell label, tolerance) pairs, first match wins, for groups whose
    noise differs (e.g. `("search:*", 0.25)`, methodology rule 15); other cells use `tolerance`.

    Result table columns: label, the key columns, [base_backbone, new_backbone], n_base, n_new,
    median_base_s, median_new_s, ratio, ci_low, ci_high, tolerance, verdict, mw_p (Mann-Whitney U two-sided, a second
    opinion), iqr_rel_base, iqr_rel_new (IQR/median; > 0.10 is noisy per methodology rule 6).
    """
    if tolerance < 0 or any(t < 0 for _, t in group_tolerances):
        raise RepbenchError("tolerances must be >= 0")
    if by == "backbone" and (base_backbone is None or new_backbone is None):
        raise RepbenchError("--by backbone needs --base-backbone and --new-backbone")
    keys = _key_columns(by, any_encoder)
    bcells = _select_backbone(base.cells, base_backbone if by == "backbone" else None, str(base.path))
    ncells = _select_backbone(new.cells, new_backbone if by == "backbone" else None, str(new.path))

    skipped: list[str] = []
    for side, cells in (("BASE", bcells), ("NEW", ncells)):
        for _, row in cells[cells["status"] == "skipped"].iterrows():
            skipped.append(f"{cell_label(row, list(CELL_KEYS) + list(SEARCH_KEYS))}: skipped in {side} "
                           f"({row['reason'] or 'no reason given'})")
    bok = bcells[bcells["status"] != "skipped"]
    nok = ncells[ncells["status"] != "skipped"]
    keys = _resolve_keys([(str(base.path), bok), (str(new.path), nok)], keys)
    bidx, nidx = _index_cells(bok, keys), _index_cells(nok, keys)

    from scipy.stats import mannwhitneyu

    rows = []
    for key in sorted(set(bidx) & set(nidx), key=_sort_key):
        b, n = bok.loc[bidx[key]], nok.loc[nidx[key]]
        label = cell_label(dict(zip(keys, key, strict=True)), keys)
        if by == "backbone":
            label = f"{base_backbone} -> {new_backbone}: {label}"
        # A per-cell stream keyed by the label: a cell's CI does not change when other cells come or go.
        rng = np.random.default_rng([seed, zlib.crc32(label.encode())])
        tol = next((t for pattern, t in group_tolerances if fnmatch.fnmatchcase(label, pattern)), tolerance)
        ratio, lo, hi = ratio_of_medians_ci(b["samples_s"], n["samples_s"], n_boot=n_boot,
                                            confidence=confidence, rng=rng)
        mw_p = float(mannwhitneyu(n["samples_s"], b["samples_s"], alternative="two-sided").pvalue)
        row = {"label": label, **dict(zip(keys, key, strict=True))}
        if by == "backbone":
            row.update(base_backbone=base_backbone, new_backbone=new_backbone)
        row.update(n_base=int(b["n"]), n_new=int(n["n"]), median_base_s=float(b["median_s"]),
                   median_new_s=float(n["median_s"]), ratio=ratio, ci_low=lo, ci_high=hi, tolerance=tol,
                   verdict=latency_verdict(ratio, lo, hi, tol), mw_p=mw_p,
                   iqr_rel_base=_iqr_rel(b["samples_s"]), iqr_rel_new=_iqr_rel(n["samples_s"]))
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        table = pd.DataFrame(columns=["label", *keys, "n_base", "n_new", "median_base_s", "median_new_s",
                                      "ratio", "ci_low", "ci_high", "tolerance", "verdict", "mw_p", "iqr_rel_base",
                                      "iqr_rel_new"])
    # A cell skipped on the other side is reported under `skipped`, not as missing there.
    bskip = set(_index_cells(bcells[bcells["status"] == "skipped"], keys))
    nskip = set(_index_cells(ncells[ncells["status"] == "skipped"], keys))
    only_base = [cell_label(dict(zip(keys, k, strict=True)), keys)
                 for k in sorted(bidx, key=_sort_key) if k not in nidx and k not in nskip]
    only_new = [cell_label(dict(zip(keys, k, strict=True)), keys)
                for k in sorted(nidx, key=_sort_key) if k not in bidx and k not in bskip]
    return LatencyComparison(table=table, only_base=only_base, only_new=only_new,
                             skipped=skipped, keys=keys, tolerance=tolerance)


def _sort_key(key: tuple) -> tuple:
    # Numbers in numeric order (k=4 before k=16), then strings, None last.
    return tuple((v is None, not isinstance(v, int | float), v if isinstance(v, int | float) else 0, str(v))
                 for v in key)


def _iqr_rel(x: np.ndarray) -> float:
    q1, med, q3 = np.quantile(x, [0.25, 0.5, 0.75])
    return float((q3 - q1) / med) if med > 0 else float("nan")


def gate_failures(table: pd.DataFrame, fail_above: float) -> pd.DataFrame:
    """Cells that fail a `--fail-above` gate: slower, ratio above 1+fail_above AND the CI's lower bound
    above it too (a regression beyond the threshold with statistical evidence, rule 15)."""
    if table.empty:
        return table
    limit = 1.0 + fail_above
    mask = (table["verdict"] == "slower") & (table["ratio"] > limit) & (table["ci_low"] > limit)
    return table[mask]


# -------------------------------------------------------------------------------------- environment

_ENV_FIELDS = (
    # label, where to look: "gpu" (per-GPU dicts, then the env), "pkg" (package versions), "cpu", "top"
    ("GPU model", "gpu", ("name",)),
    ("GPU driver", "gpu", ("driver_version", "driver")),
    ("CUDA", "gpu", ("cuda_runtime_version", "cuda_version", "cuda_runtime", "torch_cuda", "cuda")),
    ("CUDA driver", "gpu", ("cuda_driver_version",)),
    ("cuDNN", "gpu", ("cudnn_version", "cudnn")),
    ("torch", "pkg", ("torch",)),
    ("transformers", "pkg", ("transformers",)),
    ("CPU model", "cpu", ("model",)),
    ("CPU threads", "cpu", ("torch_threads",)),
)


def _find(obj: Any, names: Sequence[str], depth: int = 3) -> Any:
    """First value under any of `names`, searched breadth-first a few levels deep (GPU captures nest)."""
    level = [obj]
    for _ in range(depth):
        nxt = []
        for d in level:
            if isinstance(d, dict):
                for name in names:
                    if d.get(name) not in (None, ""):
                        return d[name]
                nxt.extend(v for v in d.values() if isinstance(v, dict | list))
            elif isinstance(d, list):
                nxt.extend(v for v in d if isinstance(v, dict | list))
        level = nxt
    return None


def environment_facts(environment: dict[str, Any], cells: pd.DataFrame | None = None,
                      config: dict[str, Any] | None = None) -> dict[str, str | None]:
    """The facts that make latencies comparable, as strings (None = not recorded)."""
    env = environment or {}
    facts: dict[str, str | None] = {}
    gpus = gpu_devices(env)
    for label, where, names in _ENV_FIELDS:
        if where == "gpu":
            if label == "GPU model":
                vals = [str(g.get("name")) for g in gpus if g.get("name")]
                value = ", ".join(vals) if vals else None
            else:
                value = _find(gpus, names) if gpus else None
                if value is None and gpus:
                    value = _find(env.get("gpu"), names)
        elif where == "pkg":
            value = (env.get("packages") or {}).get(names[0])
        else:
            value = (env.get("cpu") or {}).get(names[0])
        facts[label] = None if value is None else str(value)
    for label, key in (("dtype", "dtype"), ("attention backend", "attn"), ("device", "device")):
        vals: set[str] = set()
        if cells is not None and key in cells.columns:
            vals |= {str(v) for v in cells[key] if v is not None and not (isinstance(v, float) and math.isnan(v))}
        if not vals and config and config.get(key) is not None:
            vals.add(str(config[key]))
        facts[label] = ", ".join(sorted(vals)) if vals else None
    return facts


def environment_differences(base: dict[str, str | None], new: dict[str, str | None]) -> list[str]:
    """One warning per fact that differs (a fact recorded on one side only counts as a difference)."""
    out = []
    for label in dict.fromkeys([*base, *new]):
        b, n = base.get(label), new.get(label)
        if b != n:
            out.append(f"{label} differs: {b or 'not recorded'} (BASE) vs {n or 'not recorded'} (NEW)")
    return out


def bench_environment_warnings(base: BenchRun, new: BenchRun, base_cells: pd.DataFrame | None = None,
                               new_cells: pd.DataFrame | None = None) -> list[str]:
    """Environment differences between two bench runs (within one run: only dtype/attn/device can)."""
    bf = environment_facts(base.environment, base.cells if base_cells is None else base_cells,
                           base.header.get("config"))
    nf = environment_facts(new.environment, new.cells if new_cells is None else new_cells,
                           new.header.get("config"))
    return environment_differences(bf, nf)


# ------------------------------------------------------------------------------------- effectiveness

@dataclass
class EffectivenessComparison:
    table: pd.DataFrame
    only_base: list[str]
    only_new: list[str]
    warnings: list[str]
    keys: list[str]


def effectiveness_verdict(mean_diff: float, tolerance: float) -> str:
    """2CR-style: OK when equal to the reported precision, OKish within `tolerance`, FAIL beyond."""
    d = abs(mean_diff)
    if d <= OK_TOLERANCE + 1e-12:
        return "OK"
    if d <= tolerance + 1e-12:
        return "OKish"
    return "FAIL"


def compare_effectiveness(base: PerQueryRun, new: PerQueryRun, *, test: str = "t", tolerance: float = 0.01,
                          by: str = "cell", base_backbone: str | None = None, new_backbone: str | None = None,
                          n_permutations: int = 10_000) -> EffectivenessComparison:
    """Per (dataset, backbone, encoder, k_q, k_p, mode, measure): mean NEW - BASE over the queries both
    tables hold, a paired test (repbench.analysis.significance.paired_test, NEW as system) and a verdict.

    Columns: label, keys, n, mean_base, mean_new, mean_diff, ci_low, ci_high, effect_size, test, p_value,
    p_holm (Holm-adjusted across the table), verdict.
    """
    from repbench.analysis.significance import adjust_pvalues, paired_test

    keys = list(EFF_KEYS)
    bt, nt = base.table, new.table
    if by == "backbone":
        if base_backbone is None or new_backbone is None:
            raise RepbenchError("--by backbone needs --base-backbone and --new-backbone")
        keys.remove("backbone")
        bt = bt[bt["backbone"].astype(str) == base_backbone]
        nt = nt[nt["backbone"].astype(str) == new_backbone]
        for t, name, path in ((bt, base_backbone, base.path), (nt, new_backbone, new.path)):
            if t.empty:
                raise RepbenchError(f"{path}: no rows for backbone {name!r}")
    for t, path in ((bt, base.path), (nt, new.path)):
        dup = t.duplicated(subset=keys + ["qid"], keep=False)
        if dup.any():
            first = t[dup].iloc[0]
            raise RepbenchError(f"{path}: query {first['qid']!r} appears twice for "
                                f"{_eff_label(first, keys)} (line {int(dup.to_numpy().nonzero()[0][0]) + 2})")
    warnings: list[str] = []
    bgroups = {k: g for k, g in bt.groupby(keys, sort=True)}
    ngroups = {k: g for k, g in nt.groupby(keys, sort=True)}
    rows = []
    for key in sorted(set(bgroups) & set(ngroups)):
        b = bgroups[key].set_index("qid")["value"]
        n = ngroups[key].set_index("qid")["value"]
        common = b.index.intersection(n.index).sort_values()
        label = _eff_label(dict(zip(keys, key, strict=True)), keys)
        if by == "backbone":
            label = f"{base_backbone} -> {new_backbone}: {label}"
        if len(common) < len(b) or len(common) < len(n):
            warnings.append(f"{label}: {len(b) - len(common)} BASE-only and {len(n) - len(common)} NEW-only "
                            f"queries left out of the paired comparison (different query sets)")
        if len(common) < 2:
            warnings.append(f"{label}: fewer than 2 shared queries, not compared")
            continue
        a_new, a_base = n.loc[common].to_numpy(float), b.loc[common].to_numpy(float)
        res = paired_test(a_new, a_base, test=test, n_permutations=n_permutations, seed=0)
        mean_diff = float(a_new.mean() - a_base.mean())
        rows.append({"label": label, **dict(zip(keys, key, strict=True)), "n": len(common),
                     "mean_base": float(a_base.mean()), "mean_new": float(a_new.mean()), "mean_diff": mean_diff,
                     "ci_low": _f(res.get("ci_low")), "ci_high": _f(res.get("ci_high")),
                     "effect_size": _f(res.get("effect_size")), "test": test, "p_value": _f(res.get("p_value")),
                     "verdict": effectiveness_verdict(mean_diff, tolerance)})
    cols = ["label", *keys, "n", "mean_base", "mean_new", "mean_diff", "ci_low", "ci_high", "effect_size",
            "test", "p_value", "p_holm", "verdict"]
    table = pd.DataFrame(rows, columns=cols)
    # One table is one family of comparisons: Holm across all its cells (methodology rule 16).
    table["p_holm"] = adjust_pvalues(table["p_value"].to_numpy(float), "holm") if len(table) else []
    only_base = [_eff_label(dict(zip(keys, k, strict=True)), keys) for k in sorted(set(bgroups) - set(ngroups))]
    only_new = [_eff_label(dict(zip(keys, k, strict=True)), keys) for k in sorted(set(ngroups) - set(bgroups))]
    return EffectivenessComparison(table=table, only_base=only_base, only_new=only_new, warnings=warnings,
                                   keys=keys)


def _f(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _eff_label(row: Any, keys: Sequence[str]) -> str:
    get = row.get if hasattr(row, "get") else row.__getitem__
    parts = [str(get(k)) for k in ("dataset", "backbone", "encoder") if k in keys]
    if "k_q" in keys:
        parts.append(f"q{get('k_q')}p{get('k_p')}")
    parts += [str(get(k)) for k in ("mode", "measure") if k in keys]
    return "/".join(parts)


def effectiveness_environment_warnings(base: PerQueryRun, new: PerQueryRun) -> list[str]:
    if base.header is None or new.header is None:
        return []
    bf = environment_facts(base.environment, None, base.header.get("config"))
    nf = environment_facts(new.environment, None, new.header.get("config"))
    return environment_differences(bf, nf)


# ------------------------------------------------------------------------------------------ rendering

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
                    f"{r['ratio']:.3f}", f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]", r["verdict"], note])
    return out


LATENCY_HEADERS = ["cell", "n base/new", "base median (ms)", "new median (ms)", "ratio new/base", "95% CI",
                   "verdict", "note"]
EFF_HEADERS = ["cell", "n", "mean base", "mean new", "diff", "95% CI", "p", "p Holm", "verdict"]


def effectiveness_rows(comp: EffectivenessComparison) -> list[list[str]]:
    return [[r["label"], str(r["n"]), f"{r['mean_base']:.4f}", f"{r['mean_new']:.4f}", f"{r['mean_diff']:+.4f}",
             f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]", f"{r['p_value']:.3g} ({r['test']})",
             f"{r['p_holm']:.3g}", r["verdict"]]
            for _, r in comp.table.iterrows()]


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in row] for row in rows]
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
        if gate is not None:
            failed = gate["failed"]
            out += [f"Gate --fail-above {gate['fail_above']:.0%}: "
                    + (f"**FAILED** ({', '.join(failed)})" if failed else "passed"), ""]
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
