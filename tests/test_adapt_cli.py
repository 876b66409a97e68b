"""`repbench adapt` end to end on constructed files: outputs, folds, Holm, optimal K, errors, report recipes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from repbench.cli import main
from repbench.schema.signals import signals_frame

N = 60


def _write(tmp_path, with_signals=True):
    rng = np.random.default_rng(0)
    rows, sigs = [], []
    truth = {}
    for ds, planted in (("d1", True), ("d2", False)):
        s = rng.random(N)
        qids = [f"{ds}q{j}" for j in range(N)]
        best = np.where(s <= 0.5, 1, 4) if planted else rng.choice([1, 4], N)
        vals = {k: rng.uniform(0.1, 0.4, N) for k in (1, 4)}
        for k in (1, 4):
            vals[k] = vals[k] + 0.5 * (best == k)
        vals[1][:3] = vals[4][:3] = 0.0  # three all-tied queries: the tie rule picks K_q = 1
        truth[ds] = (qids, vals, s)
        for k in (1, 4):
            for q, v in zip(qids, vals[k], strict=True):
                rows.append({"dataset": ds, "backbone": "bb", "family": "ar", "encoder": "sequential", "k_q": k,
                             "k_p": 1, "mode": "single_dense", "qid": q, "measure": "ndcg_cut_10", "value": v})
        lengths = rng.integers(3, 30, N)
        sigs.append(signals_frame(qids, {"text_tokens": lengths, "entropy": s[:, None], "valid": np.ones((N, 1))},
                                  dataset=ds, backbone="bb", encoder="sequential", side="query", k=1))
        truth[ds] += (lengths,)
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    pd.DataFrame(rows).to_csv(sweep / "per_query.csv", index=False)
    if with_signals:
        pd.concat(sigs).to_csv(sweep / "signals.csv", index=False)
    return sweep, truth


def test_adapt_cli_outputs(tmp_path, capsys):
    sweep, truth = _write(tmp_path)
    out = tmp_path / "adapt"
    assert main(["adapt", "--per-query", str(sweep / "per_query.csv"), "--out", str(out), "--bootstrap", "500",
                 "--selectors", "threshold", "logistic"]) == 0
    assert "gap closed" in capsys.readouterr().out
    for name in ("adaptive.csv", "adaptive_choices.csv", "adaptive_cells.csv", "adaptive_rules.csv", "folds.csv",
                 "oracle_k.csv", "oracle_k_corr.csv", "metadata.json"):
        assert (out / name).is_file(), name
    folds = pd.read_csv(out / "folds.csv", dtype={"qid": str})
    assert folds.groupby("dataset")["qid"].nunique().to_dict() == {"d1": N, "d2": N}
    assert (folds.groupby(["dataset", "fold"]).size() == 12).all() and folds["fold"].nunique() == 5
    choices = pd.read_csv(out / "adaptive_choices.csv", dtype={"qid": str})
    merged = choices.merge(folds, on=["dataset", "qid"], suffixes=("", "_file"))
    assert len(merged) == len(choices) and (merged["fold"] == merged["fold_file"]).all()

    table = pd.read_csv(out / "adaptive.csv")
    assert set(table["selector"]) == {"threshold", "logistic"} and (table["scope"] == "kq").all()
    for _, fam in table.groupby("selector"):  # Holm over the two datasets, by hand
        p = fam["p_value"].to_numpy()
        lo, hi = np.argsort(p)
        expected = {lo: min(1.0, 2 * p[lo]), hi: min(1.0, max(2 * p[lo], p[hi]))}
        assert fam["p_adjusted"].to_numpy() == pytest.approx([expected[0], expected[1]])
    planted = table[(table.dataset == "d1") & (table.selector == "threshold")].iloc[0]
    assert planted["gap_closed"] > 0.8 and planted["significant"]
    assert not table[table.dataset == "d2"]["significant"].any()

    optimal = pd.read_csv(out / "oracle_k.csv", dtype={"qid": str})
    corr = pd.read_csv(out / "oracle_k_corr.csv")
    for ds, (qids, vals, _s, lengths) in truth.items():
        ref_k = np.where(vals[4] > vals[1], 4, 1)  # strict: ties go to the cheaper K_q = 1
        got = optimal[optimal.dataset == ds].set_index("qid").loc[qids]
        assert got["k_q"].tolist() == ref_k.tolist()
        assert got["all_tied"].tolist()[:3] == [True] * 3
        best = vals[1] if vals[1].mean() >= vals[4].mean() else vals[4]
        assert got["difficulty"].to_numpy() == pytest.approx(best)
        row = corr[(corr.dataset == ds) & (corr.variable == "length") & (corr.subset == "all")].iloc[0]
        assert row["rho"] == pytest.approx(scipy.stats.spearmanr(ref_k, lengths).statistic)
        assert row["ci_low"] <= row["rho"] <= row["ci_high"]


def test_adapt_without_signals_is_a_clear_error(tmp_path, capsys):
    sweep, _ = _write(tmp_path, with_signals=False)
    assert main(["adapt", "--per-query", str(sweep / "per_query.csv"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "signals.csv" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_report_recipes_draw_the_adapt_outputs(tmp_path):
    from repbench.report.build import build_report

    sweep, _ = _write(tmp_path)
    results = tmp_path / "results"
    assert main(["adapt", "--per-query", str(sweep / "per_query.csv"), "--out", str(results / "adapt"),
                 "--bootstrap", "200", "--selectors", "threshold"]) == 0
    summary = build_report(results, tmp_path / "report", compile_pdf=False)
    for recipe in ("fig_adaptive", "tab_adaptive", "fig_oracle_k_distribution", "fig_oracle_k_difficulty",
                   "tab_oracle_k_corr"):
        assert recipe in summary["produced"], (recipe, summary["failed"].get(recipe), summary["skipped"].get(recipe))
    md = (tmp_path / "report" / "tables" / "tab_oracle_k_corr.md").read_text()
    assert "rho(K_q*, length)" in md and "d1" in md


def test_baseline_run_sets_the_difficulty(tmp_path):
    import pytrec_eval

    sweep, truth = _write(tmp_path)
    qids = truth["d1"][0]
    rng = np.random.default_rng(1)
    qrels = {q: {f"doc{j}": 1 for j in rng.choice(20, 2, replace=False)} for q in qids}
    run = {q: {f"doc{j}": float(s) for j, s in enumerate(rng.random(20))} for q in qids[:-5]}  # 5 queries lack
    (tmp_path / "qrels.txt").write_text("".join(f"{q} 0 {d} {g}\n" for q, ds in qrels.items() for d, g in ds.items()))
    lines = []
    for q, docs in run.items():
        for rank, (d, s) in enumerate(sorted(docs.items(), key=lambda x: -x[1]), start=1):
            lines.append(f"{q} Q0 {d} {rank} {s:.6f} bm25\n")
    (tmp_path / "bm25.trec").write_text("".join(lines))
    out = tmp_path / "adapt"
    assert main(["adapt", "--per-query", str(sweep / "per_query.csv"), "--out", str(out), "--bootstrap", "200",
                 "--selectors", "fixed_cv", "--dataset", "d1", "--baseline-run", str(tmp_path / "bm25.trec"),
                 "--qrels", str(tmp_path / "qrels.txt")]) == 0
    rounded = {q: {d: round(s, 6) for d, s in docs.items()} for q, docs in run.items()}
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(rounded)
    optimal = pd.read_csv(out / "oracle_k.csv", dtype={"qid": str}).set_index("qid")
    assert (optimal["difficulty_source"] == "bm25.trec").all()
    expected = [ref[q]["ndcg_cut_10"] if q in ref else 0.0 for q in qids]  # a query the run lacks scores 0
    assert optimal.loc[qids, "difficulty"].to_numpy() == pytest.approx(expected, abs=1e-9)
