"""Every shipped recipe (repbench.recipes) on small fixture results; input discovery; skips; bootstrap CI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import report_fixtures as fx
import scipy.stats
from matplotlib import image as mpimg

from repbench.cli import main
from repbench.errors import InputError
from repbench.report import build_report, discover_recipes, inputs
from repbench.stats import bootstrap_ci

RECIPES = {r.name: r for r in discover_recipes()}


def test_every_figure_and_table_of_the_issue_has_a_recipe():
    assert set(RECIPES) >= {
        "fig_latency_vs_k", "fig_latency_vs_length", "fig_search_latency", "fig_effectiveness_vs_latency",
        "fig_oracle_cells", "fig_oracle_vs_fixed", "fig_memory_energy", "tab_effectiveness", "tab_latency",
        "tab_oracle"}
    for recipe in RECIPES.values():
        assert recipe.inputs and set(recipe.inputs) <= set(inputs.INPUT_DESCRIPTIONS), recipe.name


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_produces_its_files(name, built_report):
    # built_report ran every recipe once on fx.full_results(energy=True); each one's own files are checked here.
    out, summary = built_report.out, built_report.summary
    assert name in summary["produced"], summary["skipped"].get(name) or summary["failed"].get(name)
    paths = [Path(p) for p in summary["produced"][name]]
    assert all(p.parent.parent == out for p in paths)
    if name.startswith("fig_"):
        assert sorted(p.name for p in paths) == [f"{name}.pdf", f"{name}.png"]
        png = mpimg.imread(paths[[p.suffix for p in paths].index(".png")])
        assert png.shape[0] > 200 and png.shape[1] > 200
        assert png[..., :3].std() > 0.05  # something is drawn, not a blank canvas
        assert paths[[p.suffix for p in paths].index(".pdf")].read_bytes().startswith(b"%PDF")
        assert (out / "figures" / f"{name}.caption.txt").read_text().strip()
    else:
        assert sorted(p.name for p in paths) == [f"{name}.md", f"{name}.tex"]
        tex = (out / "tables" / f"{name}.tex").read_text()
        assert r"\toprule" in tex and r"\bottomrule" in tex and r"\caption{" in tex


def test_latency_table_median_and_skipped_cell(built_report):
    md = (built_report.out / "tables" / "tab_latency.md").read_text()
    obj = json.loads((built_report.results / "bench" / "out.json").read_text())
    cell = next(b for b in obj["benchmarks"] if b["name"] == "test_encode[tiny-ar-sequential-k4-L128]")
    median_ms = np.median(np.asarray(cell["extra_info"]["samples_s"]) * 1000.0)
    row = next(line for line in md.splitlines() if line.startswith("| tiny-ar | sequential | 4 | 128 | 1 |"))
    assert f"| {median_ms:.2f} [" in row
    assert "skipped: out of memory" in md
    assert "| 0.9 |" in row  # energy_j_per_query = 0.5 + 0.1 * K in the fixture


def test_paper_series_present_in_teaser_and_length_figures(built_report):
    figures = built_report.out / "figures"
    assert "paper's H100 readings" in (figures / "fig_latency_vs_length.caption.txt").read_text()
    teaser = (figures / "fig_effectiveness_vs_latency.caption.txt").read_text()
    assert "docs/method.md §11.1" in teaser and "exact search over 100,000 documents" in teaser


def test_missing_inputs_skip_with_reason(tmp_path):
    fx.effectiveness(tmp_path / "res" / "eff")
    summary = build_report(tmp_path / "res", tmp_path / "out", compile_pdf=False)
    assert "tab_effectiveness" in summary["produced"]
    for name in ("fig_latency_vs_k", "tab_latency", "fig_effectiveness_vs_latency"):
        assert "latency JSON" in summary["skipped"][name]
    assert "oracle_cells.csv" in summary["skipped"]["fig_oracle_cells"]
    assert all("\n" not in reason for reason in summary["skipped"].values())
    assert not summary["failed"]
    report_tex = (tmp_path / "out" / "report.tex").read_text()
    assert r"\input{tables/tab_effectiveness.tex}" in report_tex and "fig\\_latency\\_vs\\_k: skipped" in report_tex


def test_bench_json_recognised_by_content(tmp_path):
    fx.bench_json(tmp_path / "deep" / "whatever-name.json")
    (tmp_path / "metadata.json").write_text(json.dumps({"schema_version": 1, "kind": "effectiveness"}))
    (tmp_path / "plain-pytest-benchmark.json").write_text(json.dumps({"benchmarks": [], "machine_info": {}}))
    assert [p.name for p in inputs.find_bench_files(tmp_path)] == ["whatever-name.json"]


def test_bench_cell_without_samples_is_refused(tmp_path):
    path = fx.bench_json(tmp_path / "b.json")
    obj = json.loads(path.read_text())
    del obj["benchmarks"][3]["extra_info"]["samples_s"]
    path.write_text(json.dumps(obj))
    with pytest.raises(InputError, match=r"b\.json: benchmarks\[3\] .*extra_info lacks samples_s"):
        inputs.bench_table(tmp_path)


def test_csv_missing_column_is_refused(tmp_path):
    (tmp_path / "oracle.csv").write_text("dataset,backbone\nx,y\n")
    with pytest.raises(InputError, match=r"oracle\.csv:1: expected columns .*missing encoder"):
        build_report(tmp_path, tmp_path / "out", compile_pdf=False)


def test_bootstrap_ci_matches_scipy_percentile_bootstrap():
    rng = np.random.default_rng(3)
    x = rng.lognormal(0.0, 0.3, 40)
    low, high = bootstrap_ci(x, n_resamples=4000, seed=1)
    ref = scipy.stats.bootstrap((x,), np.median, n_resamples=4000, method="percentile",
                                random_state=np.random.default_rng(7)).confidence_interval
    # Two independent Monte-Carlo estimates of the same interval: equal up to resampling noise.
    assert low == pytest.approx(ref.low, abs=0.04) and high == pytest.approx(ref.high, abs=0.04)
    assert low < np.median(x) < high
    assert bootstrap_ci([2.0]) == (2.0, 2.0)


def test_cli_report_no_pdf(built_report, tmp_path, capsys):
    # the session's `repbench report` printed one line per recipe and where the PDF went
    assert "tab_effectiveness: tab_effectiveness.tex, tab_effectiveness.md" in built_report.stdout
    assert "fig_latency_vs_k: fig_latency_vs_k.png, fig_latency_vs_k.pdf" in built_report.stdout
    assert f"pdf: {built_report.out / 'report.pdf'}" in built_report.stdout
    # --no-pdf, on effectiveness results alone (the figures' rendering is not what this checks)
    fx.effectiveness(tmp_path / "res", n_queries=3)
    assert main(["report", "--results", str(tmp_path / "res"), "--out", str(tmp_path / "rep"), "--no-pdf"]) == 0
    out = capsys.readouterr().out
    assert "tab_effectiveness: tab_effectiveness.tex, tab_effectiveness.md" in out
    assert "PDF not requested" in out
    assert (tmp_path / "rep" / "report.tex").is_file() and not (tmp_path / "rep" / "report.pdf").exists()
    assert main(["report", "--results", str(tmp_path / "nope"), "--out", str(tmp_path / "x")]) == 2
