"""compare and significance papercuts: a summary line, a non-zero exit when nothing matched, a warning
when runs were taken under different load, dataset names from the collection, run tags naming the system
and run file names without ':'."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from test_compare_latency import cell, write_bench

from repbench.analysis.runs import dataset_name, read_runs, run_names
from repbench.cli import main
from repbench.evaluation.sweep_outputs import run_file_name


def _samples(seed: int, scale: float = 1.0) -> list[float]:
    return list(np.random.default_rng(seed).normal(0.010 * scale, 0.0002, 40))


def test_summary_line_counts_verdicts(tmp_path, capsys):
    base = write_bench(tmp_path / "b.json", [cell(_samples(0), k=1), cell(_samples(1), k=4)])
    new = write_bench(tmp_path / "n.json", [cell(_samples(2), k=1), cell(_samples(3, 1.5), k=4)])
    assert main(["compare", str(base), str(new)]) == 0
    out = capsys.readouterr().out
    assert "latency: 0 faster / 1 same / 1 slower of 2 cells compared" in out


def test_zero_matched_cells_exit_non_zero(tmp_path, capsys):
    base = write_bench(tmp_path / "b.json", [cell(_samples(0), k=1)])
    new = write_bench(tmp_path / "n.json", [cell(_samples(1), k=8)])
    assert main(["compare", str(base), str(new)]) == 1
    assert "0 cells matched between BASE" in capsys.readouterr().err


def test_different_load_is_warned(tmp_path, capsys):
    quiet = [cell(_samples(0), k=1, load_avg_before=0.1, load_avg_after=0.1)]
    busy = [cell(_samples(1), k=1, load_avg_before=9.0, load_avg_after=8.5)]
    base, new = write_bench(tmp_path / "b.json", quiet), write_bench(tmp_path / "n.json", busy)
    assert main(["compare", str(base), str(new)]) == 0
    out = capsys.readouterr().out
    assert "different load: NEW at 8.8, BASE at 0.1" in out.replace("\n", " ")
    same = write_bench(tmp_path / "s.json", [cell(_samples(2), k=1, load_avg_before=0.3, load_avg_after=0.2)])
    assert main(["compare", str(base), str(same)]) == 0
    assert "different load" not in capsys.readouterr().out


def test_dataset_names_come_from_the_collection():
    assert dataset_name("data/scifact/qrels/test.tsv") == "scifact"
    assert dataset_name("qrels.test") == "qrels"
    assert dataset_name("trec/robust04.qrels.gz") == "robust04"


def test_runs_can_be_named(tmp_path):
    run = tmp_path / "x.trec"
    run.write_text("1 Q0 d1 1 1.0 t\n")
    assert run_names([f"bm25={run}", str(run)]) == ["bm25", "x"]
    assert list(read_runs([f"bm25={run}"])) == ["bm25"]


def test_run_files_and_tags_name_the_system(tmp_path):
    assert run_file_name("smollm2-135m-instruct:bidirectional/parallel/q4p4/sparse_max") == \
        "smollm2-135m-instruct_bidirectional__parallel__q4p4__sparse_max.trec"
    from repbench.evaluation.collections import synthetic_collection

    data = synthetic_collection(30, 4, seed=3).save_beir(tmp_path / "syn")
    assert main(["evaluate", "--backbone", "tiny-diffusion", "--dataset", str(data), "--kq", "1", "--kp", "2",
                 "--modes", "sparse_max", "--out", str(tmp_path / "ev"), "--no-progress"]) == 0
    runs = list((tmp_path / "ev" / "runs").glob("*.trec"))
    assert [p.name for p in runs] == ["tiny-diffusion__parallel__q1p2__sparse_max.trec"]
    assert ":" not in runs[0].name
    tags = {line.split()[5] for line in Path(runs[0]).read_text().splitlines()}
    assert tags == {"tiny-diffusion/parallel/q1p2/sparse_max"}


def test_compare_takes_trec_runs_with_qrels(capsys):
    from shared_data import require_data

    te = require_data("trec_eval_test")
    argv = ["compare", f"bm25={te / 'results.test'}", str(te / "results.test"), "--qrels", str(te / "qrels.test")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    # the same run on both sides: every measure OK; MAP as trec_eval's out.test prints it
    assert "effectiveness: 5 OK / 0 OKish / 0 FAIL of 5 cells compared" in out
    assert "0.1785" in out
    assert main(argv[:3]) == 2
    assert "give --qrels" in capsys.readouterr().err
