"""Environment capture and the common header of every result file."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from repbench import SCHEMA_VERSION, __version__

PACKAGES = (
    "torch", "transformers", "accelerate", "safetensors", "tokenizers", "numpy", "pandas", "scipy",
    "faiss-cpu", "pytrec-eval-terrier", "nvidia-ml-py", "pytest-benchmark", "matplotlib", "seaborn",
)


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state(cwd: str | os.PathLike | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the repository holding `cwd` (or this package); nulls outside git."""
    cwd = Path(cwd) if cwd else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True,
            text=True, timeout=10, check=True,
        ).stdout
        return {"commit": commit, "dirty": bool(status.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def cpu_info() -> dict[str, Any]:
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor() or None
    try:
        import psutil

        ram = psutil.virtual_memory().total
    except Exception:  # psutil missing or unsupported platform
        ram = None
    threads = None
    try:
        import torch

        threads = torch.get_num_threads()
    except ImportError:
        pass
    return {
        "model": model,
        "logical_cores": os.cpu_count(),
        "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": threads,
        "ram_bytes": ram,
    }


def capture_environment() -> dict[str, Any]:
    """Host, software and (when present) GPU facts. GPU fields come from telemetry.gpu when available."""
    env: dict[str, Any] = {
        "hostname": platform.node(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_info(),
        "packages": package_versions(),
        "gpu": None,
    }
    try:
        from repbench.telemetry.gpu import gpu_environment  # optional richer capture

        env["gpu"] = gpu_environment()
    except ImportError:
        pass
    return env


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def result_header(config: dict[str, Any], kind: str) -> dict[str, Any]:
    """The block every result file carries: schema, versions, git, time, config and environment."""
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "repbench_version": __version__,
        "git": git_state(),
        "created_utc": utc_now(),
        "config": config,
        "environment": capture_environment(),
    }
