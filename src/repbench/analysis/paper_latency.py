"""Measured latency next to the paper's H100 readings (the paper tables shipped in repbench/recipes/paper/),
cell by cell.

The paper's encoding curves were read at input lengths 40, 416 and 790 tokens; a measured length is
compared with the paper curve interpolated linearly between its two neighbouring readings, and marked
`extrapolated` outside the read range (never silently). Search readings are at the measured index sizes
themselves (1K, 10K, 100K) or not compared. Ratios are measured / paper: > 1 is slower than the paper.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from repbench.analysis.roofline_cells import paper_floor_ms, roofline_fields, run_rooflines
from repbench.errors import RepbenchError
from repbench.schema.bench import BenchRun

ENCODING_PAPER_COLUMNS = ("backbone", "encoder", "k", "input_tokens", "latency_ms", "source")
SEARCH_PAPER_COLUMNS = ("mode", "k_p", "index_size", "latency_ms", "source")
COLUMNS = ("kind", "backbone", "encoder", "k", "input_tokens", "mode", "k_p", "index_size", "search_device",
           "measured_ms", "paper_ms", "paper_reading", "ratio", "paper_source", "floor_ms", "h100_floor_ms",
           "paper_over_floor")


def _check(frame: pd.DataFrame | None, columns: tuple[str, ...], name: str) -> None:
    if frame is not None and (missing := [c for c in columns if c not in frame.columns]):
        raise RepbenchError(f"paper table {name}: expected columns {', '.join(columns)}; missing {', '.join(missing)}")


def interpolate(xs: np.ndarray, ys: np.ndarray, x: float) -> tuple[float, str]:
    """Paper value at `x` from readings (xs, ys): exact, linearly interpolated, or linearly extrapolated
    from the two nearest readings (labelled so)."""
    order = np.argsort(xs)
    xs, ys = np.asarray(xs, float)[order], np.asarray(ys, float)[order]
    hit = np.flatnonzero(xs == x)
    if hit.size:
        return float(ys[hit[0]]), "read"
    if xs.size < 2:
        return float("nan"), "no reading"
    if xs[0] < x < xs[-1]:
        return float(np.interp(x, xs, ys)), "interpolated"
    i = (0, 1) if x < xs[0] else (-2, -1)
    slope = (ys[i[1]] - ys[i[0]]) / (xs[i[1]] - xs[i[0]])
    return float(ys[i[0]] + slope * (x - xs[i[0]])), "extrapolated"


def _base(name: object) -> str:
    return str(name).split(":", 1)[0]


def compare_with_paper(run: BenchRun, encoding: pd.DataFrame | None, search: pd.DataFrame | None) -> pd.DataFrame:
    """One row per measured batch-1 cell that the paper has a reading for (same base backbone, encoder
    and K; or same score mode, K_p and index size at query batch 1). `encoding` and `search` are the paper
    tables encoding_latency_vs_length and search_latency_vs_index_size (report.inputs.load_paper)."""
    _check(encoding, ENCODING_PAPER_COLUMNS, "encoding_latency_vs_length")
    _check(search, SEARCH_PAPER_COLUMNS, "search_latency_vs_index_size")
    cells = run.cells[(run.cells["status"] != "skipped") & (run.cells["n"] > 0)]
    roofs = run_rooflines(run)
    rows = []
    if encoding is not None:
        enc = cells[cells["encoder"].isin(("sequential", "parallel")) & (cells["batch_size"] == 1)]
        for _, c in enc.iterrows():
            ref = encoding[(encoding["backbone"] == _base(c["backbone"])) & (encoding["encoder"] == c["encoder"])
                           & (encoding["k"] == c["k"])]
            if ref.empty or c["input_tokens"] is None:
                continue
            paper_ms, how = interpolate(ref["input_tokens"].to_numpy(), ref["latency_ms"].to_numpy(),
                                        float(c["input_tokens"]))
            measured = c["median_s"] * 1e3
            rows.append({"kind": "encode", "backbone": c["backbone"], "encoder": c["encoder"], "k": int(c["k"]),
                         "input_tokens": int(c["input_tokens"]), "measured_ms": measured, "paper_ms": paper_ms,
                         "paper_reading": how, "ratio": measured / paper_ms, "paper_source": ref["source"].iloc[0],
                         **_floors(run, c, roofs, paper_ms)})
    if search is not None:
        sc = cells[cells["encoder"].astype(str).str.startswith("search:") & (cells["query_batch"] == 1)]
        for _, c in sc.iterrows():
            ref = search[(search["mode"] == c["mode"]) & (search["k_p"] == c["k_p"])
                         & (search["index_size"] == c["index_size"])]
            if ref.empty:
                continue
            measured, paper_ms = c["median_s"] * 1e3, float(ref["latency_ms"].iloc[0])
            rows.append({"kind": "search", "backbone": c["backbone"], "encoder": c["encoder"], "mode": c["mode"],
                         "k_p": int(c["k_p"]), "index_size": int(c["index_size"]),
                         "search_device": c["search_device"], "measured_ms": measured,
                         "paper_ms": paper_ms, "paper_reading": "read", "ratio": measured / paper_ms,
                         "paper_source": ref["source"].iloc[0]})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _floors(run: BenchRun, cell: pd.Series, roofs: list, paper_ms: float) -> dict[str, float]:
    """The measured cell's own floor (its roofline record) and the floor of the paper's setting: the
    published architecture in bfloat16 on an H100 SXM at the cell's model tokens, with paper / that floor."""
    i = cell.name
    own = roofline_fields(roofs[i] if i < len(roofs) else None)["floor_ms"]
    tokens = run.records[i].get("model_input_tokens") if i < len(run.records) else None
    h100 = (paper_floor_ms(str(cell["backbone"]), str(cell["encoder"]), int(cell["k"]), int(tokens))
            if tokens is not None else float("nan"))
    return {"floor_ms": own, "h100_floor_ms": h100, "paper_over_floor": paper_ms / h100 if h100 > 0 else float("nan")}


def paper_markdown(table: pd.DataFrame, device: str) -> str:
    """The comparison as Markdown: one table per kind, ratios with two decimals."""
    out = [f"# Measured on {device} vs the paper's H100 readings\n",
           "ratio = measured / paper (> 1: slower than the paper). Paper encoding readings were taken at 40, 416 "
           "and 790 input tokens; other lengths are interpolated (or extrapolated, so marked) along the paper's "
           "curve. Sources: repbench/recipes/paper/*.csv (each row's `source`).\n"]
    enc = table[table["kind"] == "encode"]
    if len(enc):
        out += ["## Encoding, batch 1 (ms/query)\n", "floor: this cell's roofline floor on the measuring device; "
                "H100 floor: the same cell for the published architecture in bfloat16 on an H100 SXM (989.4 TFLOP/s, "
                "3.35 TB/s), and the paper's reading over it (README, section Roofline).\n",
                "| backbone | encoder | K | input tokens | measured | paper | paper reading | ratio | floor | "
                "H100 floor | paper / H100 floor |", "|:---|:---|---:|---:|---:|---:|:---|---:|---:|---:|---:|"]
        out += [f"| {r.backbone} | {r.encoder} | {int(r.k)} | {int(r.input_tokens)} | {r.measured_ms:.2f} | {r.paper_ms:.2f} | "
                f"{r.paper_reading} | {r.ratio:.2f} | {_num(r.floor_ms)} | {_num(r.h100_floor_ms)} | "
                f"{_num(r.paper_over_floor)} |" for r in enc.itertuples()]
        out.append("")
    sea = table[table["kind"] == "search"]
    if len(sea):
        out += ["## Exact search, query batch 1 (ms/query)\n", "| kind | searched on | mode | K_p | index size | "
                "measured | paper | ratio |", "|:---|:---|:---|---:|---:|---:|---:|---:|"]
        out += [f"| {r.encoder} | {r.search_device} | {r.mode} | {int(r.k_p)} | {int(r.index_size):,} | {r.measured_ms:.3f} | "
                f"{r.paper_ms:.3f} | {r.ratio:.2f} |" for r in sea.itertuples()]
        out.append("")
    if table.empty:
        out.append("No measured cell has a paper reading (backbones, K or index sizes differ).\n")
    return "\n".join(out)


def _num(value: float) -> str:
    return "--" if value is None or value != value else f"{value:.2f}"
