"""Stored baselines: device slugs, loading bench JSONs and per-query tables, listing what is stored.

A baseline directory is `results/baselines/<device-slug>/` holding `bench.json` (a pytest-benchmark JSON
from `pytest bench/ --benchmark-json`) and/or `per_query.csv` (from `repbench evaluate`), each carrying
its own environment. Baselines are keyed by device (GPU model, or CPU model and thread count), not by
OS/Python as pytest-benchmark's machine id is (docs/methodology.md rule 15); driver and software differences are
reported as warnings at comparison time instead.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from repbench.errors import RepbenchError
from repbench.schema import FILE_NAMES
from repbench.schema.bench import BENCH_FILE, read_bench, read_json
from repbench.schema.tables import read_per_query
from repbench.telemetry.environment_diff import gpu_devices

PER_QUERY_FILE = FILE_NAMES["per_query"]


# ----------------------------------------------------------------------------------------- device slug

def _slug(text: str) -> str:
    text = text.lower()
    text = re.sub(r"\((r|tm|c)\)", " ", text)
    text = re.sub(r"@.*$", " ", text)  # nominal clock speeds say nothing the model name does not
    text = re.sub(r"\b(cpu|processor)\b", " ", text)
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def device_slug(environment: dict[str, Any]) -> str:
    """Directory name for a device's baselines: `<gpu-name>` (`2x-<gpu-name>` for several), else
    `cpu-<model>-<threads>t`. Only the GPUs torch can see count (CUDA_VISIBLE_DEVICES), where the capture
    matched NVML's devices to torch's; NVML itself lists every GPU of the node.

    >>> device_slug({"gpu": [{"name": "NVIDIA H100 80GB HBM3"}]})
    'nvidia-h100-80gb-hbm3'
    >>> device_slug({"gpu": None, "cpu": {"model": "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
    ...                                   "torch_threads": 2}})
    'cpu-intel-xeon-platinum-8375c-2t'
    """
    gpus = gpu_devices(environment)
    visible = [g for g in gpus if g.get("torch_index") is not None]
    names = [str(g["name"]) for g in (visible or gpus) if g.get("name")]
    if names:
        slug = _slug(names[0]) or "gpu"
        return f"{len(names)}x-{slug}" if len(names) > 1 else slug
    cpu = (environment or {}).get("cpu") or {}
    model = _slug(str(cpu.get("model") or "")) or "unknown"
    # Threads, not sockets: CPU latency scales with the threads torch was allowed to use.
    threads = cpu.get("torch_threads") or cpu.get("affinity_cores") or cpu.get("logical_cores")
    return f"cpu-{model}-{threads}t" if threads else f"cpu-{model}"


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
    """Read a per_query.csv (or a directory holding one; schema.tables.read_per_query checks it) and the
    metadata.json next to it when present."""
    path = Path(path)
    if path.is_dir():
        path = path / PER_QUERY_FILE
    if not path.is_file():
        raise RepbenchError(f"{path}: no such per-query table")
    table = read_per_query(path)
    header = None
    meta = path.parent / "metadata.json"
    if meta.is_file():
        obj = read_json(meta)
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
        run = read_bench(path)
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
