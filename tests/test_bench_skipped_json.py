"""A bench JSON holding a skipped cell: pytest-benchmark's own loader and `compare` accept it, and the
repbench readers (report, baselines/compare) still see the cell as skipped."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from repbench.benchmarking.harness import CellPlan
from repbench.benchmarking.session import BenchSession
from repbench.telemetry.environment import result_header

OK_NAME = "test_encode_latency[tiny-ar-sequential-k4-n16-b1]"
SKIP_NAME = "search-dense-n5000000-d64-kp1-b1"
SAMPLES = [0.010, 0.012, 0.011]


def _ok_cell() -> dict:
    # stats as pytest-benchmark writes them, hand-computed from SAMPLES
    stats = {"min": 0.010, "max": 0.012, "mean": 0.011, "stddev": 0.001, "rounds": 3, "median": 0.011,
             "iqr": 0.001, "q1": 0.0105, "q3": 0.0115, "iqr_outliers": 0, "stddev_outliers": 0,
             "outliers": "0;0", "ld15iqr": 0.010, "hd15iqr": 0.012, "ops": 1 / 0.011, "total": 0.033,
             "iterations": 1}
    info = {"backbone": "tiny-ar", "family": "ar", "encoder": "sequential", "k": 4, "input_tokens": 16,
            "batch_size": 1, "device": "cpu", "dtype": "float32", "attn": "sdpa", "status": "ok",
            "peak_memory_bytes": 1000, "tokens_per_s": 16 / 0.011, "queries_per_s": 1 / 0.011,
            "energy_j_per_query": None, "samples_s": SAMPLES}
    return {"group": None, "name": OK_NAME, "fullname": f"bench/test_encode_latency.py::{OK_NAME}",
            "params": {"encode_cell": "x"}, "param": "x", "extra_info": info, "options": {}, "stats": stats}


def _skipped_cell() -> dict:
    ctx = BenchSession(device=torch.device("cpu"), dtype="float32", attn="sdpa", plan=CellPlan())
    info = {"backbone": None, "family": None, "encoder": "search:dense", "k": 1, "input_tokens": None,
            "batch_size": 1, "index_size": 5_000_000, "k_p": 1, "mode": "single_dense", "query_batch": 1,
            **ctx.base_info()}
    ctx.skip(SKIP_NAME, info, "index needs 2.4 GiB, over the memory cap of 0.05 GiB")
    (skipped,) = ctx.skipped
    return skipped.as_benchmark()


@pytest.fixture
def bench_file(tmp_path):
    machine = {"node": "x", "processor": "x", "machine": "x86_64", "python_compiler": "x",
               "python_implementation": "CPython", "python_implementation_version": "3.11",
               "python_version": "3.11", "python_build": ["x", "x"], "release": "x", "system": "Linux",
               "cpu": {}, "repbench": result_header({"k": [4]}, kind="latency")}
    data = {"machine_info": machine, "commit_info": {"id": "0" * 40, "dirty": False},
            "benchmarks": [_ok_cell(), _skipped_cell()], "datetime": "2026-01-01T00:00:00+00:00",
            "version": "5.0.0"}
    path = tmp_path / "results" / "bench.json"
    path.parent.mkdir()
    path.write_text(json.dumps(data, indent=2))
    return path


def _compare(path) -> str:
    proc = subprocess.run([sys.executable, "-m", "pytest_benchmark", "compare", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


def test_pytest_benchmark_loader_and_compare_accept_a_skipped_cell(bench_file):
    from pytest_benchmark.logger import Logger
    from pytest_benchmark.storage.file import FileStorage

    storage = FileStorage(bench_file.parent, default_machine_id="x", logger=Logger(level=Logger.QUIET))
    loaded = list(storage.load_benchmarks(str(bench_file)))
    assert [b["name"] for b in loaded] == [OK_NAME, SKIP_NAME]
    assert loaded[1]["rounds"] == 0 and loaded[1]["group"] == "skipped"
    out = _compare(bench_file)
    assert "Failed to load" not in out
    assert OK_NAME in out and SKIP_NAME in out
    assert "11.0000" in out  # the measured cell's median in ms, untouched by the skipped one


def test_the_old_null_stats_form_is_what_compare_rejected(bench_file):
    data = json.loads(bench_file.read_text())
    data["benchmarks"][1]["stats"] = None
    bench_file.write_text(json.dumps(data))
    out = _compare(bench_file)
    assert "Failed to load" in out and OK_NAME not in out  # the whole file was dropped


def test_repbench_readers_still_see_the_cell_as_skipped(bench_file):
    from repbench.report.inputs import bench_table
    from repbench.schema.bench import read_bench

    frame = bench_table(bench_file.parent)
    assert frame.set_index("name")["skipped"].to_dict() == {OK_NAME: False, SKIP_NAME: True}
    cells = read_bench(bench_file).cells.set_index("name")
    assert cells.loc[SKIP_NAME, "status"] == "skipped" and "memory cap" in cells.loc[SKIP_NAME, "reason"]
    assert cells.loc[f"bench/test_encode_latency.py::{OK_NAME}", "status"] == "ok"
