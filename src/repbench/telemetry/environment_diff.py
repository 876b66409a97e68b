"""What makes two latency captures comparable: the facts of an environment block (GPU, driver, CUDA,
cuDNN, torch, CPU, threads, dtype, attention backend, device) and the differences between two of them.

It reads the `environment` blocks that `repbench.telemetry.environment` captures, in whatever shape the
GPU capture used, so `repbench compare` can warn when BASE and NEW ran on different stacks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd


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


_ENV_FIELDS = (
    # label, where to look: "gpu" (per-GPU dicts, then the env), "pkg" (package versions), "cpu", "top"
    ("GPU model", "gpu", ("name",)),
    ("GPU driver", "gpu", ("driver_version", "driver")),
    ("CUDA", "gpu", ("cuda_runtime_version", "cuda_version", "cuda_runtime", "torch_cuda", "cuda")),
    ("CUDA driver", "gpu", ("cuda_driver_version",)),
    ("cuDNN", "gpu", ("cudnn_version", "cudnn")),
    ("torch", "pkg", ("torch",)),
    ("transformers", "pkg", ("transformers",)),
    ("CPU model", "cpu", ("model",)),
    ("CPU threads", "cpu", ("torch_threads",)),
)


def _find(obj: Any, names: Sequence[str], depth: int = 3) -> Any:
    """First value under any of `names`, searched breadth-first a few levels deep (GPU captures nest)."""
    level = [obj]
    for _ in range(depth):
        nxt = []
        for d in level:
            if isinstance(d, dict):
                for name in names:
                    if d.get(name) not in (None, ""):
                        return d[name]
                nxt.extend(v for v in d.values() if isinstance(v, dict | list))
            elif isinstance(d, list):
                nxt.extend(v for v in d if isinstance(v, dict | list))
        level = nxt
    return None


def environment_facts(environment: dict[str, Any], cells: pd.DataFrame | None = None,
                      config: dict[str, Any] | None = None) -> dict[str, str | None]:
    """The facts that make latencies comparable, as strings (None = not recorded)."""
    env = environment or {}
    facts: dict[str, str | None] = {}
    gpus = gpu_devices(env)
    for label, where, names in _ENV_FIELDS:
        if where == "gpu":
            if label == "GPU model":
                vals = [str(g.get("name")) for g in gpus if g.get("name")]
                value = ", ".join(vals) if vals else None
            else:
                value = _find(gpus, names) if gpus else None
                if value is None and gpus:
                    value = _find(env.get("gpu"), names)
        elif where == "pkg":
            value = (env.get("packages") or {}).get(names[0])
        else:
            value = (env.get("cpu") or {}).get(names[0])
        facts[label] = None if value is None else str(value)
    for label, key in (("dtype", "dtype"), ("attention backend", "attn"), ("device", "device")):
        vals: set[str] = set()
        if cells is not None and key in cells.columns:
            vals |= {str(v) for v in cells[key] if v is not None and not (isinstance(v, float) and math.isnan(v))}
        if not vals and config and config.get(key) is not None:
            vals.add(str(config[key]))
        facts[label] = ", ".join(sorted(vals)) if vals else None
    return facts


def environment_differences(base: dict[str, str | None], new: dict[str, str | None]) -> list[str]:
    """One warning per fact that differs (a fact recorded on one side only counts as a difference)."""
    out = []
    for label in dict.fromkeys([*base, *new]):
        b, n = base.get(label), new.get(label)
        if b != n:
            out.append(f"{label} differs: {b or 'not recorded'} (BASE) vs {n or 'not recorded'} (NEW)")
    return out
