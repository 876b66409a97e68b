"""trec_eval's measure syntax, its "all" rule, and the no-copy evaluation path."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pytest
import pytrec_eval
from shared_data import DATA, require_data

from repbench.cli import main
from repbench.errors import RepbenchError
from repbench.evaluation.measures import names
from repbench.evaluation.metrics import aggregate, evaluate, summarize
from repbench.evaluation.trec import read_qrels, read_run, trec_order

TE = DATA / "trec_eval_test"


@pytest.mark.parametrize(
    ("specs", "expected"),
    [
        (["P.5,7,3"], ["P_3", "P_5", "P_7"]),  # sorted, as trec_eval
        (["ndcg_cut.10,20,23.4"], ["ndcg_cut_10", "ndcg_cut_20", "ndcg_cut_23"]),  # atol: 23.4 -> 23
        (["iprec_at_recall..10,.5"], ["iprec_at_recall_0.10", "iprec_at_recall_0.50"]),
        (["Rprec_mult.5.0,0.2"], ["Rprec_mult_0.20", "Rprec_mult_5.00"]),
        (["utility.2,-1,0,0", "ndcg.1=3,2=9,4=4.5"], ["utility_2,-1,0,0", "ndcg_1=3,2=9,4=4.5"]),
        (["ndcg_cut_10", "recip_rank_10", "map_cut_5"], ["ndcg_cut_10", "recip_rank_10", "map_cut_5"]),
        (["P.5", "P_10"], ["P_5", "P_10"]),  # cutoffs merge
        (["official"], ["runid", "num_q", "num_ret", "num_rel", "num_rel_ret", "map", "gm_map", "Rprec", "bpref",
                        "recip_rank", *[f"iprec_at_recall_{x / 10:.2f}" for x in range(11)],
                        *[f"P_{c}" for c in (5, 10, 15, 20, 30, 100, 200, 500, 1000)]]),
    ],
)
def test_trec_eval_syntax_resolves_to_trec_eval_names(specs, expected):
    assert names(specs) == expected


def test_parametrised_request_replaces_the_nickname_default():
    got = names(["all_trec", "relstring.20", "P.5,7,3"])
    assert "relstring_20" in got and "relstring" not in got
    assert [n for n in got if n.startswith("P_")] == ["P_3", "P_5", "P_7"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ndcg.1", "expected name=number pairs"),  # pytrec_eval's C code crashes on this one
        ("utility.1,2", "utility takes 4 coefficients"),
        ("P.0", "cutoffs must be positive"),
        ("P.5,x", "expected comma-separated numbers"),
        ("map.5", "map takes no parameters"),
        ("relstring.2.5", "non-negative integer"),
        ("10", "goes in one -m"),
        ("rbp", "unknown measure 'rbp'"),
    ],
)
def test_bad_measures_are_refused_before_pytrec_eval(tmp_path, capsys, spec, message):
    run, qrels = tmp_path / "r", tmp_path / "q"
    run.write_text("1 Q0 d1 1 0.5 t\n")
    qrels.write_text("1 0 d1 1\n")
    assert main(["eval-run", str(run), str(qrels), "-m", spec]) == 2
    assert message in capsys.readouterr().err


def test_aggregate_follows_trec_eval():
    # gm: exp(mean(log(max(v, 1e-5)))), a 0 counting as 1e-5 (trec_eval.h MIN_GEO_MEAN)
    assert aggregate([0.5, 0.0], "gm_map") == pytest.approx(math.sqrt(0.5 * 1e-5), rel=1e-12)
    assert aggregate([0.2, 0.8], "gm_bpref") == pytest.approx(0.4, rel=1e-12)
    assert aggregate([500, 0, 84], "num_ret") == 584
    assert aggregate([0.25, 0.75], "map") == 0.5


def test_gm_map_and_counts_against_trec_eval_per_query_lines():
    """gm_map "all" from out.test.aq's own map lines (4 decimals), and summarize agreeing with aggregate."""
    require_data("trec_eval_test", "results.test")
    df = evaluate(read_run(TE / "results.test"), read_qrels(TE / "qrels.test"), ["map", "gm_map", "num_ret"])
    ap = {ln.split("\t")[1]: float(ln.split("\t")[2]) for ln in (TE / "out.test.aq").read_text().splitlines()
          if ln.startswith("map ") and "\tall\t" not in ln}
    assert aggregate(df[df.measure == "gm_map"]["value"], "gm_map") == pytest.approx(
        math.exp(sum(math.log(v) for v in ap.values()) / 3), abs=1e-4)
    s = summarize(df).set_index("measure")
    assert round(s.loc["gm_map", "mean"], 4) == 0.1051 and s.loc["num_ret", "mean"] == 1500


def test_mrr_at_n_equals_recip_rank_of_the_truncated_run():
    require_data("trec_eval_test", "results.test")
    run, qrels = read_run(TE / "results.test"), read_qrels(TE / "qrels.test")
    df = evaluate(run, qrels, [f"recip_rank_{n}" for n in (1, 2, 5, 12, 50)])
    for n in (1, 2, 5, 12, 50):
        cut = {q: dict(trec_order(docs)[:n]) for q, docs in run.items()}
        direct = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(cut)
        got = df[df.measure == f"recip_rank_{n}"].set_index("qid")["value"]
        assert {q: got[q] for q in direct} == {q: v["recip_rank"] for q, v in direct.items()}


class _Frozen(Mapping):
    def __init__(self, d):
        self._d = d

    def __getitem__(self, k):
        return self._d[k]

    def __iter__(self):
        return iter(self._d)

    def __len__(self):
        return len(self._d)


@pytest.mark.filterwarnings("ignore:1 of 2 judged queries")
def test_runs_that_are_not_plain_dicts_give_the_same_values():
    """The no-copy path hands plain dicts straight to pytrec_eval; anything else is converted first."""
    run = {"q1": {"d1": 3, "d2": 2.5, "d3": 1}, "q2": {"d4": 0.5}}
    qrels = {"q1": {"d2": 1, "d3": 2}, "q2": {"d4": 1}}
    plain = evaluate({q: {d: float(s) for d, s in docs.items()} for q, docs in run.items()}, qrels, ["map", "P_5"])
    for variant in (run, {q: _Frozen(d) for q, d in run.items()}, {"q1": {"d1": "3", "d2": 2.5, "d3": 1}}):
        got = evaluate(variant, qrels, ["map", "P_5"], complete=False)
        expect = plain[plain.qid.isin(got.qid)].reset_index(drop=True)
        assert got.equals(expect)
    with pytest.raises(RepbenchError, match="run scores must be numbers"):
        evaluate({"q1": {"d1": "high"}}, qrels, ["map"])
    # qrels likewise: numpy grades, int doc ids and a non-dict mapping are converted, not refused
    import numpy as np

    odd_qrels = {"q1": _Frozen({"d2": np.int64(1), "d3": 2}), "q2": {"d4": np.int32(1)}}
    assert evaluate(run, odd_qrels, ["map", "P_5"]).equals(plain)
    with pytest.raises(RepbenchError, match="qrels grades must be integers"):
        evaluate(run, {"q1": {"d2": "yes"}}, ["map"])


def test_without_complete_only_the_runs_judged_queries_count():
    with pytest.warns(UserWarning, match="left out of the average"):
        df = evaluate({"q1": {"d1": 1.0}}, {"q1": {"d1": 1}, "q2": {"d2": 1}}, ["map", "num_rel"], complete=False)
    assert list(df.qid.unique()) == ["q1"]
    with pytest.warns(UserWarning, match="score 0"):
        df = evaluate({"q1": {"d1": 1.0}}, {"q1": {"d1": 1}, "q2": {"d2": 1, "d3": 2, "d4": 0}}, ["map", "num_rel"])
    assert df.set_index(["qid", "measure"])["value"].to_dict() == {
        ("q1", "map"): 1.0, ("q1", "num_rel"): 1.0, ("q2", "map"): 0.0, ("q2", "num_rel"): 2.0}
