"""NVML telemetry: a polling sampler (memory, utilisation, power, clocks, throttle reasons) and
energy from the total-energy counter (docs/methodology.md rules 8-10, 13).

Everything takes the NVML module as an argument, so tests can drive it with a fake `pynvml`.
A quantity NVML does not report on this device is None, never 0.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

# Clocks-event (throttle) reason bits, as in nvml.h. These mean the clocks were held down by the
# power cap, thermals or a hardware slowdown, so a cell that saw them is marked suspect (docs/methodology.md rule 13).
REASON_NAMES = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal",
    0x40: "hw_thermal",
    0x80: "hw_power_brake",
    0x100: "display_clock_setting",
}
SUSPECT_REASONS_MASK = 0x4 | 0x8 | 0x20 | 0x40 | 0x80
CLOCK_SM, CLOCK_MEM = 1, 2  # NVML_CLOCK_SM, NVML_CLOCK_MEM


def reason_names(mask: int | None) -> list[str] | None:
    if mask is None:
        return None
    return [name for bit, name in REASON_NAMES.items() if mask & bit]


def _to_str(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def load_nvml(module: Any = None) -> tuple[Any | None, str | None]:
    """Import and initialise NVML. Returns (module, None), or (None, the reason it is unavailable)."""
    if module is None:
        try:
            import pynvml as module  # nvidia-ml-py
        except ImportError as exc:
            return None, f"pynvml not importable ({exc})"
    try:
        module.nvmlInit()
    except Exception as exc:  # NVMLError subclasses: library not found, driver not loaded, ...
        return None, f"NVML unavailable: {type(exc).__name__}: {exc}"
    try:
        count = module.nvmlDeviceGetCount()
    except Exception as exc:
        return None, f"NVML device count failed: {exc}"
    if count < 1:
        return None, "NVML reports no GPU"
    return module, None


class NvmlDevice:
    """One GPU seen through NVML; every getter returns None where the device does not support it."""

    def __init__(self, nvml: Any, handle: Any, index: int) -> None:
        self.nvml = nvml
        self.handle = handle
        self.index = index
        self._error = getattr(nvml, "NVMLError", Exception)

    @classmethod
    def for_torch_device(cls, nvml: Any, device: Any = None) -> NvmlDevice:
        """The NVML handle of a torch CUDA device, matched by UUID, then PCI bus id, then index.

        Matching by identity, not index, keeps torch and NVML on the same GPU even when
        CUDA_DEVICE_ORDER or CUDA_VISIBLE_DEVICES reorder indices (docs/methodology.md rule 2).
        """
        index = 0
        props = None
        try:
            import torch

            if device is not None and torch.cuda.is_available():
                index = torch.device(device).index or 0
                props = torch.cuda.get_device_properties(index)
        except Exception:
            props = None
        if props is not None:
            uuid = getattr(props, "uuid", None)
            if uuid is not None:
                try:
                    return cls(nvml, nvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}"), index)
                except Exception:
                    pass
            bus = getattr(props, "pci_bus_id", None)
            if bus is not None:
                pci = f"{getattr(props, 'pci_domain_id', 0):08X}:{bus:02X}:{getattr(props, 'pci_device_id', 0):02X}.0"
                try:
                    return cls(nvml, nvml.nvmlDeviceGetHandleByPciBusId(pci), index)
                except Exception:
                    pass
        return cls(nvml, nvml.nvmlDeviceGetHandleByIndex(index), index)

    def call(self, name: str, *args: Any) -> Any:
        fn = getattr(self.nvml, name, None)
        if fn is None:
            return None
        try:
            return fn(self.handle, *args)
        except self._error:
            return None
        except (NotImplementedError, OSError):
            return None

    def memory_used_bytes(self) -> int | None:
        info = self.call("nvmlDeviceGetMemoryInfo")
        return None if info is None else int(info.used)

    def power_w(self) -> float | None:
        mw = self.call("nvmlDeviceGetPowerUsage")
        return None if mw is None else mw / 1000.0

    def utilization_pct(self) -> float | None:
        util = self.call("nvmlDeviceGetUtilizationRates")
        return None if util is None else float(util.gpu)

    def clocks_mhz(self) -> tuple[int | None, int | None]:
        return self.call("nvmlDeviceGetClockInfo", CLOCK_SM), self.call("nvmlDeviceGetClockInfo", CLOCK_MEM)

    def throttle_mask(self) -> int | None:
        mask = self.call("nvmlDeviceGetCurrentClocksEventReasons")
        if mask is None:
            mask = self.call("nvmlDeviceGetCurrentClocksThrottleReasons")
        return None if mask is None else int(mask)

    def temperature_c(self) -> int | None:
        return self.call("nvmlDeviceGetTemperature", 0)  # NVML_TEMPERATURE_GPU

    def energy_mj(self) -> int | None:
        """Total energy since driver load, in millijoules (Volta or newer)."""
        value = self.call("nvmlDeviceGetTotalEnergyConsumption")
        return None if value is None else int(value)

    def processes(self) -> list[tuple[int, int | None]] | None:
        """(pid, used GPU memory bytes or None) of compute processes, or None if NVML cannot list them."""
        procs = self.call("nvmlDeviceGetComputeRunningProcesses")
        if procs is None:
            return None
        out = []
        for p in procs:
            mem = getattr(p, "usedGpuMemory", None)
            out.append((int(p.pid), None if mem is None else int(mem)))
        return out

    def process_memory_bytes(self, pid: int | None = None) -> int | None:
        """GPU memory of our process; None (not 0) when NVML cannot see our PID (containers)."""
        pid = os.getpid() if pid is None else pid
        procs = self.processes()
        if procs is None:
            return None
        for p, mem in procs:
            if p == pid:
                return mem
        return None

    def state(self) -> dict[str, Any]:
        sm, mem = self.clocks_mhz()
        mask = self.throttle_mask()
        return {
            "temperature_c": self.temperature_c(),
            "sm_clock_mhz": sm,
            "mem_clock_mhz": mem,
            "power_w": self.power_w(),
            "throttle_reasons": mask,
            "throttle_reason_names": reason_names(mask),
        }

    def sample(self) -> dict[str, Any]:
        sm, mem = self.clocks_mhz()
        return {
            "t": time.perf_counter(),
            "memory_used_bytes": self.memory_used_bytes(),
            "process_memory_bytes": self.process_memory_bytes(),
            "utilization_pct": self.utilization_pct(),
            "power_w": self.power_w(),
            "sm_clock_mhz": sm,
            "mem_clock_mhz": mem,
            "throttle_reasons": self.throttle_mask(),
        }


def _max(values: list[Any]) -> Any:
    vals = [v for v in values if v is not None]
    return max(vals) if vals else None


def _min(values: list[Any]) -> Any:
    vals = [v for v in values if v is not None]
    return min(vals) if vals else None


def _mean(values: list[Any]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


class NvmlSampler:
    """Polls an NvmlDevice every `interval_s` (<= 10 ms) in a thread while the `with` block runs.

    Never use it during a timing pass: polling competes with the measured work (docs/methodology.md rule 8).
    """

    def __init__(self, device: NvmlDevice, interval_s: float = 0.005) -> None:
        if interval_s > 0.010:
            raise ValueError(f"NVML polling interval must be <= 10 ms, got {interval_s * 1e3:g} ms")
        self.device = device
        self.interval_s = interval_s
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.device.sample())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> NvmlSampler:
        self.samples.append(self.device.sample())
        self._thread = threading.Thread(target=self._run, name="repbench-nvml", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.samples.append(self.device.sample())

    def summary(self) -> dict[str, Any]:
        s = self.samples
        col = lambda key: [x[key] for x in s]  # noqa: E731
        masks = [m for m in col("throttle_reasons") if m is not None]
        mask = None
        if masks:
            mask = 0
            for m in masks:
                mask |= m
        return {
            "nvml_samples": len(s),
            "nvml_interval_s": self.interval_s,
            "nvml_memory_used_peak_bytes": _max(col("memory_used_bytes")),
            "nvml_process_memory_peak_bytes": _max(col("process_memory_bytes")),
            "gpu_utilization_mean_pct": _mean(col("utilization_pct")),
            "gpu_utilization_max_pct": _max(col("utilization_pct")),
            "power_mean_w": _mean(col("power_w")),
            "power_max_w": _max(col("power_w")),
            "sm_clock_min_mhz": _min(col("sm_clock_mhz")),
            "sm_clock_max_mhz": _max(col("sm_clock_mhz")),
            "mem_clock_min_mhz": _min(col("mem_clock_mhz")),
            "mem_clock_max_mhz": _max(col("mem_clock_mhz")),
            "throttle_reasons": mask,
            "throttle_reason_names": reason_names(mask),
            "throttle_suspect": None if mask is None else bool(mask & SUSPECT_REASONS_MASK),
        }


def measure_energy(
    device: NvmlDevice,
    fn: Callable[[], Any],
    sync: Callable[[], None] = lambda: None,
    min_window_s: float = 0.1,
    max_iterations: int = 1_000_000,
    min_span_s: float = 1.0,
    min_ticks: int = 10,
    max_wait_s: float = 30.0,
) -> dict[str, Any]:
    """Energy per call from total-energy counter deltas over a window between two counter ticks.

    The counter only moves every 20-100 ms, so a window's ends are aligned to its updates: the workload
    runs until the counter ticks (the window opens on that reading), then until the window has lasted
    `min_window_s` and either `min_span_s` seconds or `min_ticks` ticks, and closes on the next tick.
    The counter is read between calls (host reads, no device sync); the calls issued between the
    opening and the closing tick are the window's iterations. Returns nulls if the counter is not
    supported, and says so when it does not move within `max_wait_s`.
    """
    if min_window_s < 0.1:
        raise ValueError(f"energy window must be >= 100 ms, got {min_window_s * 1e3:g} ms")
    sync()
    last = device.energy_mj()
    if last is None:
        return {"energy_j_per_iter": None, "energy_window_s": None, "energy_iterations": 0,
                "energy_note": "nvmlDeviceGetTotalEnergyConsumption not supported on this GPU"}
    t_wait = time.perf_counter()
    e0 = None
    while e0 is None:  # the window opens on a tick, with the workload already running
        fn()
        now = device.energy_mj()
        if now is not None and now != last:
            e0 = now
        elif time.perf_counter() - t_wait > max_wait_s:
            return {"energy_j_per_iter": None, "energy_window_s": None, "energy_iterations": 0,
                    "energy_note": f"energy counter did not move within {max_wait_s:g} s"}
    t0 = time.perf_counter()
    n = ticks = 0
    last = e0
    while True:
        fn()
        n += 1
        now = device.energy_mj()
        if now is None or now < last:
            return {"energy_j_per_iter": None, "energy_window_s": time.perf_counter() - t0, "energy_iterations": n,
                    "energy_note": "energy counter unreadable or went backwards during the window"}
        elapsed = time.perf_counter() - t0
        if now != last:
            ticks += 1
            last = now
            if elapsed >= min_window_s and (elapsed >= min_span_s or ticks >= min_ticks):
                break
        if n >= max_iterations or elapsed > max_wait_s + min_span_s:
            return {"energy_j_per_iter": None, "energy_window_s": elapsed, "energy_iterations": n,
                    "energy_note": f"energy window did not close on a counter tick ({ticks} ticks in {elapsed:.1f} s)"}
    sync()
    return {
        "energy_j_per_iter": (last - e0) / 1000.0 / n,
        "energy_window_s": time.perf_counter() - t0,
        "energy_iterations": n,
        "energy_ticks": ticks,
        "energy_note": None,
    }


_warned: set[str] = set()


def warn_once(reason: str) -> None:
    """State a telemetry fallback reason once per process, not once per cell."""
    if reason not in _warned:
        _warned.add(reason)
        warnings.warn(f"repbench telemetry: {reason}", RuntimeWarning, stacklevel=2)


def open_telemetry(device: Any, module: Any = None) -> tuple[NvmlDevice | None, str | None]:
    """NVML telemetry for a torch device, or (None, why not) -- the fallback is CPU telemetry.

    The reason is warned once and meant to be stored with the results (`telemetry_note`).
    """
    import torch

    dev = torch.device(device)
    nvml, reason = load_nvml(module)
    fallback = "falling back to CPU telemetry (peak RSS, CPU time); GPU memory, power and energy are null"
    if dev.type != "cuda":
        if nvml is None:
            note = f"device is {dev.type}; {reason}; {fallback}"
        else:
            note = f"device is {dev.type}: NVML is present but not sampled for a CPU run; {fallback}"
        warn_once(note)
        return None, note
    if nvml is None:
        note = f"{reason}; {fallback}"
        warn_once(note)
        return None, note
    try:
        handle = NvmlDevice.for_torch_device(nvml, dev)
    except Exception as exc:
        note = f"no NVML handle for {dev}: {exc}; {fallback}"
        warn_once(note)
        return None, note
    procs = handle.processes()
    foreign = None if procs is None else sorted(p for p, _ in procs if p != os.getpid())
    if foreign:
        # docs/methodology.md rule 12: other work on the GPU corrupts latency; warn rather than refuse (shared CI runners).
        warn_once(f"foreign processes on the benchmark GPU: {foreign}; results may be perturbed")
        return handle, f"foreign GPU processes present: {foreign}"
    return handle, None
