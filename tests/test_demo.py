"""`repbench demo` end to end on a shrunken collection (no latency step, no PDF): every stage writes its file."""

from __future__ import annotations

import pandas as pd

from repbench.cli import main


def test_demo_pipeline_small(tmp_path, capsys):
    out, report = tmp_path / "results", tmp_path / "report"
    rc = main(["demo", "--out", str(out), "--report", str(report), "--docs", "12", "--queries", "4",
               "--doc-len", "8", "--skip-bench", "--no-pdf"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "top passages from" in printed and "nDCG@10 by cell and mode" in printed
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
