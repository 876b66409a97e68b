"""Statistical comparison of a NEW result against a BASE one (docs/methodology.md rules 14-16).

Latency: cells are matched by configuration; per cell the ratio NEW/BASE of medians with a percentile
bootstrap 95% CI from the raw per-iteration samples, and a verdict that needs both a ratio beyond the
tolerance and a CI that excludes 1. The regression gate (`gate_failures`) is stricter still: the CI's
lower bound must clear the gate threshold, so a noisy cell never fails a build on its point estimate.

Effectiveness: per (dataset, backbone, encoder, k_q, k_p, mode, measure) the paired mean difference over
queries with a paired test, and a 2CR-style verdict (OK / OKish / FAIL) on the size of the difference.

Everything here is a pure function on tidy tables. Rendering (terminal rows, Markdown, JSON, the forest
plot) is `repbench.report.compare`; the environment facts and their diff are
`repbench.telemetry.environment_diff`; the bootstrap and tests are `repbench.stats`.
"""

from __future__ import annotations

import fnmatch
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from repbench.analysis.baselines import PerQueryRun
from repbench.errors import RepbenchError
from repbench.schema.bench import CELL_KEYS, DISAMBIGUATION_KEYS, SEARCH_KEYS, BenchRun
from repbench.stats import adjust_pvalues, paired_test, ratio_of_medians_ci
from repbench.telemetry.environment_diff import environment_differences, environment_facts

EFF_KEYS = ("dataset", "backbone", "encoder", "k_q", "k_p", "mode", "measure")
OK_TOLERANCE = 0.0005  # 2CR: scores equal to the reported precision
VERDICTS = ("faster", "slower", "same")


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
    noise differs (e.g. `("search:*", 0.25)`, docs/methodology.md rule 15); other cells use `tolerance`.

    Result table columns: label, the key columns, [base_backbone, new_backbone], n_base, n_new,
    median_base_s, median_new_s, ratio, ci_low, ci_high, tolerance, verdict, mw_p (Mann-Whitney U two-sided, a second
    opinion), iqr_rel_base, iqr_rel_new (IQR/median; > 0.10 is noisy per docs/methodology.md rule 6).
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

    from repbench.analysis.roofline_cells import efficiency_fields, run_rooflines

    broofs, nroofs = run_rooflines(base), run_rooflines(new)  # MBU per benchmark, by position as in .cells
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
                   iqr_rel_base=_iqr_rel(b["samples_s"]), iqr_rel_new=_iqr_rel(n["samples_s"]),
                   **efficiency_fields(broofs[bidx[key]], nroofs[nidx[key]]))
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        table = pd.DataFrame(columns=["label", *keys, "n_base", "n_new", "median_base_s", "median_new_s",
                                      "ratio", "ci_low", "ci_high", "tolerance", "verdict", "mw_p", "iqr_rel_base",
                                      "iqr_rel_new", "mbu_base", "mbu_new", "efficiency_ratio", "mfu_base",
                                      "mfu_new"])
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
    above it too (a regression beyond the threshold with statistical evidence, docs/methodology.md rule 15)."""
    if table.empty:
        return table
    limit = 1.0 + fail_above
    mask = (table["verdict"] == "slower") & (table["ratio"] > limit) & (table["ci_low"] > limit)
    return table[mask]


# -------------------------------------------------------------------------------------- environment

def bench_environment_warnings(base: BenchRun, new: BenchRun, base_cells: pd.DataFrame | None = None,
                               new_cells: pd.DataFrame | None = None) -> list[str]:
    """Environment differences between two bench runs (within one run: only dtype/attn/device can)."""
    bf = environment_facts(base.environment, base.cells if base_cells is None else base_cells,
                           base.header.get("config"))
    nf = environment_facts(new.environment, new.cells if new_cells is None else new_cells,
                           new.header.get("config"))
    return environment_differences(bf, nf) + load_differences(base, new)


def median_load(run: BenchRun) -> float | None:
    """Median 1-minute load average recorded around the run's cells (load_avg_before/after), or None."""
    values = [float(r[k]) for r in run.records for k in ("load_avg_before", "load_avg_after", "load_average")
              if isinstance(r.get(k), (int, float)) and np.isfinite(r[k])]
    return float(np.median(values)) if values else None


def load_differences(base: BenchRun, new: BenchRun) -> list[str]:
    """A warning when the two runs were taken under clearly different machine load: their latency ratios
    then include the contention, which no within-run CI covers."""
    lb, ln = median_load(base), median_load(new)
    if lb is None or ln is None:
        missing = [side for side, v in (("BASE", lb), ("NEW", ln)) if v is None]
        return [f"{' and '.join(missing)} recorded no machine load, so contention cannot be ruled out"] \
            if len(missing) == 1 else []
    low, high = sorted((lb, ln))
    if high - low >= 1.0 and high >= 2 * max(low, 0.25):
        return [f"the runs were taken under different load: NEW at {ln:.1f}, BASE at {lb:.1f} (median 1-minute "
                "load average over the cells); latency ratios include that contention, rerun both on a quiet "
                "machine before reading a difference as a change"]
    return []


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
    # One table is one family of comparisons: Holm across all its cells (docs/methodology.md rule 16).
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
