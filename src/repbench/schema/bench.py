"""The one reader and writer of bench JSONs: pytest-benchmark JSON whose `machine_info.repbench` holds
the repbench result header (schema_version checked) and whose benchmarks carry repbench `extra_info`.

A cell's raw per-iteration seconds are `extra_info.samples_s` (or pytest-benchmark's `stats.data` when
saved with --benchmark-save-data). A skipped cell has `status: "skipped"`, a `reason` and no samples.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from repbench.errors import InputError, RepbenchError
from repbench.io import atomic_write_json
from repbench.io import read_json as _read_json
from repbench.schema import ENCODERS, SCHEMA_VERSION

BENCH_FILE = "bench.json"
# A latency cell is one configuration; search cells add their own axes.
CELL_KEYS = ("backbone", "encoder", "k", "input_tokens", "batch_size")
SEARCH_KEYS = ("index_size", "k_p", "mode", "query_batch")
# Used only when the keys above leave two benchmarks of one file indistinguishable.
DISAMBIGUATION_KEYS = ("dtype", "attn", "device", "family", "dim", "search_device")
# extra_info fields an encode cell (encoder in ENCODERS) must have, skipped or not.
ENCODE_REQUIRED = ("backbone", "encoder", "k")
_ARRAYS = ("samples_s", "prefill_s", "decode_step_s")


@dataclass
class BenchRun:
    """One bench JSON: its result header, a tidy table of cells (one row per benchmark) and, per
    benchmark, every extra_info field (`records`, with `samples_s` as a float array)."""

    path: Path
    header: dict[str, Any]
    cells: pd.DataFrame
    records: list[dict[str, Any]] = field(repr=False, default_factory=list)
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def environment(self) -> dict[str, Any]:
        return self.header.get("environment") or {}


def read_json(path: Path) -> Any:
    """A JSON file under repbench.io's reading rules (gzip by content, BOM, strict UTF-8). NaN literals
    parse (pytest-benchmark writes NaN stats for skipped cells); samples are checked finite where used."""
    return _read_json(path, "a bench JSON (pytest --benchmark-json)", allow_nan=True)


def is_bench_json(path: Path) -> bool:
    """True for a readable JSON that claims to be a repbench bench JSON (checked fully by read_bench).

    A file that looks like one (it names "benchmarks" and "machine_info" near its start) but cannot be
    read is an error, not silently left out of a report.
    """
    try:
        obj = read_json(path)
    except RepbenchError:
        try:
            head = Path(path).read_bytes()[:4096]
        except OSError:
            return False
        if b'"benchmarks"' in head and b'"machine_info"' in head:
            raise
        return False
    return (isinstance(obj, dict) and isinstance(obj.get("benchmarks"), list)
            and isinstance(obj.get("machine_info"), dict) and "repbench" in obj["machine_info"])


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
    machine = obj.get("machine_info")
    header = machine.get("repbench") if isinstance(machine, dict) else None
    if not isinstance(header, dict):
        raise RepbenchError(
            f"{path}: not a repbench bench JSON (machine_info.repbench is missing; it is written by the "
            f"repbench bench/ harness, not by plain pytest-benchmark)")
    version = header.get("schema_version")
    if type(version) is not int or version != SCHEMA_VERSION:  # True == 1.0 == 1 in Python: not a version
        raise RepbenchError(
            f"{path}: schema_version {version!r} in machine_info.repbench, but this repbench reads schema "
            f"version {SCHEMA_VERSION}; re-run the benchmark with this version or compare with the repbench "
            f"version that wrote it")
    return header


def _samples(path: Path, where: str, bench: dict, info: dict) -> np.ndarray:
    samples = info.get("samples_s")
    if samples is None and isinstance(bench.get("stats"), dict):
        samples = bench["stats"].get("data")  # only present with --benchmark-save-data
    if samples is None:
        raise InputError(path, None, f"{where}: extra_info lacks samples_s (the raw per-iteration seconds)")
    if not isinstance(samples, list) or not samples:
        raise InputError(path, None, f"{where}: extra_info.samples_s must be a non-empty list of "
                                     f"per-iteration seconds")
    # JSON numbers only: float() would also take "1.5" or true, silently.
    if not all(isinstance(s, int | float) and not isinstance(s, bool) for s in samples):
        raise InputError(path, None, f"{where}: extra_info.samples_s holds non-numbers")
    try:
        arr = np.asarray([float(s) for s in samples], dtype=np.float64)
    except OverflowError:  # an integer beyond float range
        arr = np.asarray([np.inf])
    if not (np.isfinite(arr) & (arr > 0)).all():
        raise InputError(path, None, f"{where}: extra_info.samples_s must be positive finite seconds")
    return arr


def read_bench(path: str | os.PathLike) -> BenchRun:
    """Read and validate a bench JSON (or a baseline directory holding one) into a `BenchRun`.

    `cells` columns: name, status, reason, the key columns (CELL_KEYS, SEARCH_KEYS, DISAMBIGUATION_KEYS),
    samples_s (numpy array of raw seconds), n, median_s. Every non-skipped cell needs an encoder and
    samples; an encode cell (encoder in ENCODERS) also needs backbone and k, skipped or not.
    """
    path = resolve_bench_path(path)
    return parse_bench(read_json(path), path)


def parse_bench(obj: Any, path: Path) -> BenchRun:
    """`read_bench` on an already parsed JSON object (`path` names it in messages)."""
    header = bench_header(obj, path)
    rows, records = [], []
    for i, bench in enumerate(obj["benchmarks"]):
        if not isinstance(bench, dict):
            raise InputError(path, None, f"benchmarks[{i}]: expected a benchmark object")
        name = bench.get("fullname") or bench.get("name") or f"benchmarks[{i}]"
        name = name if isinstance(name, str) else json.dumps(name)
        where = f"benchmarks[{i}] ({bench.get('name') or name})"
        info = bench.get("extra_info")
        if not isinstance(info, dict):
            raise InputError(path, None, f"{where}: expected an extra_info object with the repbench cell "
                                         f"fields (backbone, encoder, k, input_tokens, batch_size, samples_s)")
        status = info.get("status", "ok")
        if status == "skipped":
            arr = np.empty(0, dtype=np.float64)
        else:
            if info.get("encoder") is None:
                # Search ("search:<kind>") and analysis ("analysis:<name>") cells leave the encode axes null.
                raise InputError(path, None, f"{where}: extra_info lacks 'encoder'")
            arr = _samples(path, where, bench, info)
        if info.get("encoder") in ENCODERS:
            missing = [k for k in ENCODE_REQUIRED if info.get(k) is None]
            if missing:
                raise InputError(path, None, f"{where}: extra_info lacks {', '.join(missing)}")
        row: dict[str, Any] = {"name": name, "status": status, "reason": info.get("reason")}
        for key in CELL_KEYS + SEARCH_KEYS + DISAMBIGUATION_KEYS:
            row[key] = _canon(info.get(key))
        row["samples_s"] = arr
        row["n"] = len(arr)
        row["median_s"] = float(np.median(arr)) if len(arr) else float("nan")
        rows.append(row)
        records.append({**{k: v for k, v in info.items() if k not in _ARRAYS}, "name": bench.get("name"),
                        "skipped": status == "skipped", "samples_s": arr})
    cols = ["name", "status", "reason", *CELL_KEYS, *SEARCH_KEYS, *DISAMBIGUATION_KEYS, "samples_s", "n", "median_s"]
    # object dtype keeps key values as written: None stays None (NaN would never match NaN) and ints stay ints.
    cells = pd.DataFrame(rows, columns=cols, dtype=object)
    cells["n"] = cells["n"].astype(int)
    cells["median_s"] = cells["median_s"].astype(float)
    return BenchRun(path=path, header=header, cells=cells, records=records, raw=obj)


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


def with_header(output_json: dict[str, Any], header: dict[str, Any]) -> dict[str, Any]:
    """Put the repbench result header into a pytest-benchmark JSON object (machine_info.repbench)."""
    if header.get("schema_version") != SCHEMA_VERSION:
        raise RepbenchError(f"a bench header needs schema_version {SCHEMA_VERSION}, got "
                            f"{header.get('schema_version')!r} (use repbench.telemetry.environment.result_header)")
    output_json.setdefault("machine_info", {})["repbench"] = header
    return output_json


def write_bench(path: str | os.PathLike, header: dict[str, Any], benchmarks: list[dict[str, Any]],
                **extra: Any) -> Path:
    """Write a bench JSON atomically after checking it as `read_bench` would, so this writer only ever
    produces files the readers accept (and never replaces a good file with a bad one)."""
    obj = with_header({"machine_info": dict(extra.pop("machine_info", {})), "benchmarks": benchmarks,
                       **extra}, header)
    parse_bench(json.loads(json.dumps(obj, default=str)), Path(path))
    return atomic_write_json(path, obj)
