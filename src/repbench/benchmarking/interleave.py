"""Contenders timed in rotated rounds inside one run, and their ratios (the benchmarks' shared clock).

Each round times every contender once, in an order rotated from round to round, so load from other
processes hits all alike. Wall-clock and process CPU time are both kept: on a shared machine CPU time
does not see other processes' scheduling, on a GPU only wall-clock sees the device's work.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def interleaved(calls: dict[str, Callable[[], object]], rounds: int,
                sync: Callable[[], object] | None = None) -> dict[str, dict[str, list[float]]]:
    """Wall and CPU seconds per contender; one untimed warm-up round, then `rounds` rotated rounds.
    `sync` (e.g. torch.cuda.synchronize) runs before and after each timed call."""
    names = list(calls)
    sync = sync or (lambda: None)
    for name in names:
        calls[name]()
    out: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            sync()
            c0, t0 = time.process_time(), time.perf_counter()
            calls[name]()
            sync()
            out[name]["wall"].append(time.perf_counter() - t0)
            out[name]["cpu"].append(time.process_time() - c0)
    return out


def ratios(times: dict[str, dict[str, list[float]]], ours: str, ref: str) -> dict[str, float]:
    """ours/ref per clock: ratio of medians, min-based ratio, median of the per-round ratios."""
    res = {}
    for clock in ("wall", "cpu"):
        a, b = times[ours][clock], times[ref][clock]
        res[f"{clock}_median"] = statistics.median(a) / statistics.median(b)
        res[f"{clock}_min"] = min(a) / min(b)
        res[f"{clock}_paired_median"] = statistics.median(x / y for x, y in zip(a, b, strict=True))
    return res
