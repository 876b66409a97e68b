"""The roofline of every encode cell of a bench JSON: work, floor, MBU and MFU (stored in `extra_info.roofline`).

Each cell gets its floor against the device's probed peaks (`machine_info.repbench.peaks`, written by the
bench harness with `repbench.telemetry.peaks`) and, on a GPU of the vendor table, against the datasheet
peaks too. `primary` is the vendor figure where there is one (what a datasheet-based comparison across
GPUs needs), else the probe's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from repbench.analysis.hardware import GpuPeaks, gpu_by_key, match_gpu
from repbench.analysis.roofline import Architecture, Peaks, encoder_forwards, roofline
from repbench.errors import RepbenchError
from repbench.schema import ENCODERS
from repbench.schema.bench import BenchRun


def architecture_of(backbone: str) -> Architecture:
    """A registered backbone's architecture, from its bundled config (no weights are loaded)."""
    from repbench.backbones import get_spec
    from repbench.backbones.loading import architecture_config

    spec = get_spec(backbone)
    return Architecture.from_config(architecture_config(spec), spec.architecture)


def architecture_record(config: Any) -> dict[str, Any] | None:
    """A loaded model config's architecture as the bench header stores it (None for a layout roofline lacks)."""
    try:
        return Architecture.from_config(config).as_dict()
    except (ValueError, TypeError):
        return None


def architectures(header: dict[str, Any], backbones: set[str]) -> dict[str, Architecture]:
    """The architecture of each backbone: as recorded in the header, else from the registry."""
    stored = header.get("architectures") or {}
    out = {}
    for name in backbones:
        if isinstance(stored.get(name), dict):
            out[name] = Architecture.from_dict(stored[name])
        else:
            try:
                out[name] = architecture_of(name)
            except RepbenchError:
                continue  # an unregistered backbone without a recorded shape: no roofline for it
    return out


def probe_peaks(peaks: dict[str, Any] | None, device: str, dtype: str) -> Peaks | None:
    """The probe's peaks for a cell on `device` in `dtype`, when the probe ran on that kind of device."""
    if not isinstance(peaks, dict) or str(peaks.get("device", "")).split(":")[0] != str(device).split(":")[0]:
        return None
    flops = (peaks.get("matmul_flops") or {}).get(str(dtype))
    bandwidth = peaks.get("read_bandwidth")
    if not flops or not bandwidth:
        return None
    return Peaks(float(flops), float(bandwidth), f"probe: {peaks.get('name') or peaks.get('device')}")


def gpu_row(header: dict[str, Any]) -> GpuPeaks | None:
    """The vendor row of the GPU a bench JSON ran on (probe name first, else the environment's GPU)."""
    peaks = header.get("peaks") or {}
    if str(peaks.get("device", "")).startswith("cuda"):
        return match_gpu(peaks.get("name"))
    gpu = (header.get("environment") or {}).get("gpu")
    gpu = gpu[0] if isinstance(gpu, list) and gpu else gpu
    if isinstance(gpu, dict):
        devices = gpu.get("devices") or [{}]
        name = gpu.get("name") or (devices[0].get("name") if isinstance(devices[0], dict) else None)
        return match_gpu(name)
    return None


def _side(r: Any, peaks: Peaks, seconds: float | None) -> dict[str, Any]:
    out = {"floor_s": r.floor_s, "compute_s": r.compute_s, "memory_s": r.memory_s, "bound": r.bound,
           "peak_flops": peaks.flops, "peak_bandwidth": peaks.bandwidth, "source": peaks.source}
    if seconds:
        out.update(r.utilisation(seconds, peaks))
    return out


def cell_roofline(info: dict[str, Any], arch: Architecture, header: dict[str, Any],
                  seconds: float | None = None) -> dict[str, Any] | None:
    """The `extra_info.roofline` record of one encode cell (None when it lacks what the count needs)."""
    if info.get("encoder") not in ENCODERS or info.get("status") == "skipped":
        return None
    seq, k, batch, dtype = (info.get(f) for f in ("model_input_tokens", "k", "batch_size", "dtype"))
    if seq is None or k is None or dtype is None:
        return None
    forwards = encoder_forwards(info["encoder"], int(seq), int(k), int(batch or 1), int(info.get("denoise_steps") or 1))
    device = str(info.get("device") or "cpu")
    if seconds is None and info.get("samples_s"):
        seconds = float(np.median(np.asarray(info["samples_s"], dtype=float)))
    record: dict[str, Any] = {"model_tokens": int(seq), "forwards": len(forwards), "dtype": str(dtype),
                              "measured_s": seconds, "architecture": arch.as_dict(), "probe": None, "vendor": None}
    probe = probe_peaks(header.get("peaks"), device, str(dtype))
    row = gpu_row(header) if device.startswith("cuda") else None
    vendor = row.peaks(str(dtype)) if row is not None and str(dtype) in row.flops else None
    work = None
    for side, peaks in (("probe", probe), ("vendor", vendor)):
        if peaks is not None:
            r = roofline(arch, forwards, str(dtype), peaks)
            work = r.work
            record[side] = _side(r, peaks, seconds)
    if work is None:  # no peaks at all: the work alone
        from repbench.analysis.roofline import call_work

        work = call_work(arch, info["encoder"], int(seq), int(k), int(batch or 1), str(dtype),
                         int(info.get("denoise_steps") or 1))
    record.update(flops=work.flops, attention_flops=work.attention_flops,
                  bytes={"weights": work.weight_bytes, "kv_cache": work.kv_bytes,
                         "activations": work.activation_bytes, "total": work.bytes})
    if row is not None and vendor is not None:
        record["vendor"]["gpu"] = row.name
    record["primary"] = "vendor" if record["vendor"] else ("probe" if record["probe"] else None)
    return record


def annotate_bench(obj: dict[str, Any]) -> int:
    """Add `extra_info.roofline` to every measured encode cell of a parsed bench JSON; returns how many."""
    header = (obj.get("machine_info") or {}).get("repbench") or {}
    infos = [b.get("extra_info") or {} for b in obj.get("benchmarks") or []]
    archs = architectures(header, {str(i["backbone"]) for i in infos if i.get("encoder") in ENCODERS})
    n = 0
    for info in infos:
        arch = archs.get(str(info.get("backbone")))
        rec = cell_roofline(info, arch, header) if arch is not None else None
        if rec is not None:
            info["roofline"] = rec
            n += 1
    return n


COLUMNS = ("floor_ms", "mbu", "mfu", "bound", "floor_source", "probe_floor_ms", "probe_mbu", "probe_mfu",
           "vendor_floor_ms", "vendor_mbu", "vendor_mfu", "vendor_gpu", "gflops", "mbytes", "forwards")


def roofline_fields(record: dict[str, Any] | None) -> dict[str, Any]:
    """Flat report/compare columns of one cell's roofline record (NaN where absent)."""
    out: dict[str, Any] = dict.fromkeys(COLUMNS, np.nan)
    out.update(bound=None, floor_source=None, vendor_gpu=None)
    if not isinstance(record, dict):
        return out
    out.update(gflops=record["flops"] / 1e9, mbytes=record["bytes"]["total"] / 1e6, forwards=record["forwards"])
    for side in ("probe", "vendor"):
        s = record.get(side)
        if isinstance(s, dict):
            out.update({f"{side}_floor_ms": s["floor_s"] * 1e3, f"{side}_mbu": s.get("mbu", np.nan),
                        f"{side}_mfu": s.get("mfu", np.nan)})
    primary = record.get(record.get("primary") or "")
    if isinstance(primary, dict):
        out.update(floor_ms=primary["floor_s"] * 1e3, mbu=primary.get("mbu", np.nan),
                   mfu=primary.get("mfu", np.nan), bound=primary["bound"], floor_source=primary["source"])
    if isinstance(record.get("vendor"), dict):
        out["vendor_gpu"] = record["vendor"].get("gpu")
    return out


def run_rooflines(run: BenchRun) -> list[dict[str, Any] | None]:
    """Each benchmark's roofline record, in `run.records` order: the stored one, else computed from the
    header's peaks (a JSON written before the harness stored them per cell)."""
    encode = {str(r.get("backbone")) for r in run.records if r.get("encoder") in ENCODERS}
    archs = None
    out = []
    for r in run.records:
        rec = r.get("roofline")
        if (not isinstance(rec, dict) and r.get("encoder") in ENCODERS and not r.get("skipped")
                and r.get("model_input_tokens") is not None and isinstance(run.header.get("peaks"), dict)):
            archs = archs if archs is not None else architectures(run.header, encode)
            arch = archs.get(str(r.get("backbone")))
            seconds = float(np.median(r["samples_s"])) if len(r["samples_s"]) else None
            rec = cell_roofline(r, arch, run.header, seconds) if arch is not None else None
        out.append(rec if isinstance(rec, dict) else None)
    return out


def roofline_frame(run: BenchRun) -> pd.DataFrame:
    """`run.cells` plus the flat roofline columns, one row per benchmark."""
    fields = pd.DataFrame([roofline_fields(rec) for rec in run_rooflines(run)], index=run.cells.index)
    return pd.concat([run.cells, fields], axis=1)


def efficiency_fields(base: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, float]:
    """MBU/MFU of a matched cell on both sides and the efficiency ratio MBU new / MBU base (NaN when a side
    has no roofline): how much of its own bandwidth each device reaches, next to the latency ratio."""
    b, n = roofline_fields(base), roofline_fields(new)
    ratio = n["mbu"] / b["mbu"] if b["mbu"] > 0 and n["mbu"] > 0 else np.nan
    return {"mbu_base": b["mbu"], "mbu_new": n["mbu"], "efficiency_ratio": ratio, "mfu_base": b["mfu"],
            "mfu_new": n["mfu"]}


def efficiency_failures(table: pd.DataFrame, min_ratio: float) -> pd.DataFrame:
    """Cells whose MBU fell below `min_ratio` x the baseline's (the `--fail-efficiency-below` gate)."""
    if table.empty or "efficiency_ratio" not in table:
        return table.iloc[0:0]
    ratio = pd.to_numeric(table["efficiency_ratio"], errors="coerce")
    return table[ratio < min_ratio]


PAPER_GPU = "h100-sxm"  # the paper's latency figures were read on one H100 (README "Roofline")


def paper_floor_ms(backbone: str, encoder: str, k: int, model_tokens: int, batch: int = 1) -> float:
    """The floor of a cell in the paper's setting: the published architecture of `backbone`'s base model,
    bfloat16, on the vendor H100 SXM row (NaN for a backbone without a bundled config)."""
    try:
        arch = architecture_of(str(backbone).split(":", 1)[0])
    except RepbenchError:
        return float("nan")
    forwards = encoder_forwards(encoder, int(model_tokens), int(k), int(batch))
    return roofline(arch, forwards, "bfloat16", gpu_by_key(PAPER_GPU).peaks("bfloat16")).floor_s * 1e3


def add_probe(path: Any, repeats: int = 3) -> dict[str, Any]:
    """Record THIS machine's peaks in a bench JSON that was measured on it (a baseline written before the
    harness ran the probe), then every encode cell's roofline; the best of `repeats` probes (a shared
    machine's load only ever lowers them). Written atomically; returns the peaks record."""
    import datetime as dt
    import json

    from repbench.io import atomic_write_text
    from repbench.schema.bench import bench_header, parse_bench, read_json, resolve_bench_path
    from repbench.telemetry.peaks import measure_peaks

    path = resolve_bench_path(path)
    obj = read_json(path)
    header = bench_header(obj, path)
    infos = [b.get("extra_info") or {} for b in obj["benchmarks"] if (b.get("extra_info") or {}).get("encoder") in ENCODERS]
    devices = {str(i.get("device") or "cpu") for i in infos}
    if len(devices) != 1:
        raise RepbenchError(f"{path}: expected encode cells on one device, found {sorted(devices) or 'none'}")
    device, dtypes = devices.pop(), sorted({str(i["dtype"]) for i in infos if i.get("dtype")})
    probes = [measure_peaks(device, dtypes=dtypes) for _ in range(repeats)]
    peaks = max(probes, key=lambda p: p["read_bandwidth"])
    peaks["matmul_flops"] = {d: max(p["matmul_flops"].get(d, 0.0) for p in probes) for d in peaks["matmul_flops"]}
    peaks["added"] = {"utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "repeats": repeats,
                      "how": "repbench.analysis.roofline_cells.add_probe on the machine that measured the cells, "
                             "after the fact: best of the repeated probes",
                      "probes": [{**p["matmul_flops"], "read_bandwidth": p["read_bandwidth"],
                                  "load_avg_1m": (p["load_avg"] or [None])[0]} for p in probes]}
    header["peaks"] = peaks
    names = {str(i["backbone"]) for i in infos}
    header["architectures"] = {n: a.as_dict() for n, a in architectures({}, names).items()}
    annotate_bench(obj)
    parse_bench(obj, path)  # never replace a readable file with an unreadable one
    atomic_write_text(path, json.dumps(obj, indent=4) + "\n")
    return peaks
