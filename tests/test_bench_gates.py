"""Benchmarks report, gates gate: `pytest bench/` records goals and never fails on a ratio unless asked.

- goal checks, the summary and the progress ETA against hand-computed values;
- the closing K table prints a ratio only where neither cell is flagged noisy;
- end to end (subprocesses): a planted slow encoder (200 ms of CPU per call on top of its work) is flagged MISSED and
  the run exits 0; with --repbench-gate the same run exits 1; and `pytest bench/` on a shrunken grid
  under artificial load (one bounded busy-loop process per core, started and stopped here) exits 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from child_env import child_env

from repbench.benchmarking.goals import GoalCheck, summary_lines
from repbench.benchmarking.latency import format_relative_table, relative_latency_table
from repbench.benchmarking.progress import CellProgress

ROOT = Path(__file__).resolve().parents[1]


def test_goal_met_and_missed_with_slack():
    assert GoalCheck("a", "ratio", 1.14, 1.05, slack=0.10).met
    assert not GoalCheck("a", "ratio", 1.1699, 1.05, slack=0.10).met  # the failing reading
    assert not GoalCheck("a", "ratio", float("nan"), 1.05).met
    line = GoalCheck("cell", "cpu_min ratio", 1.1699, 1.05, slack=0.1, load_average=9.0).line()
    assert line.startswith("MISSED") and "1.170" in line and "goal <= 1.05 + slack 0.1" in line and "load 9.0" in line


def test_summary_counts_and_names_the_load():
    checks = [GoalCheck("a", "r", 0.9, 1.0, load_average=3.0), GoalCheck("b", "r", 1.3, 1.0, load_average=5.0)]
    lines = summary_lines(checks, gated=False, cores=2)
    assert "1 met / 1 missed of 2 goals" in lines[-2] and "--repbench-gate" in lines[-2]
    assert "load average reached 5.0 on 2 cores" in lines[-1]
    assert summary_lines(checks[:1], gated=True, cores=2)[-1] == "1 met / 0 missed of 1 goals"


def test_progress_eta_per_group():
    p = CellProgress(["a", "a", "a", "b", "b"])
    p.finished("a", 10.0)
    # 2 more 'a' cells at 10 s each, 2 'b' cells at the overall mean (10 s): 40 s
    assert p.eta_s() == pytest.approx(40.0)
    p.finished("b", 2.0)
    # 'a': 2 x 10 s, 'b': 1 x 2 s
    assert p.eta_s() == pytest.approx(22.0)
    assert p.line().startswith("repbench: 2/5 cells (40%), 0m12s elapsed") and p.line().endswith("ETA 0m22s")


def _cell(k: int, median_s: float, flag: str) -> dict:
    return {"family": "ar", "backbone": "tiny-ar", "encoder": "sequential", "input_tokens": 32, "batch_size": 1,
            "k": k, "median_s": median_s, "flag": flag}


def test_relative_table_shows_ratios_only_for_quiet_cells():
    rows = relative_latency_table([_cell(1, 0.010, "ok"), _cell(2, 0.020, "ok"), _cell(4, 0.0005, "noisy")])
    text = format_relative_table(rows)
    line = text.splitlines()[-1].split()
    assert line[-3:] == ["1.00", "2.00", "noisy"]  # K=4's 0.05 is noise, not a result
    rows = relative_latency_table([_cell(1, 0.010, "invalid"), _cell(2, 0.020, "ok")])
    assert format_relative_table(rows).splitlines()[-1].split()[-2:] == ["invalid", "invalid"]


PLANTED = '''
import time

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    for item in items:
        mod = getattr(item, "module", None)
        if mod is None or not mod.__name__.endswith("test_encoder_overhead") or getattr(mod, "_planted", False):
            continue
        real = mod.encode_ids

        def slow(*args, **kwargs):
            start = time.process_time()
            while time.process_time() - start < 0.2:  # 200 ms of CPU on top of a ~1 ms tiny forward
                pass
            return real(*args, **kwargs)

        mod.encode_ids = slow
        mod._planted = True
'''

SMALL_ENV = {
    "REPBENCH_OVERHEAD_BACKBONES": "tiny-ar", "REPBENCH_OVERHEAD_PARALLEL_BACKBONE": "tiny-diffusion",
    "REPBENCH_OVERHEAD_CELLS": "4x1", "REPBENCH_OVERHEAD_ROUNDS": "3", "REPBENCH_EVAL_BENCH": "300x100",
    "REPBENCH_SCALE_SIZES": "1000,2000", "REPBENCH_RAY_BENCH_N": "200", "REPBENCH_RAY_BENCH_ROUNDS": "1",
    # The search-kernel, eval-memory, eval-run and start-up benchmarks at small sizes: this test checks that a
    # loaded run reports and exits 0, not the numbers (their defaults take minutes each by design).
    "REPBENCH_KERNEL_N": "2000", "REPBENCH_KERNEL_ROUNDS": "3", "REPBENCH_EVAL_SIZES": "300,600",
    "REPBENCH_EVAL_BACKBONES": "tiny-ar", "REPBENCH_EVAL_RUN_BENCH": "200x200", "REPBENCH_EVAL_RUN_ROUNDS": "3",
    "REPBENCH_HELP_ROUNDS": "2",
    "HF_HUB_OFFLINE": "1",
    # One torch thread: under load, idle OpenMP threads spin and bill CPU time to the bare forward too.
    "OMP_NUM_THREADS": "1",
}
SMALL_GRID = ["--backbones", "tiny-ar,tiny-diffusion", "--k", "1,4", "--input-tokens", "32", "--warmup", "2",
              "--min-rounds", "5", "--min-time", "0.05", "--max-time", "0.3", "--search-sizes", "1000",
              "--search-kp", "1", "--search-batch", "1"]


def _pytest_bench(tmp_path: Path, args: list[str], planted: bool, timeout: int) -> subprocess.CompletedProcess:
    env = child_env(**SMALL_ENV)
    if planted:
        (tmp_path / "planted_slow.py").write_text(PLANTED, encoding="utf-8")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
        args = ["-p", "planted_slow", *args]
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-s", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_gate_fails_a_planted_slow_encoder(tmp_path):
    # Without the gate the same planted encoder is flagged and the run exits 0: the load test below.
    target = "bench/test_encoder_overhead.py::test_parallel_encoder_over_bare_forward"
    gated = _pytest_bench(tmp_path, [target, "--repbench-gate"], planted=True, timeout=900)
    assert gated.returncode == 1, gated.stdout[-3000:] + gated.stderr[-3000:]
    assert "goal missed under --repbench-gate: MISSED test_parallel_encoder_over_bare_forward[K4-B1]" in gated.stdout


def _busy_loops(seconds: float) -> list[subprocess.Popen]:
    # Each loop ends by itself after `seconds` even if this test is killed: the load is bounded.
    code = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(os.cpu_count() or 1)]


@pytest.mark.slow
def test_pytest_bench_under_artificial_load_reports_and_exits_0(tmp_path):
    loops = _busy_loops(900)
    try:
        time.sleep(2)
        run = _pytest_bench(tmp_path, ["bench/", *SMALL_GRID, "--benchmark-json", str(tmp_path / "out.json")],
                            planted=True, timeout=900)
    finally:
        for p in loops:
            p.kill()
        for p in loops:
            p.wait()
    out = run.stdout
    assert run.returncode == 0, out[-4000:] + run.stderr[-3000:]
    assert "repbench: goals (measured value vs goal; lower is better)" in out
    assert "MISSED test_parallel_encoder_over_bare_forward[K4-B1]" in out  # the planted one, flagged
    assert "(recorded, not gated: pass --repbench-gate to fail on a missed goal)" in out
    assert "repbench: encoding latency at each K relative to K=1" in out
    assert "ETA" in out
