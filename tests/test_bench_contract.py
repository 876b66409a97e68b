"""End to end: `pytest bench/ --benchmark-json` on a small grid writes the contract of docs/contracts.md.

Runs the real harness (tiny backbones, real search) in a subprocess with a reduced grid, then checks
every field against values recomputed here from the raw samples.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from child_env import child_env

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = ("backbone", "family", "encoder", "k", "input_tokens", "batch_size", "device", "dtype", "attn",
            "peak_memory_bytes", "tokens_per_s", "queries_per_s", "energy_j_per_query", "samples_s")


@pytest.fixture(scope="module")
def bench_json(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "out.json"
    cmd = [sys.executable, "-m", "pytest", "bench/test_encode_latency.py", "bench/test_search_latency.py",
           "-q", "-p", "no:cacheprovider", "--benchmark-json", str(out),
           "--backbones", "tiny-ar,tiny-diffusion", "--k", "1,3", "--input-tokens", "16", "--batch-size", "2",
           "--warmup", "1", "--min-rounds", "3", "--min-time", "0", "--max-time", "0.5",
           "--search-sizes", "300,5000000", "--search-kp", "2", "--search-batch", "1",
           "--search-max-gib", "0.05"]
    env = child_env(HF_HUB_OFFLINE="1")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    data = json.loads(out.read_text())
    data["_stdout"] = proc.stdout
    return data


def _by_encoder(data: dict, encoder: str) -> list[dict]:
    return [b for b in data["benchmarks"] if b["extra_info"]["encoder"] == encoder]


def test_every_cell_has_the_contract_fields(bench_json):
    benches = bench_json["benchmarks"]
    assert len(benches) == 4 + 3 + 3  # 2 backbones x 2 K; dense/maxsim/sparse at N=300; 3 skipped at 5M
    for b in benches:
        e = b["extra_info"]
        for key in REQUIRED:
            assert key in e, (b["name"], key)
        assert e["device"] == "cpu" and e["energy_j_per_query"] is None  # no energy on CPU: null, not 0
        if e["status"] == "skipped":
            assert e["reason"] and e["samples_s"] == []
            # issue 10: no timing, but a stats block pytest-benchmark compare accepts (was null)
            assert b["group"] == "skipped" and b["stats"]["rounds"] == 0 and b["stats"]["median"] != b["stats"]["median"]
            continue
        assert e["status"] == "ok"
        s = e["samples_s"]
        assert isinstance(s, list) and len(s) == b["stats"]["rounds"] >= 3
        assert all(isinstance(x, float) and x > 0 for x in s)
        med = float(np.median(s))
        assert e["stats"]["median"] == pytest.approx(med)
        assert e["queries_per_s"] == pytest.approx(e["batch_size"] / med)
        assert isinstance(e["peak_memory_bytes"], int) and e["peak_memory_bytes"] > 0
        assert e["telemetry_note"] and "CPU telemetry" in e["telemetry_note"]


def test_encode_cells(bench_json):
    enc = [b for b in bench_json["benchmarks"] if b["extra_info"]["family"] is not None]
    # interleaved: AR and diffusion alternate in execution order
    assert [b["extra_info"]["family"] for b in enc] == ["ar", "diffusion", "ar", "diffusion"]
    for b in enc:
        e = b["extra_info"]
        assert e["encoder"] == {"ar": "sequential", "diffusion": "parallel"}[e["family"]]
        assert e["batch_size"] == 2 and e["input_tokens"] == 16 and e["k"] in (1, 3)
        assert e["tokens_per_s"] == pytest.approx(2 * 16 / np.median(e["samples_s"]))
        assert e["model_input_tokens"] > e["input_tokens"]  # prompt around the text
        assert e["cold_start"]["load_s"] > 0 and e["cold_start"]["first_call_s"] > 0
        assert e["cold_start"]["weights"]["generator"] == "cpu"  # tiny pair: the CPU draw on every device
        # which forward was timed is named per cell (never a silent change of what is timed)
        assert e["forward_path"].startswith("read-columns (Qwen2Model adapter, transformers ")
        # model-only time (first to last forward mark) next to end-to-end, per iteration
        assert len(e["model_s"]) == len(e["samples_s"])
        assert all(0 < m < t for m, t in zip(e["model_s"], e["samples_s"], strict=True))
        if e["encoder"] == "sequential":
            # exactly K tokens: one read after the prefill, K-1 decode steps
            assert len(e["prefill_s"]) == len(e["decode_step_s"]) == len(e["samples_s"])
            assert all(len(steps) == e["k"] - 1 for steps in e["decode_step_s"])
            for total, pre, steps, tail in zip(e["samples_s"], e["prefill_s"], e["decode_step_s"], e["tail_s"],
                                               strict=True):
                assert pre + sum(steps) + tail == pytest.approx(total, rel=1e-6)
        else:
            assert "decode_step_s" not in e


def test_search_cells_and_skips(bench_json):
    ok = [b for b in bench_json["benchmarks"] if b["extra_info"]["encoder"].startswith("search:")
          and b["extra_info"]["status"] == "ok"]
    assert {b["extra_info"]["encoder"] for b in ok} == {"search:dense", "search:maxsim", "search:sparse"}
    for b in ok:
        e = b["extra_info"]
        assert e["index_size"] == 300 and e["query_batch"] == 1 and e["dim"] == 64  # tiny hidden size
        assert e["mode"] in ("single_dense", "multi_dense", "sparse_max")
        assert e["k_p"] == (2 if e["encoder"] == "search:maxsim" else 1)
        assert e["ms_per_query"] == pytest.approx(np.median(e["samples_s"]) * 1e3)
    skipped = [b for b in bench_json["benchmarks"] if b["extra_info"]["status"] == "skipped"]
    assert {b["extra_info"]["index_size"] for b in skipped} == {5_000_000}
    assert all("memory cap" in b["extra_info"]["reason"] for b in skipped)


def test_machine_info_and_summary(bench_json):
    hdr = bench_json["machine_info"]["repbench"]
    for key in ("schema_version", "kind", "git", "created_utc", "config", "environment"):
        assert key in hdr
    assert hdr["kind"] == "latency" and hdr["config"]["k"] == [1, 3] and hdr["config"]["attn"] == "sdpa"
    assert hdr["environment"]["gpu"] is None and hdr["environment"]["cpu"]["logical_cores"] >= 1
    assert set(hdr["cold_start"]) == {"tiny-ar", "tiny-diffusion"}
    out = bench_json["_stdout"]
    assert "relative to K=1" in out and "tiny-ar" in out and "x K=3" in out
