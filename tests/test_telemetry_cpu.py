"""CPU telemetry: peak RSS over a region (kernel high-water mark or polling) and CPU time."""

from __future__ import annotations

import time

import numpy as np
import pytest

from repbench.telemetry import cpu
from repbench.telemetry.timers import spin

MB = 1 << 20


def _allocate_and_free(nbytes: int, hold_s: float) -> None:
    a = np.ones(nbytes // 8)  # np.ones writes every page, so they are resident
    time.sleep(hold_s)
    del a


@pytest.mark.parametrize("method", ["hwm", "poll"])
def test_peak_rss_sees_a_freed_allocation(monkeypatch, method):
    if method == "poll":
        monkeypatch.setattr(cpu, "reset_hwm", lambda: False)
    elif not cpu.reset_hwm():
        pytest.skip("this kernel/sandbox does not allow resetting VmHWM via /proc/self/clear_refs")
    with cpu.PeakRSS(interval_s=0.002) as p:
        _allocate_and_free(200 * MB, hold_s=0.05)
    r = p.result
    assert r["peak_rss_bytes"] - r["rss_before_bytes"] >= 190 * MB
    assert cpu.current_rss_bytes() < r["peak_rss_bytes"] - 150 * MB  # it was freed: a true peak
    assert r["rss_method"] == ("vmhwm_reset" if method == "hwm" else "poll_2ms")


def test_cpu_time_of_a_busy_wait():
    with cpu.CpuTime() as ct:
        spin(0.05)
    assert ct.wall_s >= 0.05
    # A spin burns CPU while it runs; on a shared machine it may be descheduled, never over-counted.
    assert 0 < ct.cpu_time_s <= ct.wall_s * 1.05 + 0.005
    with cpu.CpuTime() as idle:
        time.sleep(0.05)
    assert idle.cpu_time_s < 0.02
