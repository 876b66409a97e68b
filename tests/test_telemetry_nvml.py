"""NVML telemetry driven by an injected fake `pynvml`, and the real pynvml's fallback on this machine."""

from __future__ import annotations

import os
import threading
import time
import warnings
from types import SimpleNamespace

import pytest

from repbench.benchmarking.harness import CellMeasurement, CellPlan
from repbench.telemetry import nvml as nv
from repbench.telemetry.gpu import gpu_environment
from repbench.telemetry.timers import spin

GIB = 1 << 30


class FakeNVMLError(Exception):
    pass


class FakeNVML:
    """Memory, power and a total-energy counter that the workload drives; nothing else is supported.

    Missing functions (utilisation, clocks, throttle reasons, processes) must come out as None.
    """

    NVMLError = FakeNVMLError

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.busy = False
        self.energy = 5_000_000  # mJ since driver load
        self.phase = "setup"
        self.calls = 0
        self.reads: dict[str, int] = {}
        self.idle_used, self.busy_used = 1 * GIB, 3 * GIB
        self.idle_mw, self.busy_mw = 50_000, 150_000

    def nvmlInit(self) -> None:
        pass

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, i: int) -> str:
        return f"handle{i}"

    def nvmlDeviceGetName(self, h):
        return b"Fake GPU 80GB"

    def nvmlDeviceGetUUID(self, h):
        return "GPU-0000-fake"

    def _read(self) -> None:
        self.reads[self.phase] = self.reads.get(self.phase, 0) + 1

    def nvmlDeviceGetMemoryInfo(self, h):
        self._read()
        with self.lock:
            used = self.busy_used if self.busy else self.idle_used
        return SimpleNamespace(used=used, total=80 * GIB, free=80 * GIB - used)

    def nvmlDeviceGetPowerUsage(self, h):
        self._read()
        with self.lock:
            return self.busy_mw if self.busy else self.idle_mw

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        with self.lock:
            return self.energy

    def nvmlDeviceGetPersistenceMode(self, h):
        raise FakeNVMLError("Not Supported")

    def workload(self, seconds: float = 0.004, energy_mj: int = 250):
        """One iteration: holds 3 GiB and 150 W for `seconds`, and consumes `energy_mj`."""
        with self.lock:
            self.busy = True
        spin(seconds)
        with self.lock:
            self.energy += energy_mj
            self.busy = False
            self.calls += 1


def fake_device(fake: FakeNVML) -> nv.NvmlDevice:
    return nv.NvmlDevice(fake, "handle0", 0)


def test_energy_from_counter_deltas_over_a_window():
    fake = FakeNVML()
    res = nv.measure_energy(fake_device(fake), fake.workload, min_window_s=0.1)
    # 250 mJ per call -> 0.25 J, however many calls it took to fill the window.
    assert res["energy_j_per_iter"] == pytest.approx(0.25)
    assert res["energy_window_s"] >= 0.1
    # one call before the window: it runs until the counter first moves, and opens the window there
    assert res["energy_iterations"] == fake.calls - 1 >= 2  # a 4 ms call cannot fill 100 ms alone
    with pytest.raises(ValueError, match="100 ms"):
        nv.measure_energy(fake_device(fake), fake.workload, min_window_s=0.05)


def test_energy_counter_unsupported_gives_null_not_zero():
    fake = FakeNVML()
    del FakeNVML.nvmlDeviceGetTotalEnergyConsumption  # class attribute: restore below
    try:
        res = nv.measure_energy(fake_device(fake), fake.workload)
    finally:
        FakeNVML.nvmlDeviceGetTotalEnergyConsumption = _energy
    assert res["energy_j_per_iter"] is None and "not supported" in res["energy_note"]


_energy = FakeNVML.nvmlDeviceGetTotalEnergyConsumption


def test_cell_extra_info_carries_fake_nvml_values_and_timing_pass_is_not_sampled():
    fake = FakeNVML()
    plan = CellPlan(warmup=2, min_rounds=5, min_time_s=0.0, max_time_s=1.0, memory_iterations=5,
                    energy_window_s=0.1)
    m = CellMeasurement(lambda cb: fake.workload(), "cpu", plan, nvml=fake_device(fake))

    def runner(target, rounds):
        fake.phase = "timing"
        for _ in range(rounds):
            target()
        fake.phase = "after"

    m.run(runner)
    f = m.fields(batch_size=2, tokens_per_query=16)
    assert fake.reads.get("timing", 0) == 0  # docs/methodology.md rule 8: no NVML polling while iterations are timed
    assert f["nvml_memory_used_peak_bytes"] == 3 * GIB
    assert f["power_max_w"] == 150.0
    assert 50.0 <= f["power_mean_w"] <= 150.0
    assert f["nvml_samples"] >= 3
    assert f["energy_j_per_query"] == pytest.approx(0.25 / 2)  # per iteration / batch size
    assert f["energy_iterations"] >= 2
    # Quantities the fake does not report are null, never 0.
    for key in ("gpu_utilization_mean_pct", "sm_clock_min_mhz", "throttle_reasons", "throttle_suspect",
                "nvml_process_memory_peak_bytes"):
        assert f[key] is None, key
    assert f["nvml_state_before"]["power_w"] == 50.0
    assert f["nvml_state_before"]["temperature_c"] is None
    assert len(f["samples_s"]) == 5
    assert f["queries_per_s"] == pytest.approx(2 / f["stats"]["median"])
    assert f["tokens_per_s"] == pytest.approx(2 * 16 / f["stats"]["median"])


def test_sampler_rejects_slow_polling_and_ors_throttle_reasons():
    fake = FakeNVML()
    with pytest.raises(ValueError):
        nv.NvmlSampler(fake_device(fake), interval_s=0.05)
    masks = iter([0x1, 0x4, 0x0] + [0x0] * 10_000)
    fake.nvmlDeviceGetCurrentClocksEventReasons = lambda h: next(masks)
    s = nv.NvmlSampler(fake_device(fake), interval_s=0.005)
    with s:
        time.sleep(0.03)
    summ = s.summary()
    assert summ["throttle_reasons"] == 0x5
    assert summ["throttle_reason_names"] == ["gpu_idle", "sw_power_cap"]
    assert summ["throttle_suspect"] is True  # SW power cap marks the cell suspect (docs/methodology.md rule 13)


def test_gpu_environment_from_fake_nvml():
    env = gpu_environment(FakeNVML())
    assert env is not None and len(env["devices"]) == 1
    d = env["devices"][0]
    assert d["name"] == "Fake GPU 80GB" and d["uuid"] == "GPU-0000-fake"
    assert d["total_memory_bytes"] == 80 * GIB
    assert d["persistence_mode"] is None  # raised NVMLError -> unknown, not 0
    assert d["power_limit_w"] is None and d["sm_count"] is None


def test_open_telemetry_with_fake_on_cuda_device_returns_handle():
    dev, note = nv.open_telemetry("cuda", module=FakeNVML())
    assert isinstance(dev, nv.NvmlDevice) and note is None


def test_real_pynvml_without_gpu_falls_back_to_cpu_with_stated_reason():
    real, reason = nv.load_nvml()
    if real is not None:
        pytest.skip("NVML works on this machine (a GPU is present); the fallback path is not reachable")
    assert reason and "NVML" in reason
    assert gpu_environment() is None
    nv._warned.clear()
    with pytest.warns(RuntimeWarning, match="CPU telemetry"):
        dev, note = nv.open_telemetry("cpu")
    assert dev is None and reason in note and "CPU telemetry" in note
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stated once: a second call does not warn again
        nv.open_telemetry("cpu")
    m = CellMeasurement(lambda cb: spin(0.002), "cpu",
                        CellPlan(warmup=1, min_rounds=5, min_time_s=0.0, memory_iterations=1),
                        nvml=dev, telemetry_note=note)
    m.run()
    f = m.fields(batch_size=1, tokens_per_query=8)
    assert f["telemetry_note"] == note
    assert f["energy_j_per_query"] is None and f["nvml_state_before"] is None
    assert f["peak_memory_kind"] == "process_peak_rss"
    assert f["peak_memory_bytes"] >= f["rss_before_bytes"] > 0
    assert f["torch_peak_allocated_bytes"] is None


def test_process_memory_null_when_pid_not_visible():
    fake = FakeNVML()
    fake.nvmlDeviceGetComputeRunningProcesses = lambda h: [SimpleNamespace(pid=os.getpid() + 12345,
                                                                           usedGpuMemory=GIB)]
    dev = fake_device(fake)
    assert dev.process_memory_bytes() is None
    fake.nvmlDeviceGetComputeRunningProcesses = lambda h: [SimpleNamespace(pid=os.getpid(), usedGpuMemory=GIB)]
    assert dev.process_memory_bytes() == GIB
