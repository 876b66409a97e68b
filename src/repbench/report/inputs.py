"""Find the report's inputs under a results directory; each file is read by its one reader in `schema`.

Files are recognised by name (per_query.csv, summary.csv, significance.csv, oracle.csv, oracle_cells.csv)
or, for latency, by content: a pytest-benchmark JSON with `benchmarks` and `machine_info.repbench`.
Every loader returns a tidy pandas table; a malformed file raises InputError naming file and problem.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from repbench.analysis.roofline_cells import roofline_fields, run_rooflines
from repbench.errors import InputError, RepbenchError
from repbench.io import read_csv
from repbench.report.noise import iqr_flag
from repbench.retrieval.modes import MODES
from repbench.schema import ENCODERS, FILE_NAMES, SUMMARY_COLUMNS
from repbench.schema.bench import is_bench_json, read_bench
from repbench.schema.tables import read_table, system_names
from repbench.stats import bootstrap_ci

# What each input kind means, for skip messages.
INPUT_DESCRIPTIONS = {
    "bench": "latency JSON (pytest-benchmark with machine_info.repbench)",
    "effectiveness": "per_query.csv or summary.csv",
    **FILE_NAMES,
}


class SkipRecipe(RepbenchError):
    """A recipe's inputs exist but hold nothing it can draw; the message is the one-line reason."""


def _visible(path: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def find_named(results: Path, filename: str) -> list[Path]:
    results = Path(results)
    return sorted(p for p in results.rglob(filename) if p.is_file() and _visible(p, results))


def find_bench_files(results: Path) -> list[Path]:
    return [p for p in find_named(results, "*.json") if is_bench_json(p)]


def available_inputs(results: Path) -> dict[str, list[Path]]:
    """Input kind -> files found under `results` (an empty list when none)."""
    found = {"bench": find_bench_files(results)}
    for kind, name in FILE_NAMES.items():
        found[kind] = find_named(results, name)
    found["effectiveness"] = found["per_query"] + found["summary"]
    return found


def _fingerprint(files: list[Path]) -> tuple:
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)


def load_csv_kind(results: Path, kind: str) -> pd.DataFrame | None:
    """All files of one CSV kind under `results`, concatenated, with a `source_file` column; None if none."""
    files = find_named(results, FILE_NAMES[kind])
    if not files:
        return None
    return _load_csvs(_fingerprint(files), kind).copy()


@lru_cache(maxsize=32)
def _load_csvs(fingerprint: tuple, kind: str) -> pd.DataFrame:
    frames = []
    for path, _, _ in fingerprint:
        frame = read_table(Path(path), kind)
        frame["source_file"] = path
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def sweep_per_query(results: Path) -> pd.DataFrame | None:
    """Every per_query.csv under `results`, one row per (cell, mode, query, measure) (a table found twice
    counts once), with `system` (backbone/encoder/qK_qpK_p/mode) and `mode_order` (the registry's)."""
    frame = load_csv_kind(results, "per_query")
    if frame is None:
        return None
    keys = ["dataset", "backbone", "encoder", "k_q", "k_p", "mode", "qid", "measure"]
    frame = frame.drop_duplicates(subset=keys, keep="last").reset_index(drop=True)
    frame["k_q"], frame["k_p"] = frame["k_q"].astype(int), frame["k_p"].astype(int)
    frame["qid"], frame["dataset"] = frame["qid"].astype(str), frame["dataset"].astype(str)
    frame["system"] = system_names(frame)
    frame["mode_order"] = frame["mode"].map({m: i for i, m in enumerate(MODES)}).fillna(len(MODES))
    return frame


def effectiveness_means(results: Path) -> pd.DataFrame | None:
    """Mean per (dataset, system, measure): summary.csv when present, else computed from per_query.csv."""
    summary = load_csv_kind(results, "summary")
    if summary is None:
        per_query = load_csv_kind(results, "per_query")
        if per_query is None:
            return None
        keys = list(SUMMARY_COLUMNS[:8])
        summary = (per_query.groupby(keys, dropna=False)["value"].agg(mean="mean", n="count").reset_index())
    summary = summary.drop_duplicates(subset=list(SUMMARY_COLUMNS[:8]), keep="last").copy()
    summary["k_q"] = summary["k_q"].astype(int)
    summary["k_p"] = summary["k_p"].astype(int)
    summary["system"] = system_names(summary)
    return summary.reset_index(drop=True)


def _device_names(header: dict) -> tuple[str | None, str]:
    """(GPU name or None, CPU model) from a result header's environment."""
    env = header.get("environment") or {}
    gpu = env.get("gpu")
    if isinstance(gpu, list):
        gpu = gpu[0] if gpu else None
    gpu_name = None
    if isinstance(gpu, dict):
        devices = gpu.get("devices") or [{}]
        gpu_name = gpu.get("name") or (devices[0].get("name") if isinstance(devices[0], dict) else None)
    cpu = env.get("cpu") or {}
    cpu_name = str(cpu.get("model") or "CPU") if isinstance(cpu, dict) else "CPU"
    return (str(gpu_name) if gpu_name else None), cpu_name


def _bench_rows(path: Path) -> list[dict]:
    run = read_bench(path)
    gpu_name, cpu_name = _device_names(run.header)
    cpu = (run.header.get("environment") or {}).get("cpu")
    cores = cpu.get("logical_cores") if isinstance(cpu, dict) else None  # for the load statement
    rows = []
    for record, roof in zip(run.records, run_rooflines(run), strict=True):
        encoder = str(record.get("encoder"))
        if encoder not in ENCODERS and not encoder.startswith("search:"):
            continue  # other benchmarks (e.g. analysis speed) share the JSON; the report has no use for them
        rows.append({**record, **roofline_fields(roof), "file": str(path),
                     # A CPU run on a GPU host is labelled with the CPU, not the idle GPU.
                     "device_label": gpu_name if str(record.get("device", "")).startswith("cuda") and gpu_name
                     else cpu_name, "logical_cores": cores})
    return rows


@lru_cache(maxsize=8)
def _bench_table(fingerprint: tuple) -> pd.DataFrame:
    rows: list[dict] = []
    for path, _, _ in fingerprint:
        rows += _bench_rows(Path(path))
    frame = pd.DataFrame(rows)
    for col in ("family", "input_tokens", "batch_size", "peak_memory_bytes", "cell_peak_memory_bytes",
                "energy_j_per_query",
                "index_size", "k_p", "mode", "query_batch", "reason", "dtype", "device"):
        if col not in frame.columns:
            frame[col] = None
    frame["batch_size"] = pd.to_numeric(frame["batch_size"], errors="coerce").fillna(1).astype(int)
    frame["is_search"] = frame["encoder"].astype(str).str.startswith("search:")
    # Search cells time a batch of `query_batch` queries; encode cells a batch of `batch_size` texts.
    qb = pd.to_numeric(frame["query_batch"], errors="coerce")
    per_call = np.where(frame["is_search"] & qb.notna(), qb, frame["batch_size"]).astype(float)
    frame["queries_per_call"] = per_call
    med, low, high, n, iqr_rel, flags = [], [], [], [], [], []
    for samples, q in zip(frame["samples_s"], per_call, strict=True):
        ms = samples * 1000.0 / q
        if ms.size:
            lo, hi = bootstrap_ci(ms)
            med.append(float(np.median(ms)))
        else:
            lo = hi = float("nan")
            med.append(float("nan"))
        low.append(lo)
        high.append(hi)
        n.append(int(ms.size))
        ratio, flag = iqr_flag(ms)
        iqr_rel.append(ratio)
        flags.append(flag)
    frame["median_ms"], frame["ci_low_ms"], frame["ci_high_ms"], frame["n_samples"] = med, low, high, n
    frame["iqr_over_median"], frame["noise_flag"] = iqr_rel, flags
    frame["search_mode"] = [search_mode(e, m) if s else None
                            for e, m, s in zip(frame["encoder"], frame["mode"], frame["is_search"], strict=True)]
    return frame


def search_mode(encoder: str, mode) -> str:
    """Score mode of a search cell: its `mode` when it names one, else from the `search:<kind>` name."""
    if isinstance(mode, str) and mode in MODES:
        return mode
    kind = str(encoder).split(":", 1)[-1].lower()
    if "maxsim" in kind or "multi" in kind or "colbert" in kind:
        return "multi_dense"
    if "sparse" in kind:
        return "sparse_max"
    return "single_dense"


def bench_table(results: Path) -> pd.DataFrame | None:
    """Every encode and search cell of the bench JSONs under `results` (each read by
    schema.bench.read_bench): extra_info fields plus median/CI in ms per query and a device label."""
    files = find_bench_files(results)
    if not files:
        return None
    return _bench_table(_fingerprint(files)).copy()


def is_encode(bench: pd.DataFrame) -> pd.Series:
    """Encoding cells; other benchmarks in the same JSON (search, analysis speed) are not encodings."""
    return bench["encoder"].isin(ENCODERS)


def encode_cells(bench: pd.DataFrame) -> pd.DataFrame:
    cells = bench[is_encode(bench) & ~bench["skipped"]].copy()
    cells["k"] = cells["k"].astype(int)
    cells["input_tokens"] = pd.to_numeric(cells["input_tokens"], errors="coerce")
    return cells


def search_cells(bench: pd.DataFrame) -> pd.DataFrame:
    cells = bench[bench["is_search"] & ~bench["skipped"]].copy()
    cells["index_size"] = pd.to_numeric(cells["index_size"], errors="coerce")
    cells["k_p"] = pd.to_numeric(cells["k_p"], errors="coerce").fillna(1).astype(int)
    return cells


PAPER_TABLES = "paper"  # sub-directory of a results directory, and of repbench.recipes, holding them


def read_paper_table(path: Path) -> pd.DataFrame:
    """A paper reference table: any columns, but every row must say where its numbers come from."""
    frame = read_csv(path, "a paper reference CSV with a 'source' column", require_rows=False)
    if "source" not in frame.columns:
        raise InputError(path, 1, "expected a 'source' column naming where each row's numbers come from")
    return frame


def load_paper(results: Path, name: str) -> pd.DataFrame | None:
    """A paper reference table `<name>.csv`: from `results/paper/` first, else the copy shipped in the
    package (repbench/recipes/paper/)."""
    local = Path(results) / PAPER_TABLES / f"{name}.csv"
    if local.is_file():
        return read_paper_table(local)
    shipped = resources.files("repbench.recipes").joinpath(PAPER_TABLES, f"{name}.csv")
    if shipped.is_file():
        with resources.as_file(shipped) as path:
            return read_paper_table(path)
    return None


def base_backbone(name: str) -> str:
    """Registry name without a variant suffix: `dream-7b-instruct:random` -> `dream-7b-instruct`."""
    return str(name).split(":", 1)[0]


def device_labels(frame: pd.DataFrame) -> str:
    return ", ".join(sorted(set(frame["device_label"].astype(str))))


def require(frame: pd.DataFrame | None, kind: str, results: Path) -> pd.DataFrame:
    """The frame, or SkipRecipe naming what is missing (recipes run directly, outside build_report)."""
    if frame is None or len(frame) == 0:
        raise SkipRecipe(f"no {INPUT_DESCRIPTIONS.get(kind, kind)} under {results}")
    return frame
