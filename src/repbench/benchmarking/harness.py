"""Measure one benchmark cell: warm-up, timing pass, memory pass, energy pass (docs/methodology.md rules 1-10).

The passes are separate on purpose: nothing polls NVML or RSS while iterations are timed. The
result is a typed `results.Measurement`, written flat into pytest-benchmark's `extra_info`
(docs/contracts.md, Latency).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

from repbench.benchmarking.results import (
    Conditions,
    Energy,
    Latency,
    Measurement,
    Memory,
    NvmlState,
    NvmlSummary,
    StepTimes,
    Throughput,
)
from repbench.stats import summarize
from repbench.telemetry.cpu import CpuTime, PeakRSS, load_average
from repbench.telemetry.nvml import NvmlDevice, NvmlSampler, measure_energy
from repbench.telemetry.timers import IterationTimer, step_breakdown, synchronize, time_blocked

MIN_ROUNDS_FLOOR = 5


@dataclass(frozen=True)
class CellPlan:
    """How much work to spend on a cell.

    The timing pass runs max(min_rounds, ceil(min_time_s / estimated iteration)) iterations, capped by
    max_rounds and by max_time_s (but never below MIN_ROUNDS_FLOOR). docs/methodology.md rule 5 asks for >= 30
    iterations and >= 2 s on a GPU; the CPU defaults of bench/ trade that for a short run.
    Warm-up runs `warmup` iterations, or stops early once `warmup_max_time_s` is spent (>= 2 done).
    """

    warmup: int = 10
    warmup_max_time_s: float | None = None  # None: no time limit
    min_rounds: int = 30
    min_time_s: float = 2.0
    max_rounds: int = 10_000
    max_time_s: float = 60.0
    memory_iterations: int = 3
    energy_window_s: float = 0.5
    block_below_s: float = 0.0  # time iterations shorter than this in blocks (sub-ms regions)

    def rounds_for(self, est_iteration_s: float) -> int:
        est = max(est_iteration_s, 1e-9)
        want = max(self.min_rounds, math.ceil(self.min_time_s / est))
        cap_by_time = max(MIN_ROUNDS_FLOOR, int(self.max_time_s / est))
        return max(1, min(want, self.max_rounds, cap_by_time))


def is_oom(exc: BaseException) -> bool:
    """True for CUDA out-of-memory and host allocation failures: the cell is skipped, the run goes on."""
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    msg = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg)


RoundsRunner = Callable[[Callable[[], Any], int], Any]


def _plain_rounds(target: Callable[[], Any], rounds: int) -> None:
    for _ in range(rounds):
        target()


class CellMeasurement:
    """Drive one cell. `fn(step_callback)` runs one iteration of the measured work.

    Usage: `m = CellMeasurement(fn, device, plan, nvml=dev)`; `m.run(runner)` where runner(target,
    rounds) calls target `rounds` times (pytest-benchmark's `pedantic`, or a plain loop); then
    `m.fields(batch_size=..., tokens_per_query=...)`.
    """

    def __init__(
        self,
        fn: Callable[[Callable[[str, int], None] | None], Any],
        device: str | torch.device,
        plan: CellPlan,
        nvml: NvmlDevice | None = None,
        telemetry_note: str | None = None,
    ) -> None:
        self.fn = fn
        self.device = torch.device(device)
        self.plan = plan
        self.nvml = nvml
        self.telemetry_note = telemetry_note
        self.timer = IterationTimer(self.device)
        self.block_size: int | None = None
        self._warm_s: float | None = None
        self._warm_n = 0
        self.first_result: Any = None
        self._rounds = 0
        self._cpu_per_iter: float | None = None
        self._state_before: dict[str, Any] | None = None
        self._state_after: dict[str, Any] | None = None
        self._load_before: float | None = None
        self._load_after: float | None = None

    def _call(self) -> Any:
        return self.fn(None)

    def warmup(self) -> float:
        """Untimed iterations at the cell's full shape; returns the median iteration estimate (s)."""
        warm = IterationTimer(self.device)
        t0 = time.perf_counter()
        for i in range(max(1, self.plan.warmup)):
            result = warm.time_call(self._call)
            if i == 0:
                self.first_result = result  # lets the caller check the work done, at no extra call
            if (i >= 1 and self.plan.warmup_max_time_s is not None
                    and time.perf_counter() - t0 >= self.plan.warmup_max_time_s):
                break
        recs = warm.records()
        self._warm_n = len(recs)
        times = sorted(r.host_seconds for r in recs)
        self._warm_s = times[len(times) // 2]
        return self._warm_s

    def timed_iteration(self) -> Any:
        return self.timer.time_call(self.fn, self.timer.mark)

    def timed_block(self) -> None:
        n = self.block_size or 1

        def block() -> None:
            for _ in range(n):
                self._call()

        self.timer.time_call(block)

    def run(self, runner: RoundsRunner = _plain_rounds) -> None:
        """Warm-up, then the timing pass (no sampler running), then memory and energy passes."""
        self._load_before = load_average()
        est = self.warmup()
        if self.nvml is not None:
            self._state_before = self.nvml.state()
        self._rounds = self.plan.rounds_for(est)
        target = self.timed_iteration
        if est < self.plan.block_below_s:
            # Sub-ms iterations: per-iteration events/perf_counter would be mostly overhead, so each
            # timed sample is a block of back-to-back calls (pytest-benchmark then reports block times).
            _, self.block_size = time_blocked(self._call, self.device, blocks=1, min_block_s=1e-3)
            target = self.timed_block
            self._rounds = self.plan.rounds_for(est * self.block_size)
        with CpuTime() as ct:
            runner(target, self._rounds)
        n_iter = max(1, len(self.timer._pending) * (self.block_size or 1))
        self._cpu_per_iter = ct.cpu_time_s / n_iter
        if self.nvml is not None:
            self._state_after = self.nvml.state()
        self._memory = self.memory_pass()
        self._energy = self.energy_pass()
        self._load_after = load_average()

    def memory_pass(self) -> Memory:
        cuda = self.device.type == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        synchronize(self.device)
        sampler = NvmlSampler(self.nvml) if self.nvml is not None else None
        with PeakRSS() as rss:
            if sampler is not None:
                with sampler:
                    for _ in range(self.plan.memory_iterations):
                        self._call()
                    synchronize(self.device)
            else:
                for _ in range(self.plan.memory_iterations):
                    self._call()
                synchronize(self.device)
        allocated = reserved = None
        if cuda:
            allocated = int(torch.cuda.max_memory_allocated(self.device))
            reserved = int(torch.cuda.max_memory_reserved(self.device))
        return Memory(
            torch_peak_allocated_bytes=allocated, torch_peak_reserved_bytes=reserved,
            peak_rss_bytes=rss.result["peak_rss_bytes"], rss_before_bytes=rss.result["rss_before_bytes"],
            rss_method=rss.result["rss_method"],
            peak_memory_bytes=allocated if cuda else rss.result["peak_rss_bytes"],
            peak_memory_kind="torch_max_memory_allocated" if cuda else "process_peak_rss",
            nvml=NvmlSummary(**sampler.summary()) if sampler is not None else None,
        )

    def energy_pass(self) -> tuple[Energy, float | None]:
        """The energy record (per query still unset) and the joules per iteration it rests on."""
        if self.nvml is None:
            return Energy(energy_window_s=None, energy_iterations=None), None
        res = measure_energy(
            self.nvml, self._call, lambda: synchronize(self.device), min_window_s=self.plan.energy_window_s
        )
        return Energy(res["energy_window_s"], res["energy_iterations"], res.get("energy_ticks"),
                      res.get("energy_note")), res["energy_j_per_iter"]

    def samples(self) -> tuple[list[float], list[float], list[dict[str, Any]]]:
        recs = self.timer.records()
        if self.block_size is not None:
            n = self.block_size
            return [r.seconds / n for r in recs], [r.host_seconds / n for r in recs], []
        return [r.seconds for r in recs], [r.host_seconds for r in recs], [step_breakdown(r) for r in recs]

    def measurement(self, batch_size: int, tokens_per_query: int | None) -> Measurement:
        """The typed result: raw samples, summary, throughput, step times, memory, energy, conditions."""
        samples, host, steps = self.samples()
        summary = summarize(samples)
        median = summary["median"]
        latency = Latency(
            timer=self.timer.kind if self.block_size is None else f"{self.timer.kind}_blocked",
            block_size=self.block_size, warmup_iterations=self._warm_n, warmup_median_s=self._warm_s,
            rounds=len(samples), samples_s=samples, host_samples_s=host, stats=summary,
            host_median_s=summarize(host)["median"], cpu_time_s_per_iter=self._cpu_per_iter,
        )
        throughput = Throughput(
            queries_per_s=batch_size / median if median > 0 else None,
            tokens_per_s=(batch_size * tokens_per_query / median) if (tokens_per_query and median > 0) else None,
        )
        step_times = StepTimes()
        if any(s["prefill_s"] is not None for s in steps):
            step_times.prefill_s = [s["prefill_s"] for s in steps]
            step_times.decode_step_s = [s["decode_step_s"] for s in steps]
            step_times.tail_s = [s["tail_s"] for s in steps]
        if steps and all(s["model_s"] is not None for s in steps):
            # model-only next to end-to-end (samples_s): first to last forward mark of each iteration
            step_times.model_s = [s["model_s"] for s in steps]
            step_times.model_median_s = summarize(step_times.model_s)["median"]
        energy, per_iter = self._energy
        energy = replace(energy, energy_j_per_query=per_iter / batch_size if per_iter is not None else None)
        conditions = Conditions(
            nvml_state_before=NvmlState(**self._state_before) if self._state_before is not None else None,
            nvml_state_after=NvmlState(**self._state_after) if self._state_after is not None else None,
            telemetry_note=self.telemetry_note, load_avg_before=self._load_before, load_avg_after=self._load_after,
        )
        return Measurement(latency, throughput, step_times, self._memory, energy, conditions)

    def fields(self, batch_size: int, tokens_per_query: int | None) -> dict[str, Any]:
        """The measurement as extra_info keys (docs/contracts.md, Latency)."""
        return self.measurement(batch_size, tokens_per_query).to_json()


def cold_start(load: Callable[[], Any], first_call: Callable[[Any], Any], device: str | torch.device) -> tuple[Any, dict[str, float]]:
    """Time loading and the first call separately (docs/methodology.md rule 4): both are excluded from warm timings."""
    synchronize(device)
    t0 = time.perf_counter()
    obj = load()
    synchronize(device)
    t1 = time.perf_counter()
    first_call(obj)
    synchronize(device)
    t2 = time.perf_counter()
    return obj, {"load_s": t1 - t0, "first_call_s": t2 - t1}
