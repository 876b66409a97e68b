"""CPU-side telemetry: peak resident memory over a region, and process CPU time.

Peak RSS of a region: on Linux the kernel's high-water mark (VmHWM) can be reset by writing "5" to
/proc/self/clear_refs, which is exact and needs no polling. Where that is not allowed, a thread polls
RSS every few milliseconds (it may miss a spike shorter than the interval, so the method is stated).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import psutil

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def load_average() -> float | None:
    """The 1-minute system load average (runnable + uninterruptible tasks), or None where the OS has none.

    Recorded around each benchmark cell: a load above the core count means other processes competed for
    the CPU, which shows up as run-to-run drift that no within-cell CI covers.
    """
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):
        return None


def current_rss_bytes() -> int:
    return int(psutil.Process().memory_info().rss)


def read_hwm_bytes() -> int | None:
    """The process's peak RSS since start or since the last reset (VmHWM), or None if unavailable."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                value, unit = line.split(":", 1)[1].split()
                if unit.lower() != "kb":
                    return None
                return int(value) * 1024
    except (OSError, ValueError):
        return None
    return None


def reset_hwm() -> bool:
    """Reset VmHWM to the current RSS; False where the kernel or the sandbox does not allow it."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    hwm, rss = read_hwm_bytes(), current_rss_bytes()
    # After a reset the mark is close to the current RSS; if it is far above, the reset did not happen.
    return hwm is not None and hwm <= rss * 1.05 + (1 << 20)


class PeakRSS:
    """Context manager: peak RSS bytes of this process over the `with` block, plus CPU time and wall.

    result (after exit): peak_rss_bytes, rss_before_bytes, cpu_time_s, wall_s, rss_method.
    """

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self.result: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._peak = 0
        self._use_hwm = False

    def _poll(self) -> None:
        proc = psutil.Process()
        while not self._stop.is_set():
            self._peak = max(self._peak, int(proc.memory_info().rss))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakRSS:
        self._before = current_rss_bytes()
        self._use_hwm = reset_hwm()
        if not self._use_hwm:
            self._peak = self._before
            self._thread = threading.Thread(target=self._poll, name="repbench-rss", daemon=True)
            self._thread.start()
        self._cpu0, self._wall0 = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        cpu, wall = time.process_time() - self._cpu0, time.perf_counter() - self._wall0
        if self._use_hwm:
            peak = read_hwm_bytes()
            method = "vmhwm_reset"
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            peak = max(self._peak, current_rss_bytes())
            method = f"poll_{self.interval_s * 1e3:g}ms"
        self.result = {
            "peak_rss_bytes": peak,
            "rss_before_bytes": self._before,
            "cpu_time_s": cpu,
            "wall_s": wall,
            "rss_method": method,
        }


class CpuTime:
    """Context manager: process CPU seconds (all threads, user + system) and wall seconds of a block."""

    def __enter__(self) -> CpuTime:
        self._cpu0, self._wall0 = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu_time_s = time.process_time() - self._cpu0
        self.wall_s = time.perf_counter() - self._wall0
