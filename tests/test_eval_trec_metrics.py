"""TREC I/O and per-query metrics: hand-computed fixtures and trec_eval's own test suite."""

from __future__ import annotations

import math
import warnings

import pytest
from shared_data import DATA, require_data

from repbench.errors import InputError, RepbenchError
from repbench.evaluation.metrics import (
    DEFAULT_MEASURES,
    MissingQueriesWarning,
    evaluate,
    summarize,
)
from repbench.evaluation.trec import read_qrels, read_run, round_scores, trec_order, write_run
from repbench.evaluation.trec_eval_text import format_trec_eval

TREC_EVAL = DATA / "trec_eval_test"


def _need_trec_eval_data() -> None:
    require_data("trec_eval_test", "results.test")


# ---------------------------------------------------------------- hand-built fixture
QRELS = {
    "q1": {"d1": 2, "d2": 1, "d3": 0, "d9": 1},
    "q2": {"d4": 1},
    "q3": {"d5": 1},  # never retrieved: must score 0
    "q5": {"a": 1},
}
RUN = {
    "q1": {"d3": 0.9, "d1": 0.8, "d5": 0.7, "d2": 0.6},
    "q2": {**{f"x{i:02d}": 1.0 - i / 100 for i in range(10)}, "d4": 0.5},
    "q4": {"d1": 1.0},  # unjudged query: ignored
    "q5": {"a": 0.5, "b": 0.5, "c": 0.5},  # exact tie: trec_eval order is c, b, a
}


def _table(df):
    return {(r.qid, r.measure): r.value for r in df.itertuples()}


def test_metrics_equal_hand_computed_values():
    with pytest.warns(MissingQueriesWarning, match="1 of 4 judged queries"):
        df = evaluate(RUN, QRELS, DEFAULT_MEASURES + ("recip_rank",))
    got = _table(df)
    assert list(df.columns) == ["qid", "measure", "value"]
    assert sorted({q for q, _ in got}) == ["q1", "q2", "q3", "q5"]
    # q1: ranking d3(0) d1(2) d5(unjudged) d2(1); linear gains, log2(rank+1) discount
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert got[("q1", "ndcg_cut_10")] == pytest.approx(dcg / idcg, abs=1e-12)
    assert got[("q1", "recip_rank_10")] == pytest.approx(0.5)
    assert got[("q1", "recall_100")] == pytest.approx(2 / 3)
    assert got[("q1", "recall_1000")] == pytest.approx(2 / 3)
    # q2: the only relevant doc sits at rank 11: MRR@10 is 0, full reciprocal rank 1/11
    assert got[("q2", "recip_rank_10")] == 0.0
    assert got[("q2", "recip_rank")] == pytest.approx(1 / 11)
    assert got[("q2", "ndcg_cut_10")] == 0.0
    assert got[("q2", "recall_100")] == 1.0
    # q3: judged, absent from the run -> 0 everywhere
    for m in DEFAULT_MEASURES:
        assert got[("q3", m)] == 0.0
    # q5: tie broken by doc id descending -> relevant "a" is third
    assert got[("q5", "recip_rank")] == pytest.approx(1 / 3)
    assert got[("q5", "ndcg_cut_10")] == pytest.approx(1 / math.log2(4))


def test_mrr_cutoff_truncates_in_trec_order():
    qrels = {"q5": {"a": 1}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = evaluate({"q5": RUN["q5"]}, qrels, ["recip_rank_2", "recip_rank_3"])
    got = _table(df)
    assert got[("q5", "recip_rank_2")] == 0.0  # top-2 in trec order is c, b
    assert got[("q5", "recip_rank_3")] == pytest.approx(1 / 3)


def test_relevance_level_changes_binary_measures_only():
    run = {"q1": RUN["q1"]}
    qrels = {"q1": QRELS["q1"]}
    lvl2 = _table(evaluate(run, qrels, ["recip_rank", "ndcg_cut_10"], relevance_level=2))
    lvl1 = _table(evaluate(run, qrels, ["recip_rank", "ndcg_cut_10"]))
    assert lvl2[("q1", "recip_rank")] == pytest.approx(0.5)  # d1 (grade 2) at rank 2
    assert lvl1[("q1", "ndcg_cut_10")] == lvl2[("q1", "ndcg_cut_10")]


def test_unknown_measure_is_refused():
    with pytest.raises(RepbenchError, match="unknown measure 'ndgc@10'"):  # ndcg@10 is ir_measures' nDCG@10
        evaluate(RUN, {"q1": QRELS["q1"]}, ["ndgc@10"])


def test_summary_counts_missing_queries():
    with pytest.warns(MissingQueriesWarning):
        df = evaluate(RUN, QRELS)
    s = summarize(df).set_index("measure")
    assert (s["n"] == 4).all()
    manual = (0.5 + 0.0 + 0.0 + 1 / 3) / 4
    assert s.loc["recip_rank_10", "mean"] == pytest.approx(manual)


def test_trec_order_and_write_read_roundtrip(tmp_path):
    assert [d for d, _ in trec_order({"a": 1.0, "b": 2.0, "c": 1.0, "B": 1.0})] == ["b", "c", "a", "B"]
    run = round_scores({"q1": {"d1": 0.1234567, "d2": 0.9, "d3": 0.1234566}})
    path = write_run(tmp_path / "x.trec", run, tag="mode")
    lines = path.read_text().splitlines()
    assert lines == [
        "q1 Q0 d2 1 0.900000 mode",
        "q1 Q0 d3 2 0.123457 mode",  # rounding made a tie: doc id descending decides
        "q1 Q0 d1 3 0.123457 mode",
    ]
    assert read_run(path) == run
    with pytest.raises(ValueError, match="whitespace"):
        write_run(tmp_path / "y.trec", {"q 1": {"d": 1.0}})


# ---------------------------------------------------------------- input errors
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("q1 Q0 d1 1 0.5\n", "run.trec:1: expected 6 whitespace-separated fields 'qid Q0 docid rank score tag', got 5"),
        ("# c\nq1 Q0 d1 1 high tag\n", "run.trec:2: expected a numeric score in column 5, got 'high'"),
        ("q1 Q0 d1 1 nan tag\n", "run.trec:1: expected a finite score in column 5, got 'nan'"),
        ("q1 Q0 d1 1 0.5 t\n\nq1 Q0 d1 2 0.4 t\n",
         "run.trec:3: duplicate doc id 'd1' for query 'q1' (first on line 1)"),
    ],
)
def test_read_run_errors(tmp_path, text, message):
    p = tmp_path / "run.trec"
    p.write_text(text)
    with pytest.raises(InputError) as exc:
        read_run(p)
    assert str(exc.value) == f"{p.parent}/{message}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("q1 0 d1 yes\n", "qrels:1: expected an integer relevance grade in column 4, got 'yes'"),
        ("q1 d1 1\n", "qrels:1: expected the BEIR header 'query-id<TAB>corpus-id<TAB>score' on the first "
                      "line of a 3-column qrels file, got 'q1 d1 1'"),
        ("query-id\tcorpus-id\tscore\nq1\td1\t1.5\n",
         "qrels:2: expected an integer relevance grade in column 3, got '1.5'"),
        ("q1 0 d1 1\nq1 d2 1\n", "qrels:2: expected 4 fields 'qid iter docid grade', got 3"),
        ("q1 0 d1 1 extra x\n", "qrels:1: expected 4 fields 'qid iter docid grade' (TREC) or the 3-column "
                                "BEIR header, got 6 fields"),
        ("q1 0 d1 1\nq1 0 d1 0\n", "qrels:2: duplicate judgement for query 'q1', doc 'd1' (first on line 1)"),
    ],
)
def test_read_qrels_errors(tmp_path, text, message):
    p = tmp_path / "qrels"
    p.write_text(text)
    with pytest.raises(InputError) as exc:
        read_qrels(p)
    assert str(exc.value) == f"{p.parent}/{message}"


def test_read_qrels_beir_and_trec_agree(tmp_path):
    beir = tmp_path / "b.tsv"
    beir.write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\nq2\td3\t1\n")
    trec = tmp_path / "t.txt"
    trec.write_text("q1 0 d1 2\nq1 0 d2 0\n# comment\nq2 0 d3 1\n")
    assert read_qrels(beir) == read_qrels(trec) == {"q1": {"d1": 2, "d2": 0}, "q2": {"d3": 1}}


# ---------------------------------------------------------------- against trec_eval itself
MEASURES_TE = ["map", "recip_rank", "P_10", "recall_100", "recall_1000", "ndcg_cut_10"]


def _trec_eval_lines(name: str, measures: list[str]) -> list[str]:
    keep = set(measures) | {"num_q"}
    return [ln for ln in (TREC_EVAL / name).read_text().splitlines() if ln.split("\t")[0].strip() in keep]


def test_matches_trec_eval_out_test_aq():
    """`trec_eval -m all_trec -q qrels.test results.test`, compared line by line as text."""
    _need_trec_eval_data()
    df = evaluate(read_run(TREC_EVAL / "results.test"), read_qrels(TREC_EVAL / "qrels.test"), MEASURES_TE)
    ours = format_trec_eval(df, per_query_rows=True).splitlines()
    assert sorted(ours) == sorted(_trec_eval_lines("out.test.aq", MEASURES_TE))


def test_missing_query_matches_trec_eval_minus_c():
    """results.trunc lacks query 302; `trec_eval -c` scores it 0 and averages over all 3 (out.test.aqc)."""
    _need_trec_eval_data()
    with pytest.warns(MissingQueriesWarning, match="1 of 3 judged queries"):
        df = evaluate(read_run(TREC_EVAL / "results.trunc"), read_qrels(TREC_EVAL / "qrels.test"), MEASURES_TE)
    ours = format_trec_eval(df, per_query_rows=True).splitlines()
    assert sorted(ours) == sorted(_trec_eval_lines("out.test.aqc", MEASURES_TE))


def test_qrels_comments_follow_trec_eval():
    _need_trec_eval_data()
    plain = read_qrels(TREC_EVAL / "qrels.test")
    commented = read_qrels(TREC_EVAL / "qrels.test.with-comments")
    assert commented["301"].pop("CR#93E-1860") == 0  # '#' inside a doc id is part of the id
    assert plain["301"].pop("CR93E-1860") == 0
    assert commented == plain
