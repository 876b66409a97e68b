"""The demo's latency step runs `pytest bench/...` as a child that must write its JSON: it does so when started from
an xdist worker, and a run that writes nothing is named instead of a report built without latency."""

from __future__ import annotations

import json
import sys

import pytest

from repbench.commands.demo import _run_bench
from repbench.errors import RepbenchError


def _bench_cmd(tmp_path, out):
    test = tmp_path / "test_tiny_bench.py"
    test.write_text("def test_noop(benchmark):\n    benchmark(lambda: None)\n", encoding="utf-8")
    return [sys.executable, "-m", "pytest", str(test), "-q", "-p", "no:cacheprovider", "--benchmark-json", str(out)]


def test_the_child_writes_its_json_even_from_an_xdist_worker(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "4")
    out = tmp_path / "bench.json"
    _run_bench(_bench_cmd(tmp_path, out), out)
    assert [b["name"] for b in json.loads(out.read_text())["benchmarks"]] == ["test_noop"]


def test_a_child_that_writes_nothing_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTEST_ADDOPTS", "--benchmark-disable")
    out = tmp_path / "bench.json"
    with pytest.raises(RepbenchError, match=r"pytest test_tiny_bench\.py exited 0 but wrote no .*bench\.json"):
        _run_bench(_bench_cmd(tmp_path, out), out)
    assert not out.exists()
