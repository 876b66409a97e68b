"""Timers measured against calibrated busy-wait workloads of known duration.

The workload spins on the wall clock, so it can never finish early; on a loaded machine a preemption
near its end can only make it longer. So the fastest of several repetitions is the undisturbed one,
and it must match the nominal duration within 5% (and never undershoot it). Each repetition is also
compared with the duration the workload itself observed, which must agree within 5%.
"""

from __future__ import annotations

import statistics
import time

import pytest
import torch

from repbench.telemetry.timers import IterationTimer, spin, step_breakdown, time_blocked


def observed_spin(seconds: float, seen: list[float]) -> None:
    t0 = time.perf_counter()
    spin(seconds)
    seen.append(time.perf_counter() - t0)


def test_iteration_timer_within_5_percent_of_busy_wait():
    timer = IterationTimer("cpu")
    seen: list[float] = []
    for _ in range(15):
        timer.time_call(observed_spin, 0.005, seen)
    recs = timer.records()
    assert len(recs) == 15
    assert min(r.seconds for r in recs) == pytest.approx(0.005, rel=0.05)
    assert all(r.seconds >= 0.005 for r in recs)
    for r, own in zip(recs, seen, strict=True):
        assert r.seconds == pytest.approx(own, rel=0.05)
        assert r.host_seconds == pytest.approx(own, rel=0.05)
    assert timer.kind == "perf_counter"


def test_step_marks_split_prefill_and_decode_steps():
    timer = IterationTimer("cpu")

    def sequential_like(cb):
        spin(0.004)
        cb("prefill", 0)
        for j in range(1, 4):
            spin(0.002)
            cb("decode", j)
        spin(0.001)

    for _ in range(15):
        timer.time_call(sequential_like, timer.mark)
    recs = timer.records()
    parts = [step_breakdown(r) for r in recs]
    assert all(len(p["decode_step_s"]) == 3 for p in parts)
    assert min(p["prefill_s"] for p in parts) == pytest.approx(0.004, rel=0.05)
    for j in range(3):
        assert min(p["decode_step_s"][j] for p in parts) == pytest.approx(0.002, rel=0.05)
    assert min(p["tail_s"] for p in parts) == pytest.approx(0.001, rel=0.05)
    for r, p in zip(recs, parts, strict=True):  # the pieces add up to the whole iteration
        assert p["prefill_s"] + sum(p["decode_step_s"]) + p["tail_s"] == pytest.approx(r.seconds, rel=1e-9)


def test_marks_outside_an_iteration_are_ignored():
    timer = IterationTimer("cpu")
    timer.mark("prefill", 0)
    timer.time_call(spin, 0.001)
    (rec,) = timer.records()
    assert rec.marks == []
    assert step_breakdown(rec)["prefill_s"] is None


def test_blocked_timing_of_sub_ms_region():
    per_iter, n = time_blocked(lambda: spin(100e-6), "cpu", blocks=15, min_block_s=2e-3)
    assert n >= 20  # 100 us per call needs >= 20 calls to fill 2 ms
    assert len(per_iter) == 15
    assert min(per_iter) == pytest.approx(100e-6, rel=0.05)
    assert all(t >= 100e-6 for t in per_iter)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA events need a CUDA GPU; none on this machine")
def test_cuda_event_timer_agrees_with_synchronised_host_time():
    x = torch.randn(4096, 4096, device="cuda")
    timer = IterationTimer("cuda")
    assert timer.kind == "cuda_event"

    def work(cb):
        y = x
        for i in range(5):
            y = y @ x
            cb("decode", i)
        return y

    for _ in range(5):
        timer.time_call(work, timer.mark)
    recs = timer.records()
    for r in recs:
        # Events bracket only the GPU work; the synchronised host time adds launch/sync overhead.
        assert 0 < r.seconds <= r.host_seconds * 1.01
        assert len(r.marks) == 5 and all(0 < t <= r.seconds for _, _, t in r.marks)
    assert statistics.median(r.seconds for r in recs) == pytest.approx(
        statistics.median(r.host_seconds for r in recs), rel=0.2)
