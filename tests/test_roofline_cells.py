"""Per-cell floors, MBU and MFU in bench JSONs (analysis.roofline_cells), the stored CPU baseline's, the compare
efficiency ratio and its gate, the report's columns and the paper comparison's floor."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import report_fixtures as fx

from repbench.analysis.paper_latency import compare_with_paper
from repbench.analysis.roofline_cells import annotate_bench, roofline_frame, run_rooflines
from repbench.cli import main
from repbench.schema import ENCODERS
from repbench.schema.bench import read_bench

BASELINE = Path(__file__).resolve().parents[1] / "results" / "baselines" / "cpu-amd-epyc-2t" / "bench.json"


def _encode(obj: dict) -> list[dict]:
    return [b["extra_info"] for b in obj["benchmarks"] if b["extra_info"].get("encoder") in ENCODERS
            and b["extra_info"].get("status") != "skipped"]


def test_annotate_puts_floor_mbu_and_mfu_on_every_measured_encode_cell(tmp_path):
    obj = json.loads(fx.bench_json(tmp_path / "b.json").read_text())
    assert annotate_bench(obj) == len(_encode(obj))
    peaks = fx.PEAKS
    for info in _encode(obj):
        r = info["roofline"]
        assert r["primary"] == "probe" and r["vendor"] is None
        t = float(np.median(info["samples_s"]))
        p = r["probe"]
        # utilisation is bytes (FLOPs) per second over the recorded peaks, by hand
        assert p["mbu"] == pytest.approx(r["bytes"]["total"] / t / peaks["read_bandwidth"])
        assert p["mfu"] == pytest.approx(r["flops"] / t / peaks["matmul_flops"]["float32"])
        # a sum of per-pass maxima: at least the larger whole-call term, at most their sum
        whole = max(r["flops"] / peaks["matmul_flops"]["float32"], r["bytes"]["total"] / peaks["read_bandwidth"])
        assert whole * (1 - 1e-12) <= p["floor_s"] <= p["compute_s"] + p["memory_s"]
        assert r["forwards"] == (info["k"] if info["encoder"] == "sequential" else 1)
    skipped = [b for b in obj["benchmarks"] if b["extra_info"].get("status") == "skipped"]
    assert skipped and all("roofline" not in b["extra_info"] for b in skipped)


def test_a_known_gpu_gets_the_vendor_floor_too(tmp_path):
    samples = [0.015] * 5
    info = {"backbone": "qwen2.5-7b-instruct:random", "family": "ar", "encoder": "parallel", "k": 4,
            "input_tokens": 128, "batch_size": 1, "device": "cuda:0", "dtype": "bfloat16",
            "model_input_tokens": 195, "samples_s": samples}
    header = {"schema_version": 1, "peaks": {"device": "cuda:0", "name": "NVIDIA H100 80GB HBM3",
                                             "matmul_flops": {"bfloat16": 7.0e14}, "read_bandwidth": 3.0e12}}
    obj = {"machine_info": {"repbench": header}, "benchmarks": [{"name": "c", "extra_info": info}]}
    annotate_bench(obj)
    r = info["roofline"]
    assert r["primary"] == "vendor" and r["vendor"]["gpu"] == "H100 SXM"
    assert r["vendor"]["floor_s"] * 1e3 == pytest.approx(4.22, rel=0.02)  # issue 21's worked number
    assert r["probe"]["floor_s"] == pytest.approx(r["vendor"]["floor_s"] * 3.35 / 3.0, rel=0.01)  # memory-bound
    assert r["vendor"]["mbu"] == pytest.approx(r["bytes"]["total"] / 0.015 / 3.35e12)


def test_stored_cpu_baseline_records_the_probe_and_every_cell_is_within_the_roofline():
    run = read_bench(BASELINE)
    peaks = run.header["peaks"]
    assert peaks["device"] == "cpu" and peaks["matmul_flops"]["float32"] > 1e9 and peaks["read_bandwidth"] > 1e9
    frame = roofline_frame(run)
    enc = frame[frame["encoder"].isin(ENCODERS)]
    assert len(enc) == 30
    for col in ("probe_mbu", "probe_mfu"):
        values = pd.to_numeric(enc[col], errors="coerce")
        assert values.notna().all() and (values > 0).all() and (values <= 1).all(), col
    stored = [r.get("roofline") for r in run.records if r.get("encoder") in ENCODERS]
    assert all(isinstance(s, dict) for s in stored)  # written into the file, not only computable


def _pair(tmp_path: Path, factor: float) -> tuple[Path, Path]:
    base = fx.bench_json(tmp_path / "base.json")
    obj = json.loads(base.read_text())
    new = copy.deepcopy(obj)
    new["machine_info"]["repbench"]["peaks"]["read_bandwidth"] *= factor
    (tmp_path / "new.json").write_text(json.dumps(new))
    return base, tmp_path / "new.json"


def test_compare_reports_the_efficiency_ratio_and_gates_on_it(tmp_path, capsys):
    base, new = _pair(tmp_path, 2.0)  # same times on twice the bandwidth: half the MBU
    out = tmp_path / "cmp.json"
    assert main(["compare", str(base), str(new), "--json", str(out), "--markdown", str(tmp_path / "c.md"),
                 "--fail-efficiency-below", "60%"]) == 1
    cells = [c for c in json.loads(out.read_text())["latency"]["cells"] if c["encoder"] in ENCODERS]
    assert cells and all(c["efficiency_ratio"] == pytest.approx(0.5) for c in cells)
    assert all(c["mbu_new"] == pytest.approx(c["mbu_base"] / 2) for c in cells)
    md = (tmp_path / "c.md").read_text()
    assert "MBU base -> new" in md and "(x0.50)" in md and "--fail-efficiency-below 60%: **FAILED**" in md
    assert main(["compare", str(base), str(new), "--fail-efficiency-below", "40%"]) == 0
    assert "passed" in capsys.readouterr().out


def test_the_efficiency_gate_needs_a_roofline_on_both_sides(tmp_path, capsys):
    base, new = _pair(tmp_path, 1.0)
    obj = json.loads(new.read_text())
    del obj["machine_info"]["repbench"]["peaks"]
    new.write_text(json.dumps(obj))
    assert main(["compare", str(base), str(new), "--fail-efficiency-below", "0.9"]) == 2
    assert "no matched cell has a roofline" in capsys.readouterr().err


def test_report_latency_table_and_figure_show_the_floor(tmp_path):
    from repbench.report import discover_recipes

    results = tmp_path / "results"
    fx.bench_json(results / "bench" / "out.json")
    recipes = {r.name: r for r in discover_recipes()}
    recipes["tab_latency"].module.run(results, tmp_path / "out")
    md = (tmp_path / "out" / "tables" / "tab_latency.md").read_text()
    assert "floor ms/query" in md and "MBU" in md and "MFU" in md
    paths = recipes["fig_roofline"].module.run(results, tmp_path / "out")
    assert {p.suffix for p in paths} == {".png", ".pdf"}
    caption = (tmp_path / "out" / "figures" / "fig_roofline.caption.txt").read_text()
    assert "floor" in caption and "MBU" in caption and "probe: Fixture CPU" in caption


def test_paper_comparison_gains_the_h100_floor(tmp_path):
    info = {"backbone": "qwen2.5-7b-instruct:random", "family": "ar", "encoder": "sequential", "k": 1,
            "input_tokens": 40, "batch_size": 1, "device": "cpu", "dtype": "float32", "model_input_tokens": 100,
            "samples_s": [0.5, 0.5, 0.5]}
    obj = {"machine_info": {"repbench": {"schema_version": 1}}, "benchmarks": [{"name": "c", "extra_info": info}]}
    (tmp_path / "b.json").write_text(json.dumps(obj))
    paper = pd.DataFrame({"backbone": ["qwen2.5-7b-instruct"], "encoder": ["sequential"], "k": [1],
                          "input_tokens": [40], "latency_ms": [15.5], "source": ["s"]})
    run = read_bench(tmp_path / "b.json")
    assert run_rooflines(run) == [None]  # no peaks recorded: no floor of its own
    row = compare_with_paper(run, paper, None).iloc[0]
    assert np.isnan(row["floor_ms"])
    assert row["h100_floor_ms"] == pytest.approx(4.22, rel=0.02)
    assert row["paper_over_floor"] == pytest.approx(15.5 / row["h100_floor_ms"])
    assert 3.4 <= row["paper_over_floor"] <= 3.8  # the paper's eager overhead, issue 21


def test_add_probe_records_peaks_in_an_existing_json_and_keeps_it_readable(tmp_path):
    from repbench.analysis.roofline_cells import add_probe

    path = fx.bench_json(tmp_path / "b.json")
    obj = json.loads(path.read_text())
    del obj["machine_info"]["repbench"]["peaks"]  # a JSON from before the probe
    path.write_text(json.dumps(obj))
    before = read_bench(path)
    peaks = add_probe(path, repeats=2)
    run = read_bench(path)
    assert run.header["peaks"] == peaks and len(peaks["added"]["probes"]) == 2
    assert peaks["matmul_flops"]["float32"] == max(p["float32"] for p in peaks["added"]["probes"])
    assert set(run.header["architectures"]) == {"tiny-ar", "tiny-diffusion"}
    pd.testing.assert_frame_equal(run.cells.drop(columns="samples_s"), before.cells.drop(columns="samples_s"))
    assert all(isinstance(r.get("roofline"), dict) for r in run.records
               if r.get("encoder") in ENCODERS and not r["skipped"])
