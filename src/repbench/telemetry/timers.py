"""Per-iteration timers (docs/methodology.md rules 1, 7).

On CUDA each iteration is bracketed by CUDA events recorded on `torch.cuda.current_stream(device)` (the
stream the measured work is queued on, whichever device is current), and also by a host `perf_counter`
read after a device synchronisation at both ends (end-to-end time, including Python and launches).
Event times are read only after the final synchronisation; `elapsed_time` is in milliseconds. On CPU the
work is synchronous, so `perf_counter` alone is exact. Step marks (start / prefill / decode steps) use
the same clock as the iteration: events on CUDA, `perf_counter` on CPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch


def _is_cuda(device: str | torch.device) -> bool:
    return torch.device(device).type == "cuda"


def synchronize(device: str | torch.device) -> None:
    """Wait for all queued work on `device` (no-op on CPU, where work is synchronous)."""
    if _is_cuda(device):
        torch.cuda.synchronize(torch.device(device))


@dataclass
class IterationRecord:
    """One timed iteration. `seconds` is the primary clock; marks are seconds since the start."""

    seconds: float
    host_seconds: float
    marks: list[tuple[str, int, float]] = field(default_factory=list)


@dataclass
class _Pending:
    start: Any
    end: Any
    host_seconds: float
    marks: list[tuple[str, int, Any]]


class IterationTimer:
    """Times whole iterations and optional in-iteration marks; use `mark` as an encoder step callback."""

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.kind = "cuda_event" if self.cuda else "perf_counter"
        self._pending: list[_Pending] = []
        self._marks: list[tuple[str, int, Any]] | None = None
        self._t0 = 0.0

    def _stamp(self) -> Any:
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record(torch.cuda.current_stream(self.device))
            return ev
        return time.perf_counter()

    def mark(self, phase: str, step: int) -> None:
        """Record a point inside the current iteration (ignored outside `time_call`)."""
        if self._marks is not None:
            self._marks.append((phase, int(step), self._stamp()))

    def time_call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run `fn` once, timed; returns its result. Synchronises before and after (idle start)."""
        synchronize(self.device)
        self._marks = []
        h0 = time.perf_counter()
        start = self._stamp()
        try:
            result = fn(*args, **kwargs)
            end = self._stamp()
            synchronize(self.device)
            h1 = time.perf_counter()
        finally:
            marks, self._marks = self._marks, None
        self._pending.append(_Pending(start, end, h1 - h0, marks))
        return result

    def records(self) -> list[IterationRecord]:
        """Resolve every timed iteration so far (one final synchronisation first)."""
        synchronize(self.device)
        out = []
        for p in self._pending:
            if self.cuda:
                total = p.start.elapsed_time(p.end) / 1e3
                marks = [(ph, st, p.start.elapsed_time(ev) / 1e3) for ph, st, ev in p.marks]
            else:
                total = p.end - p.start
                marks = [(ph, st, t - p.start) for ph, st, t in p.marks]
            out.append(IterationRecord(total, p.host_seconds, marks))
        return out

    def clear(self) -> None:
        self._pending.clear()


def step_breakdown(record: IterationRecord) -> dict[str, Any]:
    """Prefill time, per-decode-step times, the tail after the last mark, and the model-only time, from
    one iteration's marks.

    Each step's time is the gap since the previous step mark, so prefill + steps + tail == total; a
    "start" mark (an encoder's first model call of a batch) does not split a step. The model-only time
    sums, over batches, each batch's start mark to its last mark: the forwards without the host work
    around them (tokens to tensors before, copies of the results after). None without start marks.
    """
    prefill = None
    steps: list[float] = []
    prev = 0.0
    model, start = 0.0, None
    for phase, _step, t in record.marks:
        if phase == "start":
            if start is not None:
                model += prev - start
            start = t
            continue
        gap = t - prev
        if phase == "prefill":
            prefill = gap
        elif phase == "decode":
            steps.append(gap)
        prev = t
    model_s = None if start is None else model + max(0.0, prev - start)
    return {"prefill_s": prefill, "decode_step_s": steps, "tail_s": record.seconds - prev, "model_s": model_s}


def time_blocked(
    fn: Callable[[], Any],
    device: str | torch.device = "cpu",
    blocks: int = 10,
    min_block_s: float = 1e-3,
    max_block: int = 1 << 20,
) -> tuple[list[float], int]:
    """Per-iteration seconds for a sub-ms region, timed in blocks of n back-to-back calls.

    n doubles until one block lasts at least `min_block_s`, so the ~0.1 us perf_counter overhead
    (or the us-level CUDA event jitter) is <= ~1e-4 of a block. Returns (one mean per block, n).
    """
    timer = IterationTimer(device)

    def run_block(n: int) -> None:
        for _ in range(n):
            fn()

    n = 1
    while True:
        timer.clear()
        timer.time_call(run_block, n)
        (rec,) = timer.records()
        if rec.seconds >= min_block_s or n >= max_block:
            break
        # Jump straight near the target once the block is long enough to estimate a rate.
        grow = 2 if rec.seconds <= 0 else min(max(2, int(1.2 * min_block_s / rec.seconds) + 1), 1024)
        n = min(n * grow, max_block)
    timer.clear()
    for _ in range(blocks):
        timer.time_call(run_block, n)
    return [r.seconds / n for r in timer.records()], n


def spin(seconds: float) -> None:
    """Busy-wait on the host clock (a workload of known duration, used to calibrate timers)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
