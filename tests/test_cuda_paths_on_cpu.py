"""The CUDA-only branches, run for their arithmetic on this CPU machine.

CUDA event timing (its stream and its milliseconds), CUDA memory statistics and the GPU path of
`head_logits` run nowhere in a CPU suite unless something stands in for the GPU: fake events on a
virtual clock, fake `torch.cuda` memory counters, and the flag that selects the GPU head path. The
references are hand-computed numbers and `F.linear`, never the code's own output.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from repbench.backbones.forward import head_logits
from repbench.benchmarking.harness import CellMeasurement, CellPlan
from repbench.telemetry import nvml as nv
from repbench.telemetry.timers import IterationTimer, step_breakdown


class VirtualGPU:
    """A clock in milliseconds that the 'work' advances, and CUDA events and streams that read it."""

    def __init__(self) -> None:
        self.ms = 1000.0
        self.recorded_on: list[object] = []
        self.syncs = 0
        self.stream = object()
        self.stream_device: torch.device | None = None

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        gpu = self

        class Event:
            def __init__(self, enable_timing: bool = False) -> None:
                assert enable_timing
                self.at: float | None = None

            def record(self, stream: object = None) -> None:
                gpu.recorded_on.append(stream)
                self.at = gpu.ms

            def elapsed_time(self, end: Event) -> float:
                assert self.at is not None and end.at is not None
                return end.at - self.at  # milliseconds, as CUDA reports them

        def current_stream(device: object = None) -> object:
            gpu.stream_device = torch.device(device)
            return gpu.stream

        def synchronize(device: object = None) -> None:
            gpu.syncs += 1

        monkeypatch.setattr(torch.cuda, "Event", Event)
        monkeypatch.setattr(torch.cuda, "current_stream", current_stream)
        monkeypatch.setattr(torch.cuda, "synchronize", synchronize)


def test_cuda_event_time_is_milliseconds_converted_to_seconds_on_the_current_stream(monkeypatch):
    gpu = VirtualGPU()
    gpu.install(monkeypatch)
    timer = IterationTimer("cuda:1")
    assert timer.kind == "cuda_event"

    def work(mark):
        gpu.ms += 12.5  # host-side preparation
        mark("start", 0)
        gpu.ms += 40.0
        mark("prefill", 0)
        for j in (1, 2):
            gpu.ms += 20.0
            mark("decode", j)
        gpu.ms += 7.5  # copies of the results

    timer.time_call(work, timer.mark)
    (rec,) = timer.records()
    assert rec.seconds == pytest.approx(0.100)  # 12.5 + 40 + 2 x 20 + 7.5 ms
    assert [(p, s) for p, s, _ in rec.marks] == [("start", 0), ("prefill", 0), ("decode", 1), ("decode", 2)]
    assert [t for _, _, t in rec.marks] == pytest.approx([0.0125, 0.0525, 0.0725, 0.0925])
    parts = step_breakdown(rec)
    assert parts["prefill_s"] == pytest.approx(0.0525)  # from the iteration's start, as before
    assert parts["decode_step_s"] == pytest.approx([0.020, 0.020])
    assert parts["tail_s"] == pytest.approx(0.0075)
    assert parts["model_s"] == pytest.approx(0.080)  # start mark to the last forward mark
    # Every event went on the stream torch.cuda.current_stream gave for the timer's own device.
    assert gpu.recorded_on and all(s is gpu.stream for s in gpu.recorded_on)
    assert gpu.stream_device == torch.device("cuda:1")
    assert gpu.syncs >= 2  # before and after the call (idle start, then read after the work)


def test_model_time_sums_each_batch_from_its_start_mark():
    rec_marks = [("start", 0, 0.010), ("forward", 0, 0.030), ("start", 0, 0.050), ("forward", 0, 0.065)]
    from repbench.telemetry.timers import IterationRecord

    parts = step_breakdown(IterationRecord(0.080, 0.081, rec_marks))
    assert parts["model_s"] == pytest.approx(0.020 + 0.015)
    assert parts["tail_s"] == pytest.approx(0.015)
    assert step_breakdown(IterationRecord(0.05, 0.05, [("prefill", 0, 0.02)]))["model_s"] is None


def test_cell_on_cuda_reports_event_samples_model_time_and_cuda_memory_stats(monkeypatch):
    gpu = VirtualGPU()
    gpu.install(monkeypatch)
    resets: list[torch.device] = []
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda d=None: resets.append(torch.device(d)))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda d=None: 123_456_789)
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda d=None: 234_567_890)

    def fn(mark):
        gpu.ms += 1.0
        if mark is not None:
            mark("start", 0)
        gpu.ms += 30.0
        if mark is not None:
            mark("forward", 0)
        gpu.ms += 2.0

    plan = CellPlan(warmup=2, min_rounds=6, min_time_s=0.0, max_time_s=10.0, memory_iterations=2)
    m = CellMeasurement(fn, "cuda:0", plan)
    m.run()
    f = m.fields(batch_size=2, tokens_per_query=8)
    assert f["timer"] == "cuda_event" and f["rounds"] == 6
    assert f["samples_s"] == pytest.approx([0.033] * 6)
    assert f["model_s"] == pytest.approx([0.030] * 6) and f["model_median_s"] == pytest.approx(0.030)
    assert f["queries_per_s"] == pytest.approx(2 / 0.033)
    assert resets == [torch.device("cuda:0")]
    assert f["peak_memory_bytes"] == f["torch_peak_allocated_bytes"] == 123_456_789
    assert f["torch_peak_reserved_bytes"] == 234_567_890
    assert f["peak_memory_kind"] == "torch_max_memory_allocated"


@pytest.fixture(scope="module")
def head_model():
    torch.manual_seed(0)
    lm = torch.nn.Module()
    lm.lm_head = torch.nn.Linear(48, 5000, bias=False)  # > 2 CPU blocks of 2,048 vocabulary rows
    with torch.no_grad():
        lm.lm_head.weight.copy_(torch.randn(5000, 48, generator=torch.Generator().manual_seed(3)))
    return lm


@pytest.mark.parametrize("blocked", [False, True], ids=["gpu-path", "cpu-blocks"])
@pytest.mark.parametrize("rows", [1, 2, 16])
def test_both_head_paths_equal_the_linear_head(head_model, blocked, rows):
    h = torch.randn(2, rows, 48, generator=torch.Generator().manual_seed(rows))
    with torch.inference_mode():
        got = head_logits(head_model, h, blocked=blocked)
        ref = F.linear(h, head_model.lm_head.weight)
    assert got.shape == (2, rows, 5000)
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-5)
    assert torch.equal(got.argmax(-1), ref.argmax(-1))


def test_head_path_default_is_blocks_on_cpu_and_one_matmul_elsewhere(head_model, monkeypatch):
    seen: list[int] = []
    real = torch.Tensor.split

    def spy(self, *a, **kw):
        seen.append(1)
        return real(self, *a, **kw)

    monkeypatch.setattr(torch.Tensor, "split", spy)
    with torch.inference_mode():
        head_logits(head_model, torch.randn(1, 3, 48))
        assert seen, "CPU default must take the vocabulary blocks"
        seen.clear()
        meta = torch.nn.Module()
        meta.lm_head = torch.nn.Linear(48, 5000, bias=False, device="meta")
        out = head_logits(meta, torch.empty(1, 3, 48, device="meta"))
    assert not seen and out.shape == (1, 3, 5000) and out.device.type == "meta"


class TickingCounter:
    """An NVML energy counter that updates every `tick_ms` of a virtual clock, at a constant power."""

    def __init__(self, tick_ms: float, watts: float, call_ms: float, start_ms: float) -> None:
        self.tick_ms, self.watts, self.call_ms = tick_ms, watts, call_ms
        self.ms = start_ms
        self.calls = 0

    def energy_mj(self) -> int:
        last_tick = (self.ms // self.tick_ms) * self.tick_ms
        return int(round(self.watts * last_tick))  # W x ms = mJ, as of the last update

    def work(self) -> None:
        self.ms += self.call_ms
        self.calls += 1


def test_energy_window_opens_and_closes_on_counter_ticks(monkeypatch):
    # 150 W, 7 ms per call -> 1.05 J per call; the counter moves every 50 ms. The first reading is
    # 45 ms stale: a window opened on it (not on a tick) would count 45 ms of energy no call spent.
    counter = TickingCounter(tick_ms=50.0, watts=150.0, call_ms=7.0, start_ms=10_045.0)
    monkeypatch.setattr(nv.time, "perf_counter", lambda: counter.ms / 1e3)
    device = nv.NvmlDevice(None, None, 0)
    monkeypatch.setattr(device, "energy_mj", counter.energy_mj)
    res = nv.measure_energy(device, counter.work, min_window_s=0.1)
    assert res["energy_note"] is None
    assert res["energy_ticks"] >= 10 or res["energy_window_s"] >= 1.0
    assert res["energy_window_s"] >= 0.1
    # tick-aligned ends: at most one 7 ms call of misalignment at each end of a >= 500 ms window
    assert res["energy_j_per_iter"] == pytest.approx(1.05, rel=0.03)
    assert res["energy_iterations"] < counter.calls  # calls before the opening tick are not counted


def test_energy_counter_that_never_moves_is_reported_not_divided(monkeypatch):
    clock = [0.0]

    def work():
        clock[0] += 0.25

    monkeypatch.setattr(nv.time, "perf_counter", lambda: clock[0])
    device = nv.NvmlDevice(None, None, 0)
    monkeypatch.setattr(device, "energy_mj", lambda: 5_000)
    res = nv.measure_energy(device, work, min_window_s=0.1, max_wait_s=5.0)
    assert res["energy_j_per_iter"] is None and "did not move" in res["energy_note"]
