"""The report's environment paragraph: where and with what each result file was produced, and how
loaded the machine was while the latency cells ran.

Read from the headers every result file carries (docs/contracts.md, Common header): the bench JSONs'
`machine_info.repbench` and the sweeps' `metadata.json`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from repbench.report.inputs import find_bench_files, find_named


def _header(path: Path) -> dict[str, Any] | None:
    from repbench.errors import RepbenchError
    from repbench.io import read_json

    try:
        obj = read_json(path, allow_nan=True)  # bounded, as every reader: a metadata.json linked to /dev/zero cannot hang
    except (OSError, RepbenchError):
        return None
    if not isinstance(obj, dict):
        return None
    header = (obj.get("machine_info") or {}).get("repbench") if "benchmarks" in obj else obj
    return header if isinstance(header, dict) else None


def _device(env: dict[str, Any]) -> str:
    gpu = env.get("gpu")
    devices = gpu if isinstance(gpu, list) else (gpu.get("devices") or [gpu]) if isinstance(gpu, dict) else []
    names = [str(d.get("name")) for d in devices if isinstance(d, dict) and d.get("name")]
    cpu = env.get("cpu") if isinstance(env.get("cpu"), dict) else {}
    cpu_text = f"CPU {cpu.get('model') or 'unknown'}"
    extras = [f"{cpu['logical_cores']} logical cores" if cpu.get("logical_cores") else "",
              f"torch {cpu['torch_threads']} threads" if cpu.get("torch_threads") else ""]
    cpu_text += " (" + ", ".join(e for e in extras if e) + ")" if any(extras) else ""
    if names:
        driver = gpu.get("driver_version") if isinstance(gpu, dict) else None
        return f"GPU {', '.join(names)}" + (f" (driver {driver})" if driver else "") + f"; {cpu_text}"
    return f"{cpu_text}; no GPU"


def describe_header(header: dict[str, Any]) -> str:
    """One line: device, OS, Python, key packages, repbench version and commit, creation time."""
    env = header.get("environment") if isinstance(header.get("environment"), dict) else {}
    packages = env.get("packages") if isinstance(env.get("packages"), dict) else {}
    git = header.get("git") if isinstance(header.get("git"), dict) else {}
    parts = [_device(env)]
    if env.get("os"):
        parts.append(str(env["os"]))
    if env.get("python"):
        parts.append(f"Python {env['python']}")
    libs = [f"{name} {packages[name]}" for name in ("torch", "transformers") if packages.get(name)]
    if libs:
        parts.append(", ".join(libs))
    if header.get("repbench_version"):
        commit = str(git.get("commit") or "")[:7]
        parts.append(f"repbench {header['repbench_version']}" + (f" at {commit}" if commit else "")
                     + (" (uncommitted changes)" if git.get("dirty") else ""))
    if header.get("created_utc"):
        parts.append(f"created {header['created_utc']}")
    return "; ".join(parts)


def environment_lines(results: Path) -> list[str]:
    """`<kind> (<file>): <description>` per distinct environment among the result files under `results`."""
    results = Path(results)
    seen: dict[str, list[str]] = {}
    for path in find_bench_files(results) + find_named(results, "metadata.json"):
        header = _header(path)
        if not header:
            continue
        line = f"{header.get('kind') or 'result'}: " + describe_header(header)
        seen.setdefault(line, []).append(str(path.relative_to(results)))
    return [f"{line} [{', '.join(files[:3])}{f' and {len(files) - 3} more' if len(files) > 3 else ''}]"
            for line, files in seen.items()]


def load_statement(cells: pd.DataFrame) -> str:
    """How busy the machine was while the latency cells ran (1-min load average before/after each cell).

    Cells from harnesses that did not record the load (`load_avg_before`/`load_avg_after` absent) are
    said to be unrecorded, never assumed quiet.
    """
    before = pd.to_numeric(cells.get("load_avg_before", pd.Series(dtype=float)), errors="coerce")
    after = pd.to_numeric(cells.get("load_avg_after", pd.Series(dtype=float)), errors="coerce")
    values = np.concatenate([before.dropna().to_numpy(float), after.dropna().to_numpy(float)])
    if values.size == 0:
        return "The machine's load during the run was not recorded (bench JSON from a harness without load_avg_*)."
    cores = pd.to_numeric(cells.get("logical_cores", pd.Series(dtype=float)), errors="coerce").dropna()
    n_cores = int(cores.max()) if len(cores) else None
    measured = int((before.notna() | after.notna()).sum())
    text = (f"Machine load during the run (1-minute load average before and after each of {measured} cells"
            + (f", {n_cores} logical cores" if n_cores else "") + f"): median {np.median(values):.2f}, "
            f"range {values.min():.2f} to {values.max():.2f}.")
    if n_cores and values.max() > n_cores:
        text += (" Above the core count, other processes competed for the CPU, so run-to-run contention can "
                 "exceed the within-cell CIs.")
    return text


def synthetic_datasets(results: Path) -> dict[str, dict[str, Any]]:
    """Dataset name -> its generator record, for the datasets the sweeps under `results` read from a
    generated collection (metadata.json: collection.info.synthetic, written by `synthetic_collection`)."""
    out: dict[str, dict[str, Any]] = {}
    for path in find_named(Path(results), "metadata.json"):
        header = _header(path)
        collection = header.get("collection") if header else None
        if isinstance(collection, dict) and isinstance(collection.get("info"), dict):
            record = collection["info"].get("synthetic")
            if isinstance(record, dict) and collection.get("name"):
                out[str(collection["name"])] = record
    return out


def provenance_note(datasets: Any, backbones: Any, synthetic: dict[str, dict[str, Any]]) -> str:
    """What the shown numbers are, from what is shown: a sentence for each generated dataset among
    `datasets` and for each backbone that is an ablation rather than a trained model; '' for real data
    and real models (a real collection's caption never says "synthetic")."""
    parts = []
    for name in sorted({str(d) for d in datasets} & set(synthetic)):
        rec = synthetic[name]
        size = (f" of {rec['n_docs']} documents and {rec['n_queries']} queries, seed {rec['seed']}"
                if {"n_docs", "n_queries", "seed"} <= set(rec) else "")
        parts.append(f"Dataset '{name}' is repbench's generated demo collection{size} (planted relevant "
                     "documents): its numbers show the machinery, not retrieval quality on real data.")
    ablations = sorted({str(b) for b in backbones if str(b).endswith(":bidirectional")})
    if ablations:
        parts.append(f"{', '.join(ablations)}: autoregressive weights read bidirectionally, a parallel-readout "
                     "ablation, not a trained diffusion LM.")
    return (" " + " ".join(parts)) if parts else ""


def demo_banner(synthetic: dict[str, dict[str, Any]]) -> str | None:
    """The first thing the PDF says when any result comes from a generated collection."""
    if not synthetic:
        return None
    names = ", ".join(f"'{n}'" for n in sorted(synthetic))
    return (f"DEMO DATA. The effectiveness, oracle-K and adaptive-K numbers of dataset(s) {names} come from "
            "repbench's seeded synthetic collection (a few dozen generated documents with planted relevant "
            "ones), encoded by small CPU models. They show that the pipeline runs end to end; they are NOT "
            "measurements of retrieval quality on a real collection, and NOT the paper's models or findings. "
            "Latency figures are this machine's.")
