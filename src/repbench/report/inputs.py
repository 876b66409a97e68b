"""Find and read the report's inputs under a results directory, checked against docs/contracts.md.

Files are recognised by name (per_query.csv, summary.csv, significance.csv, oracle.csv, oracle_cells.csv)
or, for latency, by content: a pytest-benchmark JSON with `benchmarks` and `machine_info.repbench`.
Every reader returns a tidy pandas table; a malformed file raises InputError naming file and problem.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from repbench.errors import InputError, RepbenchError
from repbench.telemetry.stats import bootstrap_ci

PER_QUERY_COLUMNS = ("dataset", "backbone", "family", "encoder", "k_q", "k_p", "mode", "qid", "measure", "value")
SUMMARY_COLUMNS = ("dataset", "backbone", "family", "encoder", "k_q", "k_p", "mode", "measure", "mean", "n")
SIGNIFICANCE_COLUMNS = ("system", "baseline", "measure", "n", "mean_system", "mean_baseline", "mean_diff",
                        "ci_low", "ci_high", "test", "p_value", "p_adjusted", "correction", "significant")
ORACLE_COLUMNS = ("dataset", "backbone", "encoder", "mode", "measure", "scope", "fixed_k", "budget_q",
                  "budget_p", "n", "oracle_mean", "oracle_ci_low", "oracle_ci_high", "best_cell", "best_mean",
                  "best_ci_low", "best_ci_high", "gap", "gap_ci_low", "gap_ci_high", "label")
ORACLE_CELL_COLUMNS = ("dataset", "backbone", "encoder", "mode", "measure", "scope", "k_q", "k_p",
                       "n_queries", "share")
CSV_INPUTS = {
    "per_query": ("per_query.csv", PER_QUERY_COLUMNS),
    "summary": ("summary.csv", SUMMARY_COLUMNS),
    "significance": ("significance.csv", SIGNIFICANCE_COLUMNS),
    "oracle": ("oracle.csv", ORACLE_COLUMNS),
    "oracle_cells": ("oracle_cells.csv", ORACLE_CELL_COLUMNS),
}
# What each input kind means, for skip messages.
INPUT_DESCRIPTIONS = {
    "bench": "latency JSON (pytest-benchmark with machine_info.repbench)",
    "effectiveness": "per_query.csv or summary.csv",
    **{kind: name for kind, (name, _) in CSV_INPUTS.items()},
}
MODES = ("single_dense", "multi_dense", "sparse_max", "fusion_single_sparse_max", "fusion_multi_sparse_max")
ENCODE_KINDS = ("sequential", "parallel", "meanpool", "lasttoken")
BENCH_REQUIRED = ("backbone", "encoder", "k", "samples_s")


class SkipRecipe(RepbenchError):
    """A recipe's inputs exist but hold nothing it can draw; the message is the one-line reason."""


def repo_root() -> Path:
    """The source checkout holding this package (src/repbench/report/inputs.py -> repo)."""
    return Path(__file__).resolve().parents[3]


def _visible(path: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def find_named(results: Path, filename: str) -> list[Path]:
    results = Path(results)
    return sorted(p for p in results.rglob(filename) if p.is_file() and _visible(p, results))


def is_bench_json(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as fh:
            obj = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return (isinstance(obj, dict) and isinstance(obj.get("benchmarks"), list)
            and isinstance(obj.get("machine_info"), dict) and "repbench" in obj["machine_info"])


def find_bench_files(results: Path) -> list[Path]:
    return [p for p in find_named(results, "*.json") if is_bench_json(p)]


def available_inputs(results: Path) -> dict[str, list[Path]]:
    """Input kind -> files found under `results` (an empty list when none)."""
    found = {"bench": find_bench_files(results)}
    for kind, (name, _) in CSV_INPUTS.items():
        found[kind] = find_named(results, name)
    found["effectiveness"] = found["per_query"] + found["summary"]
    return found


def read_csv_checked(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputError(path, None, f"expected a CSV file ({exc})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(path, 1, f"expected columns {', '.join(columns)}; missing {', '.join(missing)}")
    return frame


def _fingerprint(files: list[Path]) -> tuple:
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)


def load_csv_kind(results: Path, kind: str) -> pd.DataFrame | None:
    """All files of one CSV kind under `results`, concatenated, with a `source_file` column; None if none."""
    name, columns = CSV_INPUTS[kind]
    files = find_named(results, name)
    if not files:
        return None
    return _load_csvs(_fingerprint(files), columns).copy()


@lru_cache(maxsize=32)
def _load_csvs(fingerprint: tuple, columns: tuple[str, ...]) -> pd.DataFrame:
    frames = []
    for path, _, _ in fingerprint:
        frame = read_csv_checked(Path(path), columns)
        frame["source_file"] = path
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def system_name(frame: pd.DataFrame) -> pd.Series:
    """`backbone/encoder/q{k_q}p{k_p}/mode`, as the analysis tables name systems."""
    return (frame["backbone"].astype(str) + "/" + frame["encoder"].astype(str) + "/q"
            + frame["k_q"].astype(int).astype(str) + "p" + frame["k_p"].astype(int).astype(str) + "/"
            + frame["mode"].astype(str))


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
    summary["system"] = system_name(summary)
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


def _samples_frame(path: Path, obj: dict) -> list[dict]:
    header = obj["machine_info"]["repbench"] or {}
    gpu_name, cpu_name = _device_names(header if isinstance(header, dict) else {})
    rows = []
    for i, bench in enumerate(obj["benchmarks"]):
        info = bench.get("extra_info") if isinstance(bench, dict) else None
        if not isinstance(info, dict):
            raise InputError(path, None, f"benchmarks[{i}]: expected an extra_info object")
        skipped = info.get("status") == "skipped"
        encoder = str(info.get("encoder"))
        if encoder not in ENCODE_KINDS and not encoder.startswith("search:"):
            continue  # other benchmarks (e.g. analysis speed) share the JSON; the report has no use for them
        required = BENCH_REQUIRED[:3] if skipped else BENCH_REQUIRED
        missing = [k for k in required if k not in info]
        if missing:
            raise InputError(path, None, f"benchmarks[{i}] ({bench.get('name')}): extra_info lacks "
                                         f"{', '.join(missing)}")
        samples = np.asarray(info.get("samples_s") or [], dtype=np.float64)
        rows.append({**{k: v for k, v in info.items() if k not in ("samples_s", "prefill_s", "decode_step_s")},
                     "name": bench.get("name"), "file": str(path),
                     # A CPU run on a GPU host is labelled with the CPU, not the idle GPU.
                     "device_label": gpu_name if str(info.get("device", "")).startswith("cuda") and gpu_name
                     else cpu_name,
                     "skipped": skipped, "samples_s": samples})
    return rows


@lru_cache(maxsize=8)
def _load_bench(fingerprint: tuple) -> pd.DataFrame:
    rows: list[dict] = []
    for path, _, _ in fingerprint:
        with open(path, encoding="utf-8") as fh:
            rows += _samples_frame(Path(path), json.load(fh))
    frame = pd.DataFrame(rows)
    for col in ("family", "input_tokens", "batch_size", "peak_memory_bytes", "energy_j_per_query",
                "index_size", "k_p", "mode", "query_batch", "reason", "dtype", "device"):
        if col not in frame.columns:
            frame[col] = None
    frame["batch_size"] = pd.to_numeric(frame["batch_size"], errors="coerce").fillna(1).astype(int)
    frame["is_search"] = frame["encoder"].astype(str).str.startswith("search:")
    # Search cells time a batch of `query_batch` queries; encode cells a batch of `batch_size` texts.
    qb = pd.to_numeric(frame["query_batch"], errors="coerce")
    per_call = np.where(frame["is_search"] & qb.notna(), qb, frame["batch_size"]).astype(float)
    frame["queries_per_call"] = per_call
    med, low, high, n = [], [], [], []
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
    frame["median_ms"], frame["ci_low_ms"], frame["ci_high_ms"], frame["n_samples"] = med, low, high, n
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


def load_bench(results: Path) -> pd.DataFrame | None:
    """Every benchmark cell under `results`: extra_info fields plus median/CI in ms per query."""
    files = find_bench_files(results)
    if not files:
        return None
    return _load_bench(_fingerprint(files)).copy()


def is_encode(bench: pd.DataFrame) -> pd.Series:
    """Encoding cells; other benchmarks in the same JSON (search, analysis speed) are not encodings."""
    return bench["encoder"].isin(ENCODE_KINDS)


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


def paper_dirs(results: Path) -> list[Path]:
    return [d for d in (Path(results) / "paper", repo_root() / "results" / "paper") if d.is_dir()]


def load_paper(results: Path, name: str) -> pd.DataFrame | None:
    """A paper reference table (results/paper/<name>.csv): from `results` first, else the checkout's."""
    for directory in paper_dirs(results):
        path = directory / f"{name}.csv"
        if path.is_file():
            frame = read_csv_checked(path, ("source",))
            return frame
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
