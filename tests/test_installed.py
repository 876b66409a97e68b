"""A real, non-editable install (`pip install --target`, i.e. a built wheel, no checkout on the path)
runs `repbench report` and `repbench demo --skip-bench`: the recipes and paper tables ship in the package."""

from __future__ import annotations

import pytest
from installed_package import assert_from_install, run_repbench


def test_report_from_installed_package(installed_package, built_report):
    # built_report is `repbench report` run from the installed package (PYTHONPATH = the --target directory)
    proc, out = built_report.proc, built_report.out
    assert_from_install(proc, installed_package)
    tex = (out / "report.tex").read_text()
    assert r"\input{tables/tab_effectiveness.tex}" in tex and (out / "figures").is_dir()
    # the paper tables came from the package (the results hold none): the figures show the paper's readings
    assert not (built_report.results / "paper").exists()
    caption = (out / "figures" / "fig_search_latency.caption.txt").read_text()
    assert "the paper's H100 readings" in caption


@pytest.mark.slow
def test_demo_skip_bench_from_installed_package(installed_package, tmp_path):
    proc = run_repbench(installed_package, tmp_path, "demo", "--out", str(tmp_path / "results"), "--report",
                     str(tmp_path / "report"), "--docs", "10", "--queries", "3", "--doc-len", "6", "--skip-bench",
                     "--no-pdf", timeout=900)
    assert_from_install(proc, installed_package)
    assert (tmp_path / "results" / "analysis" / "significance.csv").is_file()
    assert (tmp_path / "report" / "report.md").is_file() and (tmp_path / "report" / "report.tex").is_file()
