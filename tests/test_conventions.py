"""The conventions IR researchers bring from trec_eval, ir_measures and ranx.

References are trec_eval 10's own outputs (`out.test.a` in ../shared/data/trec_eval_test) and names
spelled by hand; nothing is compared with repbench's own output except where the claim is "A equals B".
"""

from __future__ import annotations

import pandas as pd
import pytest
from shared_data import require_data

import repbench
from repbench.cli import main
from repbench.errors import RepbenchError
from repbench.evaluation.measures import names


def _reference(name: str) -> float:
    out = require_data("trec_eval_test", "out.test.a").read_text()
    return next(float(line.split()[2]) for line in out.splitlines() if line.split()[:2] == [name, "all"])


def _eval_run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(["eval-run", *argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_eval_run_names_swapped_files(capsys):
    te = require_data("trec_eval_test")
    rc, out, err = _eval_run(capsys, str(te / "qrels.test"), str(te / "results.test"))  # trec_eval's order
    assert rc == 2 and out == ""
    assert "look swapped" in err and "qrels.test is qrels" in err and "results.test is a run" in err
    assert f"repbench eval-run {te / 'results.test'} {te / 'qrels.test'}" in err


@pytest.mark.parametrize(("ir_name", "trec_name", "printed"), [
    ("nDCG@10", "ndcg_cut.10", "ndcg_cut_10"), ("ndcg@10", "ndcg_cut.10", "ndcg_cut_10"), ("P@5", "P.5", "P_5"),
    ("R@100", "recall.100", "recall_100"), ("RR@10", "recip_rank_10", "recip_rank_10"), ("AP", "map", "map"),
    ("mrr@10", "recip_rank_10", "recip_rank_10"),
])
def test_ir_measures_names_equal_trec_eval_names(capsys, ir_name, trec_name, printed):
    te = require_data("trec_eval_test")
    files = (str(te / "results.test"), str(te / "qrels.test"))
    rc_ir, out_ir, _ = _eval_run(capsys, *files, "-q", "-m", ir_name)
    rc_trec, out_trec, _ = _eval_run(capsys, *files, "-q", "-m", trec_name)
    assert rc_ir == rc_trec == 0 and out_ir == out_trec
    if printed in ("ndcg_cut_10", "P_5", "recall_100", "map"):
        all_line = [line.split() for line in out_ir.splitlines() if line.split()[1] == "all"][0]
        assert all_line[0] == printed and float(all_line[2]) == pytest.approx(_reference(printed), abs=5e-5)


@pytest.mark.parametrize(("typo", "suggestion"), [("ndcg_cut10", "'ndcg_cut_10'"), ("recal_100", "'recall_100'"),
                                                   ("nDGC@10", "'nDCG@10'")])
def test_unknown_measure_suggests_the_close_name(typo, suggestion):
    with pytest.raises(RepbenchError, match="did you mean") as info:
        names([typo])
    assert suggestion in str(info.value)


def test_backbone_and_mode_typos_suggest_the_name(capsys):
    from repbench.backbones import get_spec
    from repbench.retrieval.search import parse_modes

    with pytest.raises(RepbenchError, match=r"did you mean 'smollm2-135m-instruct'"):
        get_spec("smollm2-135m-instrct")
    with pytest.raises(RepbenchError, match=r"did you mean 'sparse_max'"):
        parse_modes("sparse_maxx")


def test_pandas_api_matches_trec_eval_from_paths_dicts_and_frames():
    te = require_data("trec_eval_test")
    by_path = repbench.evaluate(te / "results.test", te / "qrels.test", ["nDCG@10", "AP", "P@5"])
    assert list(by_path.columns) == ["qid", "measure", "value"]
    means = by_path.groupby("measure")["value"].mean()
    for name in ("ndcg_cut_10", "map", "P_5"):
        assert means[name] == pytest.approx(_reference(name), abs=5e-5)
    run_rows = [line.split() for line in (te / "results.test").read_text().splitlines() if line.strip()]
    run = pd.DataFrame({"query_id": [r[0] for r in run_rows], "doc_id": [r[2] for r in run_rows],
                        "score": [float(r[4]) for r in run_rows]})
    qrels_rows = [line.split() for line in (te / "qrels.test").read_text().splitlines() if line.strip()]
    qrels = pd.DataFrame({"query_id": [r[0] for r in qrels_rows], "doc_id": [r[2] for r in qrels_rows],
                          "relevance": [int(r[3]) for r in qrels_rows]})
    by_frame = repbench.evaluate(run, qrels, "nDCG@10,AP,P@5")
    pd.testing.assert_frame_equal(by_frame, by_path)
