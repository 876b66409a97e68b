"""The end-of-run latency summary: each encode cell's median at K relative to K=1, as rows and as text.

The cells themselves: cells.py (grids), session.py (shared state), encode_runner.py and
search_runner.py (one runner per cell kind), results.py and cell_results.py (what a cell records).
"""

from __future__ import annotations

import math
from typing import Any

NOISE_FLAGS = ("noisy", "invalid")  # stats.flag values whose medians are not read as results


def relative_latency_table(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (backbone, family, encoder, input length, batch): median latency at each K over K=1."""
    groups: dict[tuple, dict[int, float]] = {}
    for r in results:
        if r.get("input_tokens") is None:
            continue
        key = (r["family"], r["backbone"], r["encoder"], r["input_tokens"], r["batch_size"])
        groups.setdefault(key, {})[r["k"]] = (r["median_s"], r.get("flag"))
    rows = []
    for (family, backbone, encoder, length, bs), by_k in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0]))):
        base, base_flag = by_k.get(1, (None, None))
        for k in sorted(by_k):
            median, flag = by_k[k]
            # A ratio resting on a cell whose samples are too spread (stats.flag) is noise, not a result.
            noisy = [f for f in (flag, base_flag) if f in NOISE_FLAGS]
            rows.append({"family": family, "backbone": backbone, "encoder": encoder, "input_tokens": length,
                         "batch_size": bs, "k": k, "median_ms": median * 1e3,
                         "rel_k1": (median / base) if base else None,
                         "noise": "invalid" if "invalid" in noisy else (noisy[0] if noisy else None)})
    return rows


def format_relative_table(rows: list[dict[str, Any]]) -> str:
    """Text table: one line per (family, backbone, encoder, L, batch), columns K with latency / K=1; a ratio
    resting on a cell flagged noisy or invalid (at K or at K=1) shows the flag instead of a number."""
    if not rows:
        return "(no encoding cells measured)"
    ks = sorted({r["k"] for r in rows})
    lines = []
    header = f"{'family':<10}{'backbone':<38}{'encoder':<11}{'L':>5}{'B':>4}{'K=1 ms':>10}" + "".join(
        f"{'x K=' + str(k):>9}" for k in ks)
    lines.append(header)
    lines.append("-" * len(header))
    seen: dict[tuple, dict[int, dict[str, Any]]] = {}
    for r in rows:
        seen.setdefault((r["family"], r["backbone"], r["encoder"], r["input_tokens"], r["batch_size"]), {})[r["k"]] = r
    for (family, backbone, encoder, length, bs), by_k in seen.items():
        k1 = by_k.get(1)
        cells = []
        for k in ks:
            rel, noise = by_k.get(k, {}).get("rel_k1"), by_k.get(k, {}).get("noise")
            if noise:
                cells.append(f"{noise:>9}")
            else:
                cells.append(f"{rel:>9.2f}" if rel is not None and not math.isnan(rel) else f"{'-':>9}")
        k1_ms = f"{k1['median_ms']:>10.2f}" if k1 else f"{'-':>10}"
        lines.append(f"{family:<10}{backbone:<38}{encoder:<11}{length:>5}{bs:>4}{k1_ms}" + "".join(cells))
    return "\n".join(lines)


def session_summary(results: list[dict[str, Any]], telemetry_note: str | None, loaded: dict[str, Any],
                    skipped: list[Any]) -> tuple[str | None, list[str]]:
    """The end-of-run summary: the K table (None without encode cells) and the lines under it (noise
    counts, telemetry fallback, each backbone's cold start, each skipped cell and why)."""
    rows = relative_latency_table(results)
    notes = []
    if rows:
        notes.append("sequential (AR) should grow ~linearly in K; parallel (diffusion) within ~(L+K)/L of K=1. "
                     "'noisy'/'invalid': the cell at K or at K=1 is too spread (IQR/median > 10%/25%) for its "
                     "ratio to be read; rerun it on a quiet machine.")
    flags = [r.get("flag") for r in results]
    if flags.count("invalid") or flags.count("noisy"):
        notes.append(f"noise: {flags.count('invalid')} cells with IQR/median > 25% (invalid: rerun, e.g. with "
                     f"--min-rounds/--min-time higher on a quiet machine), {flags.count('noisy')} > 10% (noisy), "
                     f"of {len(flags)}; see extra_info.stats.flag")
    if telemetry_note:
        notes.append(f"telemetry: {telemetry_note}")
    for name, lb in loaded.items():
        cs = lb.cold_start
        notes.append(f"cold start {name}: load {cs['load_s']:.2f} s, first call {cs['first_call_s'] * 1e3:.1f} ms")
    notes.extend(f"skipped {s.name}: {s.extra_info['reason']}" for s in skipped)
    return (format_relative_table(rows) if rows else None), notes
