"""`repbench compare` on synthetic bench JSONs: verdicts, the --fail-above gate, refusals, environment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from repbench import SCHEMA_VERSION
from repbench.analysis.compare import (
    bench_environment_warnings,
    compare_latency,
    gate_failures,
    latency_verdict,
)
from repbench.cli import main
from repbench.errors import InputError, RepbenchError
from repbench.schema.bench import read_bench as load_bench
from repbench.stats import ratio_of_medians_ci

CPU_ENV = {"hostname": "h", "os": "Linux", "python": "3.11.9",
           "cpu": {"model": "Test CPU 9000", "logical_cores": 2, "affinity_cores": 2, "torch_threads": 2},
           "packages": {"torch": "2.13.0", "transformers": "5.23.0"}, "gpu": None}


def gpu_env(name: str, driver: str, cuda: str, torch: str) -> dict:
    return {**CPU_ENV, "packages": {"torch": torch, "transformers": "5.23.0"},
            "gpu": {"driver_version": driver, "cuda_driver_version": "12.8", "cuda_runtime_version": cuda,
                    "devices": [{"name": name, "uuid": "GPU-1"}]}}


def cell(samples, backbone="tiny-ar", encoder="sequential", k=4, input_tokens=128, batch_size=1, **extra) -> dict:
    info = {"backbone": backbone, "family": "ar", "encoder": encoder, "k": k, "input_tokens": input_tokens,
            "batch_size": batch_size, "device": "cpu", "dtype": "float32", "attn": "sdpa",
            "samples_s": [float(s) for s in samples], **extra}
    return {"name": f"test_encode[{backbone}-{encoder}-k{k}-L{input_tokens}-B{batch_size}]",
            "fullname": f"bench/test_encode_latency.py::test_encode[{backbone}-{encoder}-k{k}]",
            "stats": {"median": float(np.median(samples)) if len(samples) else None}, "extra_info": info}


def write_bench(path: Path, cells: list[dict], env: dict | None = None, schema: int = SCHEMA_VERSION,
                config: dict | None = None) -> Path:
    header = {"schema_version": schema, "kind": "bench", "repbench_version": "0.1.0",
              "git": {"commit": "a" * 40, "dirty": False}, "created_utc": "2026-01-01T00:00:00+00:00",
              "config": config or {}, "environment": env or CPU_ENV}
    obj = {"machine_info": {"node": "h", "python_version": "3.11.9", "repbench": header},
           "commit_info": {}, "benchmarks": cells, "datetime": "2026-01-01T00:00:00", "version": "5.1.0"}
    path.write_text(json.dumps(obj))
    return path


def reference_ratio_ci(base, new, n_boot=4000, seed=123):
    """A plain-loop percentile bootstrap, written independently of the library's vectorised one."""
    rng = np.random.default_rng(seed)
    ratios = []
    for _ in range(n_boot):
        b = rng.choice(base, size=len(base), replace=True)
        n = rng.choice(new, size=len(new), replace=True)
        ratios.append(np.median(n) / np.median(b))
    return np.percentile(ratios, [2.5, 97.5])


@pytest.fixture
def rng():
    return np.random.default_rng(20240601)


@pytest.fixture
def runs(tmp_path, rng):
    """BASE and NEW with: a 20%-slower low-noise cell, a noisy cell with a small shift, one cell per side
    only, and a cell skipped in NEW."""
    slow_b = rng.normal(0.100, 0.001, 60)
    slow_n = rng.normal(0.120, 0.0012, 60)
    noisy_b = rng.lognormal(np.log(0.05), 0.4, 15)
    noisy_n = rng.lognormal(np.log(0.05 * 1.08), 0.4, 15)
    base = write_bench(tmp_path / "base.json", [
        cell(slow_b, k=4), cell(noisy_b, k=16), cell(rng.normal(0.2, 0.002, 30), k=64),
        cell(rng.normal(0.3, 0.003, 30), k=32)])
    skipped = cell([], k=32)
    skipped["extra_info"].update(status="skipped", reason="OOM")
    new = write_bench(tmp_path / "new.json", [
        cell(slow_n, k=4), cell(noisy_n, k=16), cell(rng.normal(0.2, 0.002, 30), k=8), skipped])
    return base, new, (slow_b, slow_n), (noisy_b, noisy_n)


def test_ratio_ci_matches_plain_bootstrap(rng):
    base = rng.lognormal(np.log(0.1), 0.2, 40)
    new = rng.lognormal(np.log(0.13), 0.2, 40)
    ratio, lo, hi = ratio_of_medians_ci(base, new, n_boot=4000, rng=np.random.default_rng(7))
    assert ratio == pytest.approx(np.median(new) / np.median(base), rel=1e-12)
    ref_lo, ref_hi = reference_ratio_ci(base, new)
    # Two independent Monte Carlo estimates of the same percentiles: agree to well under the CI width.
    width = ref_hi - ref_lo
    assert abs(lo - ref_lo) < 0.1 * width and abs(hi - ref_hi) < 0.1 * width
    assert lo < ratio < hi


def test_verdict_rules():
    assert latency_verdict(1.20, 1.15, 1.25, 0.05) == "slower"
    assert latency_verdict(0.80, 0.75, 0.85, 0.05) == "faster"
    assert latency_verdict(1.20, 0.95, 1.45, 0.05) == "same"     # CI contains 1
    assert latency_verdict(1.04, 1.02, 1.06, 0.05) == "same"     # within tolerance, CI excludes 1
    assert latency_verdict(1.06, 1.02, 1.10, 0.05) == "slower"


def test_gate_needs_ratio_and_ci_lower_bound_beyond_threshold():
    t = pd.DataFrame({"label": ["a", "b", "c", "d"], "verdict": ["slower", "slower", "same", "faster"],
                      "ratio": [1.20, 1.20, 1.30, 0.5], "ci_low": [1.12, 1.06, 0.9, 0.4],
                      "ci_high": [1.3, 1.4, 1.9, 0.6]})
    assert gate_failures(t, 0.10)["label"].tolist() == ["a"]
    assert gate_failures(t, 0.25)["label"].tolist() == []


def test_slower_and_same_cells(runs):
    base, new, (slow_b, slow_n), (noisy_b, noisy_n) = runs
    comp = compare_latency(load_bench(base), load_bench(new), tolerance=0.05, n_boot=4000)
    t = comp.table.set_index("k")
    slow, noisy = t.loc[4], t.loc[16]
    assert slow["ratio"] == pytest.approx(np.median(slow_n) / np.median(slow_b))
    assert 1.17 < slow["ci_low"] < slow["ratio"] < slow["ci_high"] < 1.23
    assert slow["verdict"] == "slower"
    ref_lo, ref_hi = reference_ratio_ci(noisy_b, noisy_n)
    assert ref_lo < 1 < ref_hi  # the fixture's premise, checked independently
    assert noisy["ci_low"] < 1 < noisy["ci_high"]
    assert noisy["verdict"] == "same"
    assert gate_failures(comp.table, 0.10)["k"].tolist() == [4]
    assert comp.only_base == ["tiny-ar/sequential k=64 L=128 B=1"]
    assert comp.only_new == ["tiny-ar/sequential k=8 L=128 B=1"]
    assert comp.skipped == ["tiny-ar/sequential k=32 L=128 B=1: skipped in NEW (OOM)"]


def test_cli_fail_above_trips_on_slow_cell_only(runs, tmp_path, capsys):
    base, new, *_ = runs
    assert main(["compare", str(base), str(new), "--fail-above", "10%", "--n-boot", "2000"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "k=4" in out.split("FAILED")[1]
    assert "only in BASE: tiny-ar/sequential k=64" in out and "only in NEW: tiny-ar/sequential k=8" in out

    # Only the noisy cell: its CI overlaps 1, so the gate passes even at a tiny threshold.
    noisy_only_b = write_bench(tmp_path / "nb.json", [c for c in json.loads(base.read_text())["benchmarks"]
                                                      if c["extra_info"]["k"] == 16])
    noisy_only_n = write_bench(tmp_path / "nn.json", [c for c in json.loads(new.read_text())["benchmarks"]
                                                      if c["extra_info"]["k"] == 16])
    assert main(["compare", str(noisy_only_b), str(noisy_only_n), "--fail-above", "1%", "--n-boot", "2000"]) == 0
    assert "gate --fail-above 1% passed" in capsys.readouterr().out


def test_cli_outputs(runs, tmp_path, capsys):
    base, new, *_ = runs
    md, fig, js = tmp_path / "out" / "c.md", tmp_path / "out" / "c.png", tmp_path / "out" / "c.json"
    assert main(["compare", str(base), str(new), "--markdown", str(md), "--figure", str(fig), "--json", str(js),
                 "--n-boot", "1000"]) == 0
    text = md.read_text()
    assert "| tiny-ar/sequential k=4 L=128 B=1 |" in text and "slower" in text
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    obj = json.loads(js.read_text())
    assert obj["schema_version"] == SCHEMA_VERSION and obj["kind"] == "compare"
    cells = {c["k"]: c for c in obj["latency"]["cells"]}
    assert cells[4]["verdict"] == "slower" and cells[16]["verdict"] == "same"
    assert obj["latency"]["only_base"] and obj["latency"]["only_new"]
    assert not list((tmp_path / "out").glob(".*.tmp"))  # atomic writes leave no temp files


def test_baseline_directory_is_accepted(runs, tmp_path):
    base, new, *_ = runs
    d = tmp_path / "baselines" / "cpu-test-2t"
    d.mkdir(parents=True)
    (d / "bench.json").write_text(base.read_text())
    assert main(["compare", str(d), str(new), "--n-boot", "500"]) == 0


def test_schema_mismatch_refused(tmp_path, rng, capsys):
    old = write_bench(tmp_path / "old.json", [cell(rng.normal(0.1, 0.001, 10))], schema=SCHEMA_VERSION + 1)
    ok = write_bench(tmp_path / "ok.json", [cell(rng.normal(0.1, 0.001, 10))])
    with pytest.raises(RepbenchError, match=r"old\.json.*schema_version"):
        load_bench(old)
    assert main(["compare", str(ok), str(old)]) == 2
    err = capsys.readouterr().err
    assert "old.json" in err and f"schema_version {SCHEMA_VERSION + 1}" in err


@pytest.mark.parametrize("content, message", [
    ({"hello": "world"}, "not a bench JSON"),
    ([1, 2, 3], "not a bench JSON"),
    ({"machine_info": {"node": "x"}, "benchmarks": []}, "machine_info.repbench is missing"),
])
def test_non_bench_json_refused(tmp_path, content, message):
    p = tmp_path / "other.json"
    p.write_text(json.dumps(content))
    with pytest.raises(RepbenchError, match=message) as info:
        load_bench(p)
    assert "other.json" in str(info.value)


def test_invalid_json_names_line(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text('{\n  "benchmarks": [\n  oops\n]}')
    with pytest.raises(InputError) as info:
        load_bench(p)
    assert info.value.line == 3 and "broken.json:3" in str(info.value)


def test_missing_samples_refused(tmp_path):
    c = cell([0.1, 0.2])
    del c["extra_info"]["samples_s"]
    p = write_bench(tmp_path / "nosamples.json", [c])
    with pytest.raises(RepbenchError, match="nosamples.json.*samples_s"):
        load_bench(p)


def test_environment_differences_listed(tmp_path, rng, capsys):
    samples = rng.normal(0.1, 0.001, 20)
    a = write_bench(tmp_path / "a100.json", [cell(samples)], env=gpu_env("NVIDIA A100-SXM4-80GB", "535.104", "12.4",
                                                                         "2.13.0"))
    c = cell(samples)
    c["extra_info"].update(dtype="bfloat16", attn="eager")
    h = write_bench(tmp_path / "h100.json", [c], env=gpu_env("NVIDIA H100 80GB HBM3", "550.54", "12.8", "2.13.1"))
    warnings = bench_environment_warnings(load_bench(a), load_bench(h))
    joined = "\n".join(warnings)
    for expected in ("GPU model differs: NVIDIA A100-SXM4-80GB (BASE) vs NVIDIA H100 80GB HBM3 (NEW)",
                     "GPU driver differs: 535.104 (BASE) vs 550.54 (NEW)", "CUDA differs: 12.4 (BASE) vs 12.8 (NEW)",
                     "torch differs: 2.13.0 (BASE) vs 2.13.1 (NEW)", "dtype differs: float32 (BASE) vs bfloat16 (NEW)",
                     "attention backend differs: sdpa (BASE) vs eager (NEW)"):
        assert expected in joined
    assert "transformers" not in joined and "CPU model" not in joined  # equal facts are not reported
    assert main(["compare", str(a), str(h), "--n-boot", "500"]) == 0
    out = capsys.readouterr().out
    assert out.index("WARNING: GPU model differs") < out.index("latency: ratio")
    # Same environment: nothing to warn about.
    assert bench_environment_warnings(load_bench(a), load_bench(a)) == []


def test_by_backbone_within_one_run(tmp_path, rng):
    ar = rng.normal(0.30, 0.003, 40)
    dlm = rng.normal(0.10, 0.001, 40)
    run = write_bench(tmp_path / "run.json", [
        cell(ar, backbone="tiny-ar", encoder="sequential", k=16),
        cell(dlm, backbone="tiny-dlm", encoder="parallel", k=16),
        cell(rng.normal(0.1, 0.001, 40), backbone="tiny-dlm", encoder="parallel", k=4)])
    bench = load_bench(run)
    # Default match keeps the encoder: sequential AR and parallel DLM cells never meet.
    comp = compare_latency(bench, bench, by="backbone", base_backbone="tiny-ar", new_backbone="tiny-dlm", n_boot=500)
    assert comp.table.empty and len(comp.only_base) == 1 and len(comp.only_new) == 2
    comp = compare_latency(bench, bench, by="backbone", base_backbone="tiny-ar", new_backbone="tiny-dlm",
                           any_encoder=True, n_boot=500)
    row = comp.table.iloc[0]
    assert row["k"] == 16 and row["verdict"] == "faster"
    assert row["ratio"] == pytest.approx(np.median(dlm) / np.median(ar))
    assert comp.only_new == ["k=4 L=128 B=1"]
    with pytest.raises(RepbenchError, match="no cells for backbone 'nope'"):
        compare_latency(bench, bench, by="backbone", base_backbone="nope", new_backbone="tiny-dlm")


def test_duplicate_cells_disambiguated_by_dtype_or_refused(tmp_path, rng):
    a = cell(rng.normal(0.1, 0.001, 20))
    b = cell(rng.normal(0.2, 0.001, 20))
    b["extra_info"]["dtype"] = "bfloat16"
    run = load_bench(write_bench(tmp_path / "two_dtypes.json", [a, b]))
    comp = compare_latency(run, run, n_boot=300)
    assert "dtype" in comp.keys and len(comp.table) == 2 and (comp.table["ratio"] == 1.0).all()
    same = load_bench(write_bench(tmp_path / "dup.json", [a, a]))
    with pytest.raises(RepbenchError, match="dup.json: several benchmarks share the cell"):
        compare_latency(same, same)


def test_search_and_analysis_cells_with_null_axes_match(tmp_path, rng):
    def search(samples, n):
        c = cell(samples, backbone=None, encoder="search:dense", k=1, input_tokens=None, batch_size=32,
                 index_size=n, k_p=1, mode="single_dense", query_batch=32)
        return c

    analysis = cell(rng.normal(0.12, 0.001, 5), backbone=None, encoder="analysis:randomization", k=None,
                    input_tokens=None, batch_size=None)
    a = load_bench(write_bench(tmp_path / "a.json", [search(rng.normal(1e-3, 1e-5, 50), 1000),
                                                     search(rng.normal(2e-3, 1e-5, 50), 10000), analysis]))
    b = load_bench(write_bench(tmp_path / "b.json", [search(rng.normal(1e-3, 1e-5, 50), 1000),
                                                     search(rng.normal(3e-3, 1e-5, 50), 10000), analysis]))
    comp = compare_latency(a, b, n_boot=500)
    assert comp.only_base == [] and comp.only_new == []
    labels = comp.table.set_index("label")["verdict"].to_dict()
    assert labels == {"search:dense k=1 B=32 N=1000 k_p=1 mode=single_dense qB=32": "same",
                      "search:dense k=1 B=32 N=10000 k_p=1 mode=single_dense qB=32": "slower",
                      "analysis:randomization": "same"}


def test_group_tolerance(runs, capsys):
    base, new, *_ = runs
    comp = compare_latency(load_bench(base), load_bench(new), n_boot=1000,
                           group_tolerances=[("*k=4 *", 0.25)])
    t = comp.table.set_index("k")
    assert t.loc[4, "tolerance"] == 0.25 and t.loc[4, "verdict"] == "same"  # 20% slower, within 25%
    assert t.loc[16, "tolerance"] == 0.05
    assert main(["compare", str(base), str(new), "--tolerance-for", "*k=4 *=25%", "--fail-above", "10%",
                 "--n-boot", "1000"]) == 0
    assert "tolerance ±25%" in capsys.readouterr().out
    assert main(["compare", str(base), str(new), "--tolerance-for", "oops"]) == 2
