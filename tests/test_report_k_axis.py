"""The K axis and the paper-style table: effectiveness vs K_q and K_p, external TREC runs in the report
(`repbench report --run NAME=RUN`), significance marks, best bold, win/tie/loss; and the BM25 run the demo
adds. References: hand-computed BM25 scores, scipy's paired t-test, counts by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import report_fixtures as fx
import scipy.stats

from repbench.cli import main
from repbench.evaluation.trec import write_run
from repbench.report import build_report, k_axis, wide
from repbench.retrieval.bm25 import bm25_run


def test_bm25_matches_the_formula_by_hand():
    run = bm25_run(["d1", "d2", "d3"], ["a b", "a a c", "c"], ["q"], ["a"])
    idf = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))  # N = 3, df(a) = 2; avgdl = 2, k1 = 0.9, b = 0.4
    assert run["q"] == pytest.approx({"d2": idf * 2 * 1.9 / (2 + 0.9 * (0.6 + 0.4 * 1.5)), "d1": idf * 1.0})
    assert list(run["q"]) == ["d2", "d1"]  # d3 shares no term: not retrieved


def _tidy() -> pd.DataFrame:
    rows = []
    values = {"base": [0.2, 0.4, 0.6, 0.8, 0.5, 0.3], "good": [0.6, 0.8, 0.9, 0.95, 0.85, 0.7],
              "same": [0.2, 0.45, 0.55, 0.8, 0.5, 0.3]}
    for system, vals in values.items():
        for i, v in enumerate(vals):
            rows.append({"dataset": "d", "system": system, "qid": f"q{i}", "measure": "ndcg_cut_10", "value": v})
    return pd.DataFrame(rows)


def test_wide_table_marks_bold_and_win_tie_loss():
    tidy = _tidy()
    table = wide.wide_table(tidy, ["base", "good", "same"], "base", ["ndcg_cut_10"])
    assert table.columns[1:] == ["d nDCG@10", "d W/T/L"]
    by = {row[0].text.split(" ")[0]: row for row in table.rows}
    assert by["base"][0].text == "base (baseline)" and by["base"][2].text == "baseline"
    good_mean = np.mean([0.6, 0.8, 0.9, 0.95, 0.85, 0.7])
    assert by["good"][1].text == f"{good_mean:.3f}" and by["good"][1].bold and not by["same"][1].bold
    assert by["good"][2].text == "6/0/0" and by["same"][2].text == "1/4/1"
    # marks: scipy's paired t-test, Holm over the two systems by hand
    base = np.array([0.2, 0.4, 0.6, 0.8, 0.5, 0.3])
    p_good = scipy.stats.ttest_rel([0.6, 0.8, 0.9, 0.95, 0.85, 0.7], base).pvalue
    p_same = scipy.stats.ttest_rel([0.2, 0.45, 0.55, 0.8, 0.5, 0.3], base).pvalue
    holm_good = min(1.0, 2 * min(p_good, p_same)) if p_good <= p_same else max(2 * p_same, p_good)
    assert holm_good < 0.05 and [m.markdown for m in by["good"][1].marks] == ["†"]
    assert by["same"][1].marks == ()


def test_k_figure_draws_each_mode_with_a_ci_and_the_external_line():
    rng = np.random.default_rng(0)
    rows = []
    for bb, fam, enc in (("a", "ar", "sequential"), ("b:bidirectional", "diffusion", "parallel")):
        for kq in (1, 4):
            for kp in (1, 4):
                for mode in ("single_dense", "sparse_max"):
                    for q in range(10):
                        rows.append({"dataset": "d", "backbone": bb, "family": fam, "encoder": enc, "k_q": kq,
                                     "k_p": kp, "mode": mode, "qid": f"q{q}", "measure": "ndcg_cut_10",
                                     "value": float(rng.random())})
    pq = pd.DataFrame(rows)
    ext = pd.DataFrame([{"dataset": "d", "system": "bm25", "qid": f"q{q}", "measure": "ndcg_cut_10", "value": 0.5}
                        for q in range(10)])
    fig, caption = k_axis.effectiveness_vs_k(pq, ext, {})
    axes = fig.axes
    assert len(axes) == 4  # two systems x (K_q, K_p)
    left = axes[0]
    lines = {ln.get_label(): ln for ln in left.get_lines()}
    assert set(lines) == {"single_dense", "sparse_max", "run: bm25"}
    # the K_q panel at K_p = 4: mean over queries at each K_q, by hand
    for mode in ("single_dense", "sparse_max"):
        want = [pq[(pq.backbone == "a") & (pq.k_p == 4) & (pq.k_q == k) & (pq["mode"] == mode)]["value"].mean()
                for k in (1, 4)]
        assert list(lines[mode].get_ydata()) == pytest.approx(want)
    assert list(lines["run: bm25"].get_ydata()) == [0.5, 0.5]
    assert len(left.collections) == 2  # one CI band per mode
    assert "(families: ar, diffusion)" in caption and "b:bidirectional" in caption and "bm25" not in caption[:60]
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_report_run_puts_an_external_run_in_the_table_and_figure(tmp_path):
    results = tmp_path / "res"
    fx.effectiveness(results / "effectiveness", datasets=("adi",))
    # a BEIR folder for adi's qrels, named in the sweep's metadata as the real sweep would
    per_query = pd.read_csv(results / "effectiveness" / "per_query.csv", dtype={"qid": str})
    qids = sorted(per_query["qid"].unique())
    data = tmp_path / "adi"
    (data / "qrels").mkdir(parents=True)
    (data / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\td{q}\t1\n" for q in qids))
    meta = {"schema_version": 1, "kind": "effectiveness_sweep",
            "collection": {"name": "adi", "source": str(data), "split": "test", "info": {}}}
    (results / "effectiveness" / "metadata.json").write_text(json.dumps(meta))
    run = write_run(tmp_path / "bm25.trec", {q: {f"d{q}": 2.0, "other": 1.0} for q in qids[: len(qids) // 2]},
                    tag="bm25")
    assert main(["report", "--results", str(results), "--out", str(tmp_path / "out"), "--no-pdf",
                 "--run", f"bm25={run}"]) == 0
    table = (tmp_path / "out" / "tables" / "tab_wide.md").read_text()
    lines = [ln for ln in table.splitlines() if ln.startswith("| bm25")]
    # bm25 ranks the relevant doc first for half the queries and retrieves nothing for the rest: nDCG@10 = 0.5
    assert len(lines) == 1 and lines[0].startswith("| bm25 (baseline) |") and "0.500" in lines[0]
    assert "fig_effectiveness_vs_k" in json.loads((tmp_path / "out" / "report.json").read_text())["produced"]
    assert "run: bm25" not in table
    # the same spec works in significance
    assert main(["significance", f"bm25={run}", f"again={run}", "--qrels", str(data / "qrels" / "test.tsv"),
                 "--format", "csv"]) == 0


def test_report_run_needs_a_name(tmp_path, capsys):
    (tmp_path / "res").mkdir()
    assert main(["report", "--results", str(tmp_path / "res"), "--out", str(tmp_path / "o"), "--no-pdf",
                 "--run", str(tmp_path / "x.trec")]) == 2
    assert "--run expects NAME=RUN" in capsys.readouterr().err


def test_external_table_is_dropped_when_no_run_is_given(tmp_path):
    out = tmp_path / "out"
    (out / "external").mkdir(parents=True)
    (out / "external" / "per_query.csv").write_text("dataset,system,qid,measure,value\nd,x,q,ndcg_cut_10,1\n")
    (tmp_path / "res").mkdir()
    build_report(tmp_path / "res", out, compile_pdf=False)
    assert not Path(out / "external" / "per_query.csv").exists()
