"""The harness records the machine's 1-minute load average before and after each cell (extra_info)."""

from __future__ import annotations

import os

from repbench.benchmarking.harness import CellMeasurement, CellPlan
from repbench.telemetry.cpu import load_average


def test_cell_fields_carry_the_load_read_before_warmup_and_after_the_last_pass(monkeypatch):
    readings = iter([(1.25, 0.5, 0.5), (3.5, 1.0, 1.0)])
    monkeypatch.setattr(os, "getloadavg", lambda: next(readings))
    calls = []
    m = CellMeasurement(lambda cb: calls.append(1), "cpu",
                        CellPlan(warmup=2, min_rounds=3, min_time_s=0.0, memory_iterations=1))
    m.run()
    fields = m.fields(batch_size=1, tokens_per_query=None)
    assert fields["load_avg_before"] == 1.25 and fields["load_avg_after"] == 3.5
    assert len(calls) == 2 + 3 + 1  # warm-up, timed rounds, memory pass: the load is read outside them


def test_no_load_average_is_null_not_zero(monkeypatch):
    def unsupported():
        raise OSError("getloadavg unavailable")

    monkeypatch.setattr(os, "getloadavg", unsupported)
    assert load_average() is None
