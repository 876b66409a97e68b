"""`repbench eval-run` end to end, against trec_eval's own reference output."""

from __future__ import annotations

import pytest
from shared_data import DATA, require_data

from repbench.cli import main

TE = DATA / "trec_eval_test"


def _cached(reps):
    """Cached encodings: query-side file pairs plus passage-side stores (a directory with its manifest)."""
    return len(list(reps.glob("*.safetensors"))) + len(list(reps.glob("*/manifest.json")))


def need_te() -> None:
    require_data("trec_eval_test", "results.test")


def test_eval_run_prints_trec_eval_layout(capsys):
    need_te()
    measures = ["map", "P_10", "recip_rank", "ndcg_cut_10"]
    rc = main(["eval-run", str(TE / "results.test"), str(TE / "qrels.test"), "--measures", ",".join(measures),
               "--per-query"])
    assert rc == 0
    ours = capsys.readouterr().out.splitlines()
    # trec_eval's order (map, recip_rank, P_10, ndcg_cut_10 per query), and no num_q unless asked for
    ref = [ln for ln in (TE / "out.test.aq").read_text().splitlines() if ln.split("\t")[0].strip() in measures]
    assert ours == ref
    assert main(["eval-run", str(TE / "results.test"), str(TE / "qrels.test")]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "num_q                 \tall\t3"  # the default set has it


def test_eval_run_csv_and_missing_query_warning(capsys):
    need_te()
    argv = ["eval-run", str(TE / "results.trunc"), str(TE / "qrels.test"), "-m", "recall_1000", "-m", "num_rel",
            "--format", "csv", "-q"]
    assert main([*argv, "-c"]) == 0
    captured = capsys.readouterr()
    # out.test.aqc (trec_eval -c): 301 0.1498, 302 0 (absent from the run) with its 77 relevant, 303 0.6000
    lines = captured.out.splitlines()
    assert lines[0] == "qid,measure,value"
    values = {tuple(ln.split(",")[:2]): float(ln.split(",")[2]) for ln in lines[1:]}
    assert values[("302", "recall_1000")] == 0.0 and values[("302", "num_rel")] == 77
    assert round(values[("301", "recall_1000")], 4) == 0.1498 and round(values[("303", "recall_1000")], 4) == 0.6
    assert "1 of 3 judged queries have no retrieved documents and score 0" in captured.err
    # trec_eval's default: 302 is left out, of the rows and of the average (recall (0.1498 + 0.6) / 2)
    assert main(argv[:-1]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == "measure,mean,n"
    summary = {ln.split(",")[0]: (float(ln.split(",")[1]), int(ln.split(",")[2])) for ln in lines[1:]}
    assert summary["num_rel"] == (474 + 10, 2)  # a count: summed, as trec_eval's "all"
    assert summary["recall_1000"][0] == pytest.approx((0.1498 + 0.6) / 2, abs=1e-4)
    assert "are left out of the average" in captured.err


def test_eval_run_bad_file_exits_2_with_location(tmp_path, capsys):
    run = tmp_path / "bad.trec"
    run.write_text("1 Q0 d1 1 0.5 t\n1 Q0 d1 2 0.4 t\n")
    qrels = tmp_path / "q.txt"
    qrels.write_text("1 0 d1 1\n")
    assert main(["eval-run", str(run), str(qrels)]) == 2
    assert f"{run}:2: duplicate doc id 'd1' for query '1' (first on line 1)" in capsys.readouterr().err
    good = tmp_path / "good.trec"
    good.write_text("1 Q0 d1 1 0.5 t\n")
    assert main(["eval-run", str(good), str(qrels), "--measures", "ndgc@10"]) == 2  # ndcg@10 is ir_measures'
    assert "unknown measure 'ndgc@10' (did you mean" in capsys.readouterr().err


def test_evaluate_command_end_to_end_on_tiny_backbone(tmp_path, capsys):
    from repbench.evaluation.collections import synthetic_collection

    data = synthetic_collection(40, 6, seed=5).save_beir(tmp_path / "syn")
    out = tmp_path / "out"
    argv = ["evaluate", "--backbone", "tiny-ar", "--dataset", str(data), "--kq", "1", "--kp", "1,2",
            "--out", str(out), "--depth", "20", "--max-length", "64", "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "synthetic-40d-6q-s5" not in printed and "syn: 40 docs, 6 queries; tiny-ar / sequential" in printed
    table = (out / "per_query.csv").read_text().splitlines()
    assert table[0] == "dataset,backbone,family,encoder,k_q,k_p,mode,qid,measure,value"
    assert len(table) - 1 == (3 + 5) * 6 * 5  # cells x queries x 5 default measures (MAP included)
    assert table[1].startswith("syn,tiny-ar,ar,sequential,1,1,single_dense,q000,ndcg_cut_10,")
    assert main([*argv[:-1]]) == 0  # resumed: same output, nothing recomputed
    assert (out / "per_query.csv").read_text().splitlines() == table
    assert main(["evaluate", "--backbone", "tiny-ar", "--dataset", str(data), "--kq", "1,0", "--out",
                 str(tmp_path / "o2")]) == 2
    assert "K values must be distinct positive integers, got '1,0'" in capsys.readouterr().err


def test_evaluate_exposes_and_records_the_method_options(tmp_path, capsys):
    import json

    from repbench.evaluation.collections import synthetic_collection

    data = synthetic_collection(12, 3, seed=6).save_beir(tmp_path / "syn")
    common = ["--dataset", str(data), "--kq", "1", "--kp", "2", "--depth", "5", "--max-length", "96",
              "--no-progress", "--modes", "single_dense"]
    out = tmp_path / "out"
    argv = ["evaluate", "--backbone", "tiny-diffusion", *common, "--out", str(out), "--readout", "aligned",
            "--prompt-variant", "three", "--denoise-steps", "2", "--confidence", "maskgit_plus", "--no-truncate",
            "--sparse-top-k", "16", "--relevance-level", "2"]
    assert main(argv) == 0
    state = json.loads((out / "sweep_state.json").read_text())
    assert {k: state[k] for k in ("readout", "prompt_variant", "denoise_steps", "confidence", "truncate",
                                  "sparse_top_k", "relevance_level", "early_stop")} == {
        "readout": "aligned", "prompt_variant": "three", "denoise_steps": 2, "confidence": "maskgit_plus",
        "truncate": False, "sparse_top_k": 16, "relevance_level": 2, "early_stop": "off"}
    assert _cached(out / "reps") == 2
    config = json.loads((out / "metadata.json").read_text())["config"]
    assert config["dtype"] == "float32" and config["batch_rule"].startswith("batch-independent")
    # the same cells with the default options, sharing the cache: encoded anew, next to the first two
    assert main(["evaluate", "--backbone", "tiny-diffusion", *common, "--out", str(tmp_path / "o3"),
                 "--cache", str(out / "reps")]) == 0
    assert _cached(out / "reps") == 4
    capsys.readouterr()
    bad = ["evaluate", "--backbone", "tiny-ar", *common, "--out", str(tmp_path / "o2"), "--readout", "aligned"]
    assert main(bad) == 2
    assert "the sequential encoder does not use readout" in capsys.readouterr().err
    assert not (tmp_path / "o2" / "sweep_state.json").exists()
