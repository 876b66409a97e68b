"""A short probe of what this device achieves: dense matmul FLOP/s per dtype and memory read bandwidth.

The roofline (repbench.analysis.roofline) divides a cell's FLOPs and bytes by these, so they are the best
of several timed repetitions (the device's achievable peak, not an average), taken over a couple of
matrix sizes. Bandwidth is a full reduction (`x.sum()`) over a buffer far larger than any cache (256 MiB on
CPU, 1 GiB on a GPU): every byte is read once. The whole probe lasts about a second on CPU (`budget_s`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

CPU_SIZES = (512, 1024)
CUDA_SIZES = (4096, 8192)
CPU_BUFFER_BYTES = 256 * 2**20
CUDA_BUFFER_BYTES = 2**30
CPU_DTYPES = ("float32", "bfloat16")  # float16 matmul on CPU runs a slow reference path: probed only when asked
CUDA_DTYPES = ("float32", "bfloat16", "float16")


def matmul_operands(n: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Two n x n matrices on `device` (uniform values: no denormals, no overflow in half precision)."""
    a = torch.rand(n, n, dtype=dtype, device=device)
    b = torch.rand(n, n, dtype=dtype, device=device)
    return a, b


def bandwidth_buffer(nbytes: int, device: torch.device) -> torch.Tensor:
    """A float32 buffer of `nbytes` on `device`, filled (so its pages are resident before timing)."""
    return torch.full((nbytes // 4,), 1.0, dtype=torch.float32, device=device)


def _best_seconds(fn: Callable[[], Any], device: torch.device, budget_s: float, min_reps: int = 3) -> float:
    """Shortest time of `fn` over repetitions lasting about `budget_s` (at least `min_reps`), after one warm-up."""
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    best = float("inf")
    start = time.perf_counter()
    reps = 0
    while reps < min_reps or time.perf_counter() - start < budget_s:
        if device.type == "cuda":
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            fn()
            end.record()
            end.synchronize()
            best = min(best, begin.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        reps += 1
        if reps >= 200:
            break
    return best


def measure_peaks(device: str | torch.device = "cpu", dtypes: Sequence[str] | None = None,
                  budget_s: float = 1.2) -> dict[str, Any]:
    """Achieved matmul FLOP/s per dtype and read bandwidth (bytes/s) of `device`, within ~`budget_s`.

    The record goes into every bench JSON (`machine_info.repbench.peaks`): the floor and MBU/MFU of each
    cell are computed against it. A measurement that fails (out of memory beside a loaded model) is left
    out and named in `errors`, never guessed.
    """
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    names = list(dict.fromkeys(list(CUDA_DTYPES if cuda else CPU_DTYPES) + list(dtypes or ())))
    sizes = CUDA_SIZES if cuda else CPU_SIZES
    share = budget_s / (len(names) * len(sizes) + 2)
    t0 = time.perf_counter()
    flops: dict[str, float] = {}
    best_size: dict[str, int] = {}
    errors: list[str] = []
    nbytes = CUDA_BUFFER_BYTES if cuda else CPU_BUFFER_BYTES
    bandwidth = None
    with torch.inference_mode():
        for name in names:
            dt = getattr(torch, name)
            for n in sizes if (cuda or name != "float16") else (256,):
                try:
                    a, b = matmul_operands(n, dt, dev)
                    rate = 2.0 * n**3 / _best_seconds(lambda a=a, b=b: torch.mm(a, b), dev, share)
                except RuntimeError as exc:  # out of memory next to a loaded model, or a dtype the device lacks
                    errors.append(f"{name} {n}x{n} matmul: {str(exc).splitlines()[0][:200]}")
                    continue
                if rate > flops.get(name, 0.0):
                    flops[name], best_size[name] = rate, n
                del a, b
        try:
            buf = bandwidth_buffer(nbytes, dev)
            bandwidth = nbytes / _best_seconds(buf.sum, dev, 2 * share)
            del buf
        except RuntimeError as exc:
            errors.append(f"read bandwidth: {str(exc).splitlines()[0][:200]}")
    if cuda:
        torch.cuda.empty_cache()
    return {
        "device": str(dev), "name": _device_name(dev), "threads": None if cuda else torch.get_num_threads(),
        "matmul_flops": flops, "matmul_size": best_size, "read_bandwidth": bandwidth,
        "bandwidth_buffer_bytes": nbytes, "seconds": round(time.perf_counter() - t0, 3),
        "load_avg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "method": "best of repeated torch.mm(n x n) per dtype over sizes "
                  f"{list(sizes)}; x.sum() over a {nbytes // 2**20} MiB float32 buffer",
        "torch": torch.__version__, "errors": errors,
    }


def _device_name(dev: torch.device) -> str | None:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    from repbench.telemetry.environment import cpu_info

    return cpu_info().get("model")
