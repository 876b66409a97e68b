"""The CPU timers against the real clock: busy-wait workloads of known duration.

A busy-wait can never finish early, and a preemption near its end only makes it longer, so the fastest of
several repetitions is the undisturbed one. Its ratio to the nominal duration is recorded as a goal
(<= 1.05; flagged, not failed, unless --repbench-gate): on a loaded machine it is a measurement of the load.
The arithmetic itself is tested exactly on a fake clock (tests/test_telemetry_timers.py).
"""

from __future__ import annotations

import os

from repbench.telemetry.timers import IterationTimer, spin, step_breakdown, time_blocked

ROUNDS = 15


def test_iteration_and_step_timers_against_busy_waits(benchmark, goal):
    timer = IterationTimer("cpu")

    def sequential_like(cb):
        spin(0.004)
        cb("prefill", 0)
        for j in range(1, 4):
            spin(0.002)
            cb("decode", j)
        spin(0.001)

    benchmark.pedantic(lambda: timer.time_call(sequential_like, timer.mark), rounds=ROUNDS, iterations=1)
    parts = [step_breakdown(r) for r in timer.records()]
    undershoot = min(min(p["prefill_s"] for p in parts) / 0.004, min(p["tail_s"] for p in parts) / 0.001)
    ratios = {
        "iteration": min(r.seconds for r in timer.records()) / 0.011,
        "prefill": min(p["prefill_s"] for p in parts) / 0.004,
        "decode step": min(min(p["decode_step_s"]) for p in parts) / 0.002,
        "tail": min(p["tail_s"] for p in parts) / 0.001,
    }
    per_iter, n = time_blocked(lambda: spin(100e-6), "cpu", blocks=ROUNDS, min_block_s=2e-3)
    ratios["blocked 100 us"] = min(per_iter) / 100e-6
    benchmark.extra_info.update({
        "encoder": "telemetry:timers", "device": "cpu", "samples_s": [r.seconds for r in timer.records()],
        "min_over_nominal": ratios, "block_n": n, "load_average_1m": os.getloadavg()[0],
    })
    assert undershoot >= 0.999, "a busy-wait cannot finish early: the timer subtracts the wrong reads"
    for what, ratio in ratios.items():
        goal(f"{what}: fastest / nominal", ratio, 1.05)
