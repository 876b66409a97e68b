"""`repbench analyze` and `repbench significance` end to end, and per-query table reading."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import pytrec_eval
import scipy.stats
from shared_data import require_data

from repbench.analysis.oracle import ORACLE_CELL_COLUMNS, ORACLE_COLUMNS
from repbench.analysis.perquery import per_query_matrix
from repbench.analysis.significance import SIGNIFICANCE_COLUMNS
from repbench.cli import main
from repbench.errors import InputError, RepbenchError
from repbench.schema.tables import read_per_query

COLUMNS = ["dataset", "backbone", "family", "encoder", "k_q", "k_p", "mode", "qid", "measure", "value"]


def _per_query(n: int = 30, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = rng.random(n)
    rows = []
    for kq, kp, shift in ((1, 1, 0.0), (1, 4, 0.15), (4, 1, 0.0), (4, 4, 0.05)):
        vals = np.clip(base + shift + rng.normal(0, 0.05, n), 0, 1)
        for q in range(n):
            for measure, v in (("ndcg_cut_10", vals[q]), ("recall_100", 1.0)):
                rows.append(("scifact", "tiny-dlm", "diffusion", "parallel", kq, kp, "multi_dense", f"q{q}",
                             measure, v))
    return pd.DataFrame(rows, columns=COLUMNS)


def test_analyze_writes_three_tables(tmp_path, capsys):
    df = _per_query()
    src = tmp_path / "per_query.csv"
    df.to_csv(src, index=False)
    out = tmp_path / "analysis"
    base = "tiny-dlm/parallel/q1p1/multi_dense"
    rc = main(["analyze", "--per-query", str(src), "--baseline", base, "--measure", "ndcg_cut_10",
               "--out", str(out), "--bootstrap", "500"])
    assert rc == 0
    sig = pd.read_csv(out / "significance.csv")
    oracle = pd.read_csv(out / "oracle.csv")
    cells = pd.read_csv(out / "oracle_cells.csv")
    assert tuple(sig.columns) == SIGNIFICANCE_COLUMNS
    assert tuple(oracle.columns) == ORACLE_COLUMNS and tuple(cells.columns) == ORACLE_CELL_COLUMNS
    nd = df[df["measure"] == "ndcg_cut_10"]
    vals = {(r.k_q, r.k_p): g.sort_values("qid")["value"].to_numpy()
            for r, g in ((g.iloc[0], g) for _, g in nd.groupby(["k_q", "k_p"]))}
    assert list(sig["system"]) == ["tiny-dlm/parallel/q1p4/multi_dense", "tiny-dlm/parallel/q4p1/multi_dense",
                                   "tiny-dlm/parallel/q4p4/multi_dense"]
    expected = [scipy.stats.ttest_rel(vals[c], vals[(1, 1)]).pvalue for c in ((1, 4), (4, 1), (4, 4))]
    np.testing.assert_allclose(sig["p_value"], expected, rtol=1e-9)
    assert sig.loc[0, "significant"] and (sig["n"] == 30).all()
    grid = oracle[oracle["scope"] == "grid"].iloc[0]
    direct = np.max(np.vstack(list(vals.values())), axis=0).mean()
    assert grid["oracle_mean"] == pytest.approx(direct)
    assert grid["best_cell"] == "q1p4"
    text = capsys.readouterr().out
    assert "optimistic upper bound" in text and "selected on the test queries" in text
    assert (out / "metadata.json").exists()


def test_analyze_needs_a_baseline_and_a_known_one(tmp_path, capsys):
    src = tmp_path / "per_query.csv"
    _per_query(n=5).to_csv(src, index=False)
    assert main(["analyze", "--per-query", str(src), "--out", str(tmp_path / "o")]) == 2
    assert main(["analyze", "--per-query", str(src), "--baseline", "x/y/q1p1/z", "--out", str(tmp_path / "o")]) == 2
    assert "baseline 'x/y/q1p1/z' is not among the systems" in capsys.readouterr().err
    assert not (tmp_path / "o" / "significance.csv").exists()


def test_analyze_all_pairs_intersect_randomization(tmp_path):
    df = _per_query(n=12)
    df = df[~((df["k_q"] == 4) & (df["k_p"] == 4) & (df["qid"].isin(["q0", "q1"])))]
    src = tmp_path / "pq.csv"
    df.to_csv(src, index=False)
    out = tmp_path / "a"
    rc = main(["analyze", "--per-query", str(src), "--all-pairs", "--intersect", "--test", "randomization",
               "--correction", "bonferroni", "--out", str(out), "--bootstrap", "200", "--budget-q", "1"])
    assert rc == 0
    sig = pd.read_csv(out / "significance.csv")
    assert len(sig) == 6 and (sig["n"] == 10).all()
    np.testing.assert_allclose(sig["p_adjusted"], np.minimum(sig["p_value"] * 6, 1))
    oracle = pd.read_csv(out / "oracle.csv")
    # within K_q <= 1 the grid is the K_p-only set at K_q = 1, so it is not listed twice (the option sets the
    # adaptive selectors see); the queries q4p4 lacked are out of budget
    assert sorted(oracle["scope"]) == ["kp"] and (oracle["budget_q"] == 1).all()
    assert oracle["oracle_mean"].nunique() == 1 and (oracle["n"] == 12).all()


def test_read_per_query_errors(tmp_path):
    df = _per_query(n=3)
    bad = df.copy().astype({"value": object})
    bad.loc[5, "value"] = "nan"
    p = tmp_path / "bad.csv"
    bad.to_csv(p, index=False)
    with pytest.raises(InputError, match=r"bad\.csv:7: expected a finite numeric value for system "
                                         r"tiny-dlm/parallel/q1p1/multi_dense, query q2"):
        read_per_query(p)
    df.drop(columns=["mode"]).to_csv(p, index=False)
    with pytest.raises(InputError, match="bad.csv:1: expected columns .* missing mode"):
        read_per_query(p)
    pd.concat([df, df.iloc[[4]]]).to_csv(p, index=False)
    with pytest.raises(InputError, match=r"bad\.csv:26: .*query q2 .* repeats line 6"):
        read_per_query(p)


def test_per_query_matrix_fills_missing_with_zero():
    df = _per_query(n=4)
    df = df[~((df["k_q"] == 1) & (df["k_p"] == 4) & (df["qid"] == "q2"))]
    al = per_query_matrix(df, "ndcg_cut_10")
    assert al.n == 4 and al.matrix.loc["tiny-dlm/parallel/q1p4/multi_dense", "q2"] == 0.0
    assert al.missing == {"tiny-dlm/parallel/q1p4/multi_dense": 1}
    assert per_query_matrix(df, "ndcg_cut_10", intersect=True).n == 3
    with pytest.raises(RepbenchError, match="measure 'map' not in"):
        per_query_matrix(df, "map")


def _write_run(path: Path, run: dict[str, dict[str, float]]) -> None:
    lines = []
    for q, docs in run.items():
        for rank, (d, s) in enumerate(sorted(docs.items(), key=lambda kv: -kv[1]), start=1):
            lines.append(f"{q} Q0 {d} {rank} {s} test")
    path.write_text("\n".join(lines) + "\n")


def test_significance_from_run_files(tmp_path, capsys):
    rng = np.random.default_rng(3)
    n_q, n_d = 25, 30
    qrels = {f"q{q}": {f"d{d}": int(rng.integers(0, 3)) for d in rng.choice(n_d, 6, replace=False)}
             for q in range(n_q)}
    qrels_path = tmp_path / "qrels.txt"
    qrels_path.write_text("".join(f"{q} 0 {d} {g}\n" for q, docs in qrels.items() for d, g in docs.items()))
    runs = {}
    for name, boost in (("bm25", 0.0), ("dense", 1.5), ("sparse", 0.2)):
        runs[name] = {q: {f"d{d}": float(rng.normal()) + boost * qrels[q].get(f"d{d}", 0) for d in range(n_d)}
                      for q in qrels if q != "q7" or name != "sparse"}  # sparse answers no q7
        _write_run(tmp_path / f"{name}.trec", runs[name])
    rc = main(["significance", *(str(tmp_path / f"{n}.trec") for n in ("bm25", "dense", "sparse")),
               "--qrels", str(qrels_path), "--measure", "ndcg_cut_10", "--test", "t", "--format", "csv"])
    assert rc == 0
    captured = capsys.readouterr()
    sig = pd.read_csv(io.StringIO(captured.out))
    assert tuple(sig.columns) == SIGNIFICANCE_COLUMNS
    assert list(sig["system"]) == ["dense", "sparse"] and set(sig["baseline"]) == {"bm25"}
    # reference: pytrec_eval directly, the missing query scoring 0
    ev = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"})
    per = {name: ev.evaluate(run) for name, run in runs.items()}
    vec = {name: np.array([per[name].get(q, {}).get("ndcg_cut_10", 0.0) for q in qrels]) for name in runs}
    expected = [scipy.stats.ttest_rel(vec[s], vec["bm25"]).pvalue for s in ("dense", "sparse")]
    np.testing.assert_allclose(sig["p_value"], expected, rtol=1e-9)
    np.testing.assert_allclose(sig["mean_system"], [vec["dense"].mean(), vec["sparse"].mean()], rtol=1e-12)
    assert (sig["n"] == n_q).all()
    assert "sparse" in captured.err  # the note about its unanswered query
    rc = main(["significance", *(str(tmp_path / f"{n}.trec") for n in ("bm25", "sparse")),
               "--qrels", str(qrels_path), "--intersect", "--test", "wilcoxon"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "24 queries" in text and "Wilcoxon" in text


def test_significance_on_trec_eval_test_suite(capsys):
    """Against trec_eval itself: per-query nDCG@10 of results.test (out.test.aq) and results.trunc
    (out.test.aqc, missing queries as 0) from trec_eval's own test outputs."""
    suite = require_data("trec_eval_test", "qrels.test").parent

    def reference(name: str) -> np.ndarray:
        rows = [line.split() for line in (suite / name).read_text().splitlines()]
        per = {q: float(v) for m, q, v in rows if m == "ndcg_cut_10" and q != "all"}
        return np.array([per[q] for q in sorted(per)])

    full, trunc = reference("out.test.aq"), reference("out.test.aqc")
    rc = main(["significance", str(suite / "results.test"), str(suite / "results.trunc"),
               "--qrels", str(suite / "qrels.test"), "--measure", "ndcg_cut_10", "--format", "csv"])
    assert rc == 0
    sig = pd.read_csv(io.StringIO(capsys.readouterr().out))
    row = sig.iloc[0]
    # equal stems: the runs are named by their whole file names
    assert (row["system"], row["baseline"], row["n"]) == ("results.trunc", "results.test", 3)
    assert row["mean_system"] == pytest.approx(trunc.mean(), abs=1e-4)
    assert row["mean_baseline"] == pytest.approx(full.mean(), abs=1e-4)
    assert row["p_value"] == pytest.approx(scipy.stats.ttest_rel(trunc, full).pvalue, rel=2e-3)


def test_run_names_stem_then_file_name():
    from repbench.analysis.runs import run_names

    assert run_names(["runs/bm25.trec", "x/dense.txt"]) == ["bm25", "dense"]
    assert run_names(["r/results.test", "r/results.trunc", "bm25.trec"]) == ["results.test", "results.trunc", "bm25"]
    with pytest.raises(RepbenchError, match="two runs are named 'x.trec'"):
        run_names(["a/x.trec", "b/x.trec"])
