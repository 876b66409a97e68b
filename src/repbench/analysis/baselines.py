"""Stored baselines: device slugs, loading bench JSONs and per-query tables, listing what is stored.

A baseline directory is `results/baselines/<device-slug>/` holding `bench.json` (a pytest-benchmark JSON
from `pytest bench/ --benchmark-json`) and/or `per_query.csv` (from `repbench evaluate`), each carrying
its own environment. Baselines are keyed by device (GPU model, or CPU model and thread count), not by
OS/Python as pytest-benchmark's machine id is (methodology rule 15); driver and software differences are
reported as warnings at comparison time instead.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from repbench import SCHEMA_VERSION
from repbench.errors import InputError, RepbenchError

BENCH_FILE = "bench.json"
PER_QUERY_FILE = "per_query.csv"
PER_QUERY_COLUMNS = ("dataset", "backbone", "family", "encoder", "k_q", "k_p", "mode", "qid", "measure", "value")
# A latency cell is one configuration; search cells add their own axes.
CELL_KEYS = ("backbone", "encoder", "k", "input_tokens", "batch_size")
SEARCH_KEYS = ("index_size", "k_p", "mode", "query_batch")
# Used only when the keys above leave two benchmarks of one file indistinguishable.
DISAMBIGUATION_KEYS = ("dtype", "attn", "device", "family", "dim", "search_device")


# ----------------------------------------------------------------------------------------- device slug

def _slug(text: str) -> str:
    text = text.lower()
    text = re.sub(r"\((r|tm|c)\)", " ", text)
    text = re.sub(r"@.*$", " ", text)  # nominal clock speeds say nothing the model name does not
    text = re.sub(r"\b(cpu|processor)\b", " ", text)
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def gpu_devices(environment: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The per-GPU dicts of an environment block, whatever shape the GPU capture used (None, dict, list)."""
    gpu = (environment or {}).get("gpu")
    if not gpu:
        return []
    if isinstance(gpu, list):
        return [g for g in gpu if isinstance(g, dict)]
    if isinstance(gpu, dict):
        for key in ("devices", "gpus"):
            if isinstance(gpu.get(key), list):
                return [g for g in gpu[key] if isinstance(g, dict)]
        return [gpu] if gpu.get("name") else []
    return []


def device_slug(environment: dict[str, Any]) -> str:
    """Directory name for a device's baselines: `<gpu-name>` (`2x-<gpu-name>` for several), else
    `cpu-<model>-<threads>t`.

    >>> device_slug({"gpu": [{"name": "NVIDIA H100 80GB HBM3"}]})
    'nvidia-h100-80gb-hbm3'
    >>> device_slug({"gpu": None, "cpu": {"model": "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
    ...                                   "torch_threads": 2}})
    'cpu-intel-xeon-platinum-8375c-2t'
    """
    gpus = gpu_devices(environment)
    names = [str(g["name"]) for g in gpus if g.get("name")]
    if names:
        slug = _slug(names[0]) or "gpu"
        return f"{len(names)}x-{slug}" if len(names) > 1 else slug
    cpu = (environment or {}).get("cpu") or {}
    model = _slug(str(cpu.get("model") or "")) or "unknown"
    # Threads, not sockets: CPU latency scales with the threads torch was allowed to use.
    threads = cpu.get("torch_threads") or cpu.get("affinity_cores") or cpu.get("logical_cores")
    return f"cpu-{model}-{threads}t" if threads else f"cpu-{model}"


# ------------------------------------------------------------------------------------------ bench JSON

@dataclass
class BenchRun:
    """One bench JSON: its result header and a tidy table of cells (one row per benchmark)."""

    path: Path
    header: dict[str, Any]
    cells: pd.DataFrame
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def environment(self) -> dict[str, Any]:
        return self.header.get("environment") or {}


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RepbenchError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, exc.lineno, f"expected a bench JSON (pytest --benchmark-json), "
                                           f"got invalid JSON ({exc.msg})") from None


def _canon(value: Any) -> Any:
    """Key values made comparable across files: 8 and 8.0 match, None stays None."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int | float | str):
        return value
    return json.dumps(value, sort_keys=True)


def bench_header(obj: Any, path: Path) -> dict[str, Any]:
    """The repbench result header of a parsed bench JSON; refuses anything else with a message."""
    if not isinstance(obj, dict) or not isinstance(obj.get("benchmarks"), list):
        raise RepbenchError(
            f"{path}: not a bench JSON (expected a pytest-benchmark JSON with a 'benchmarks' list, as written "
            f"by `pytest bench/ --benchmark-json FILE`)")
    header = (obj.get("machine_info") or {}).get("repbench")
    if not isinstance(header, dict):
        raise RepbenchError(
            f"{path}: not a repbench bench JSON (machine_info.repbench is missing; it is written by the "
            f"repbench bench/ harness, not by plain pytest-benchmark)")
    version = header.get("schema_version")
    if version != SCHEMA_VERSION:
        raise RepbenchError(
            f"{path}: schema_version {version!r} in machine_info.repbench, but this repbench reads schema "
            f"version {SCHEMA_VERSION}; re-run the benchmark with this version or compare with the repbench "
            f"version that wrote it")
    return header


def load_bench(path: str | os.PathLike) -> BenchRun:
    """Read and validate a bench JSON (or a baseline directory holding one) into a `BenchRun`.

    `cells` columns: name, status, reason, the key columns (CELL_KEYS, SEARCH_KEYS, DISAMBIGUATION_KEYS),
    samples_s (numpy array of raw seconds), n, median_s.
    """
    path = resolve_bench_path(path)
    obj = _read_json(path)
    header = bench_header(obj, path)
    rows = []
    for i, bench in enumerate(obj["benchmarks"]):
        name = bench.get("fullname") or bench.get("name") or f"benchmarks[{i}]"
        info = bench.get("extra_info")
        if not isinstance(info, dict):
            raise RepbenchError(f"{path}: benchmark {name!r} has no extra_info (expected the repbench cell "
                                f"fields: backbone, encoder, k, input_tokens, batch_size, samples_s)")
        row: dict[str, Any] = {"name": name, "status": info.get("status", "ok"), "reason": info.get("reason")}
        for key in CELL_KEYS + SEARCH_KEYS + DISAMBIGUATION_KEYS:
            row[key] = _canon(info.get(key))
        samples = info.get("samples_s")
        if samples is None and isinstance(bench.get("stats"), dict):
            samples = bench["stats"].get("data")  # only present with --benchmark-save-data
        if row["status"] != "skipped":
            # Only the encoder is required: search ("search:<kind>") and analysis ("analysis:<name>") cells
            # leave the encode axes null.
            if info.get("encoder") is None:
                raise RepbenchError(f"{path}: benchmark {name!r}: extra_info lacks 'encoder'")
            if not isinstance(samples, list) or not samples:
                raise RepbenchError(f"{path}: benchmark {name!r}: extra_info.samples_s must be a non-empty "
                                    f"list of per-iteration seconds")
            try:
                arr = pd.to_numeric(pd.Series(samples), errors="raise").to_numpy(dtype=float)
            except (ValueError, TypeError):
                raise RepbenchError(f"{path}: benchmark {name!r}: extra_info.samples_s holds non-numbers") from None
            if not (arr > 0).all():
                raise RepbenchError(f"{path}: benchmark {name!r}: extra_info.samples_s must be positive seconds")
        else:
            arr = pd.Series([], dtype=float).to_numpy()
        row["samples_s"] = arr
        row["n"] = len(arr)
        row["median_s"] = float(pd.Series(arr).median()) if len(arr) else float("nan")
        rows.append(row)
    cols = ["name", "status", "reason", *CELL_KEYS, *SEARCH_KEYS, *DISAMBIGUATION_KEYS, "samples_s", "n", "median_s"]
    # object dtype keeps key values as written: None stays None (NaN would never match NaN) and ints stay ints.
    cells = pd.DataFrame(rows, columns=cols, dtype=object)
    cells["n"] = cells["n"].astype(int)
    cells["median_s"] = cells["median_s"].astype(float)
    return BenchRun(path=path, header=header, cells=cells, raw=obj)


def resolve_bench_path(path: str | os.PathLike) -> Path:
    """A bench JSON file as given, or the bench JSON inside a baseline directory."""
    path = Path(path)
    if path.is_dir():
        if (path / BENCH_FILE).is_file():
            return path / BENCH_FILE
        candidates = sorted(p for p in path.glob("*.json") if p.name != "metadata.json")
        if len(candidates) == 1:
            return candidates[0]
        raise RepbenchError(f"{path}: a baseline directory must hold {BENCH_FILE} (found "
                            f"{[p.name for p in candidates] or 'no JSON'})")
    if not path.exists():
        raise RepbenchError(f"{path}: no such file or directory")
    return path


# ------------------------------------------------------------------------------------- per-query table

@dataclass
class PerQueryRun:
    path: Path
    table: pd.DataFrame
    header: dict[str, Any] | None  # metadata.json next to the table, when there is one

    @property
    def environment(self) -> dict[str, Any]:
        return (self.header or {}).get("environment") or {}


def load_per_query(path: str | os.PathLike) -> PerQueryRun:
    """Read a per_query.csv (or a directory holding one) and its metadata.json when present."""
    path = Path(path)
    if path.is_dir():
        path = path / PER_QUERY_FILE
    if not path.is_file():
        raise RepbenchError(f"{path}: no such per-query table")
    try:
        table = pd.read_csv(path, dtype={"qid": str, "dataset": str, "backbone": str, "encoder": str,
                                         "mode": str, "measure": str, "family": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"expected a per-query CSV with columns {', '.join(PER_QUERY_COLUMNS)} "
                                     f"({exc})") from None
    missing = [c for c in PER_QUERY_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(path, 1, f"expected per-query columns {', '.join(PER_QUERY_COLUMNS)}; "
                                  f"missing {', '.join(missing)}")
    values = pd.to_numeric(table["value"], errors="coerce")
    bad = values.isna()
    if bad.any():
        line = int(bad.to_numpy().nonzero()[0][0]) + 2  # +1 header, +1 one-based
        raise InputError(path, line, f"expected a numeric 'value', got {table['value'].iloc[line - 2]!r}")
    table["value"] = values.astype(float)
    for col in ("k_q", "k_p"):
        k = pd.to_numeric(table[col], errors="coerce")
        if k.isna().any():
            line = int(k.isna().to_numpy().nonzero()[0][0]) + 2
            raise InputError(path, line, f"expected an integer {col!r}")
        table[col] = k.astype(int)
    header = None
    meta = path.parent / "metadata.json"
    if meta.is_file():
        obj = _read_json(meta)
        header = obj if isinstance(obj, dict) else None
    return PerQueryRun(path=path, table=table, header=header)


# ------------------------------------------------------------------------------------------- listing

def list_baselines(root: str | os.PathLike) -> pd.DataFrame:
    """One row per stored baseline file under `root/<slug>/`.

    Columns: slug, file, kind (latency|effectiveness), created_utc, backbones, repbench_version, git_commit.
    Unreadable files are listed with the reason in `kind` rather than hiding them.
    """
    root = Path(root)
    cols = ["slug", "file", "kind", "created_utc", "backbones", "repbench_version", "git_commit"]
    if not root.is_dir():
        raise RepbenchError(f"{root}: no baselines directory (expected results/baselines/<device-slug>/)")
    rows = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(d.iterdir()):
            if f.name == BENCH_FILE or (f.suffix == ".json" and f.name != "metadata.json"):
                rows.append(_describe_bench(d.name, f))
            elif f.name == PER_QUERY_FILE:
                rows.append(_describe_per_query(d.name, f))
    return pd.DataFrame(rows, columns=cols)


def _describe_bench(slug: str, path: Path) -> dict[str, Any]:
    try:
        run = load_bench(path)
    except RepbenchError as exc:
        return {"slug": slug, "file": path.name, "kind": f"unreadable: {exc}"}
    backbones = sorted({str(b) for b in run.cells["backbone"] if b is not None})
    return {"slug": slug, "file": path.name, "kind": "latency", "created_utc": run.header.get("created_utc"),
            "backbones": ", ".join(backbones), "repbench_version": run.header.get("repbench_version"),
            "git_commit": _commit(run.header)}


def _describe_per_query(slug: str, path: Path) -> dict[str, Any]:
    try:
        run = load_per_query(path)
    except RepbenchError as exc:
        return {"slug": slug, "file": path.name, "kind": f"unreadable: {exc}"}
    header = run.header or {}
    backbones = sorted(run.table["backbone"].dropna().astype(str).unique())
    return {"slug": slug, "file": path.name, "kind": "effectiveness", "created_utc": header.get("created_utc"),
            "backbones": ", ".join(backbones), "repbench_version": header.get("repbench_version"),
            "git_commit": _commit(header)}


def _commit(header: dict[str, Any]) -> str | None:
    git = header.get("git") or {}
    commit = git.get("commit")
    if not commit:
        return None
    return f"{commit[:12]}{'+dirty' if git.get('dirty') else ''}"
