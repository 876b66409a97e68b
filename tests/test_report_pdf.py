"""report.pdf compiles with pdflatex and its first page is not blank (runs for real when CI=true)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import report_fixtures as fx
from matplotlib import image as mpimg

from repbench.report import build_report

TOOLS = ("pdflatex", "pdftoppm")
MISSING = [t for t in TOOLS if shutil.which(t) is None]


@pytest.fixture
def need_tools():
    if MISSING:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {', '.join(MISSING)} missing (.ci/run installs texlive and poppler-utils)")
        pytest.skip(f"{', '.join(MISSING)} not installed (texlive-latex-base/recommended, poppler-utils)")


def test_report_pdf_compiles_and_page_one_is_not_blank(need_tools, tmp_path):
    results = fx.full_results(tmp_path / "results")
    # A dataset name full of LaTeX specials: the document must still compile.
    fx.effectiveness(tmp_path / "results" / "more", datasets=("my_set#1 & 50% {x}",), n_queries=4)
    out = tmp_path / "report"
    summary = build_report(results, out)
    assert not summary["failed"] and not summary["skipped"]
    pdf = Path(summary["pdf"])
    assert pdf == out / "report.pdf" and pdf.read_bytes().startswith(b"%PDF")
    assert not list(out.glob("*.aux")) and not list(out.glob("*.log"))  # compiled in a temp dir
    tex = (out / "report.tex").read_text()
    for name, paths in summary["produced"].items():
        for p in paths:
            if p.endswith(".pdf"):
                assert f"figures/{Path(p).name}" in tex, name
            if p.endswith(".tex"):
                assert f"tables/{Path(p).name}" in tex, name
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")],
                   check=True, capture_output=True)
    page = mpimg.imread(next(tmp_path.glob("page*.png")))
    gray = page[..., :3].mean(axis=2)
    assert gray.std() > 0.05  # text and a figure, not an empty page
    assert (gray < 0.95).mean() > 0.01  # a measurable share of the page is ink, not paper
    assert "my\\_set\\#1 \\& 50\\% \\{x\\}" in (out / "tables" / "tab_effectiveness.tex").read_text()


def test_no_pdflatex_skips_with_message(tmp_path, monkeypatch):
    results = tmp_path / "results"
    fx.effectiveness(results, n_queries=3)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    summary = build_report(results, tmp_path / "report", compile_pdf=True)
    assert summary["pdf"] is None and "pdflatex not found" in summary["pdf_message"]
    assert (tmp_path / "report" / "report.tex").is_file()
