"""The timers' arithmetic on a fake clock: every workload advances the clock by a known amount, so the
records must equal those amounts exactly, whatever else the machine is doing.

The same checks against the real clock (busy-wait workloads of known duration) are a benchmark,
bench/test_timer_accuracy.py: a scheduler's preemption is a measurement, not a test failure.
"""

from __future__ import annotations

import statistics
from types import SimpleNamespace

import pytest
import torch

from repbench.telemetry import timers
from repbench.telemetry.timers import IterationTimer, step_breakdown, time_blocked


class FakeClock:
    """perf_counter that moves only when a workload says so (and by a fixed tick per read, to show that
    the timers subtract the right reads)."""

    def __init__(self, tick: float = 0.0) -> None:
        self.now, self.tick, self.reads = 1000.0, tick, 0

    def perf_counter(self) -> float:
        self.reads += 1
        self.now += self.tick
        return self.now

    def work(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(timers, "time", SimpleNamespace(perf_counter=fake.perf_counter))
    return fake


def test_iteration_timer_records_exactly_the_work_done(clock):
    timer = IterationTimer("cpu")
    durations = [0.005, 0.0071, 0.25, 1e-6]
    results = [timer.time_call(lambda s: (clock.work(s), s)[1], s) for s in durations]
    assert results == durations  # the call's own result comes back
    recs = timer.records()
    assert [r.seconds for r in recs] == pytest.approx(durations, rel=1e-12, abs=1e-12)
    assert [r.host_seconds for r in recs] == pytest.approx(durations, rel=1e-12, abs=1e-12)
    assert timer.kind == "perf_counter"


def test_step_marks_split_prefill_and_decode_steps(clock):
    timer = IterationTimer("cpu")

    def sequential_like(cb):
        clock.work(0.004)
        cb("prefill", 0)
        for j, s in enumerate((0.002, 0.003, 0.0025), start=1):
            clock.work(s)
            cb("decode", j)
        clock.work(0.001)

    timer.time_call(sequential_like, timer.mark)
    (rec,) = timer.records()
    parts = step_breakdown(rec)
    assert parts["prefill_s"] == pytest.approx(0.004, abs=1e-12)
    assert parts["decode_step_s"] == pytest.approx([0.002, 0.003, 0.0025], abs=1e-12)
    assert parts["tail_s"] == pytest.approx(0.001, abs=1e-12)
    assert rec.seconds == pytest.approx(0.0125, abs=1e-12)  # the pieces add up to the whole
    assert parts["model_s"] is None  # no "start" mark


def test_model_time_sums_each_batch_from_start_to_its_last_mark(clock):
    timer = IterationTimer("cpu")

    def two_batches(cb):
        for forward in (0.010, 0.020):
            clock.work(0.003)  # host work before the batch (tokenising)
            cb("start", 0)
            clock.work(forward)
            cb("prefill", 0)
            clock.work(0.002)  # copies of the results after
    timer.time_call(two_batches, timer.mark)
    (rec,) = timer.records()
    parts = step_breakdown(rec)
    assert parts["model_s"] == pytest.approx(0.030, abs=1e-12)
    assert rec.seconds == pytest.approx(0.040, abs=1e-12)


def test_marks_outside_an_iteration_are_ignored(clock):
    timer = IterationTimer("cpu")
    timer.mark("prefill", 0)
    timer.time_call(clock.work, 0.001)
    (rec,) = timer.records()
    assert rec.marks == []
    assert step_breakdown(rec)["prefill_s"] is None


def test_blocked_timing_grows_the_block_until_it_fills_the_minimum(clock):
    per_iter, n = time_blocked(lambda: clock.work(100e-6), "cpu", blocks=15, min_block_s=2e-3)
    assert n >= 20 and n * 100e-6 >= 2e-3  # 100 us per call needs >= 20 calls to fill 2 ms
    assert len(per_iter) == 15
    assert per_iter == pytest.approx([100e-6] * 15, rel=1e-9)


def test_blocked_timing_stops_at_max_block(clock):
    per_iter, n = time_blocked(lambda: clock.work(1e-9), "cpu", blocks=3, min_block_s=1.0, max_block=64)
    assert n == 64 and per_iter == pytest.approx([1e-9] * 3, rel=1e-6)


def test_timer_reads_outside_the_call_are_not_counted():
    # A clock that advances 1 ms on every read: the timer must take its start read just before the call
    # and its end read just after, so the record is the work plus exactly one tick.
    fake = FakeClock(tick=1e-3)
    saved = timers.time
    timers.time = SimpleNamespace(perf_counter=fake.perf_counter)
    try:
        timer = IterationTimer("cpu")
        timer.time_call(fake.work, 0.5)
        (rec,) = timer.records()
    finally:
        timers.time = saved
    assert rec.seconds == pytest.approx(0.501, abs=1e-9)


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
