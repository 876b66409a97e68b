"""`repbench demo` end to end on a shrunken collection (no latency step): every stage writes its file, and it
ends by printing the path of report.pdf."""

from __future__ import annotations

import pandas as pd
import pytest

from repbench.cli import main

# ~250 s on 2 cores (a real model twice): CI runs it, a developer's `make test` skips it (Makefile).
pytestmark = pytest.mark.slow


def test_demo_pipeline_small(tmp_path, capsys):
    out, report = tmp_path / "results", tmp_path / "report"
    rc = main(["demo", "--out", str(out), "--report", str(report), "--docs", "12", "--queries", "4",
               "--doc-len", "8", "--skip-bench"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "top passages from" in printed and "nDCG@10 by cell and mode" in printed
    # The demo ends with the path of a report.pdf, pdflatex or not (without it, matplotlib lays it out).
    pdf = report / "report.pdf"
    assert printed.rstrip().splitlines()[-1] == f"report:  {pdf.resolve()}"
    assert pdf.read_bytes().startswith(b"%PDF")
    tables = [pd.read_csv(p) for p in sorted((out / "eval").glob("*/per_query.csv"))]
    assert len(tables) == 2
    per_query = pd.concat(tables)
    assert set(per_query["encoder"]) == {"sequential", "parallel"}
    assert set(per_query["qid"]) == {f"q{i:03d}" for i in range(4)}
    assert (out / "analysis" / "significance.csv").exists() and (out / "analysis" / "oracle.csv").exists()
    adaptive = pd.read_csv(out / "analysis" / "adapt" / "adaptive.csv")
    assert set(adaptive["encoder"]) == {"sequential", "parallel"} and (adaptive["n"] == 4).all()
    assert "not trained diffusion LMs" in printed
    assert (report / "report.md").exists() and (report / "report.tex").exists()
    # a rerun starts clean by default and gives the same effectiveness numbers
    assert main(["demo", "--out", str(out), "--report", str(report), "--docs", "12", "--queries", "4",
                 "--doc-len", "8", "--skip-bench", "--no-pdf"]) == 0
    again = pd.concat([pd.read_csv(p) for p in sorted((out / "eval").glob("*/per_query.csv"))])
    pd.testing.assert_frame_equal(per_query.reset_index(drop=True), again.reset_index(drop=True))
