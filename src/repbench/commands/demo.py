"""`repbench demo`: the whole pipeline on the embedded default, in a few minutes on a laptop CPU.

1. a seeded synthetic collection (planted relevant documents) written in BEIR layout;
2. an effectiveness sweep, K_q, K_p in {1, 4}, all five modes, for the real SmolLM2-135M-Instruct
   decoding K tokens (sequential, PromptReps) and the same weights read in one bidirectional pass
   (parallel; an ablation, not a trained diffusion LM), printing each query's top passages;
3. a latency run of the benchmark harness (tiny controlled pair + SmolLM2 pair, K in {1, 4, 16});
4. oracle-K and significance against PromptReps single-representation, then cross-validated adaptive K
   per query and the optimal-K analyses (`repbench adapt`) on the encode-time signals of both sweeps;
5. the report: figures, LaTeX/Markdown tables and report.pdf.
Every step is one of the public commands, called in-process, so the demo is also their smoke test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

DEMO_BACKBONES = ("smollm2-135m-instruct", "smollm2-135m-instruct:bidirectional")
BASELINE = "smollm2-135m-instruct/sequential/q1p1/single_dense"
DEMO_SUBDIRS = ("synthetic", "collection", "eval", "bench", "analysis", "external")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="results/demo", help="results directory (default results/demo)")
    parser.add_argument("--report", default="report", help="report directory (default report)")
    parser.add_argument("--docs", type=int, default=60, help="synthetic corpus size")
    parser.add_argument("--queries", type=int, default=12, help="synthetic query count")
    parser.add_argument("--doc-len", type=int, default=16, help="words per synthetic document")
    parser.add_argument("--skip-bench", action="store_true", help="skip the latency step")
    parser.add_argument("--no-pdf", action="store_true", help="do not compile report.pdf")
    parser.add_argument("--resume", action="store_true",
                        help="reuse the previous demo's sweep and encodings instead of starting clean")


def _step(title: str) -> float:
    print(f"\n=== {title} ===", flush=True)
    return time.perf_counter()


def _check(rc: int, what: str) -> None:
    if rc != 0:
        from repbench.errors import RepbenchError

        raise RepbenchError(f"demo step failed: {what} (exit code {rc})")


def _run_bench(cmd: list[str], json_path: Path) -> None:
    """`pytest bench/...` as a child, which must write json_path. xdist's worker variables are left out (a child that
    inherits them believes it is a worker and pytest-benchmark writes nothing); a run that wrote nothing is named."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    what = f"pytest {Path(cmd[3]).name}"
    _check(subprocess.call(cmd, env=env), what)
    if not json_path.is_file():
        from repbench.errors import RepbenchError

        raise RepbenchError(f"demo step failed: {what} exited 0 but wrote no {json_path} "
                            "(is pytest-benchmark disabled, e.g. --benchmark-disable in PYTEST_ADDOPTS?)")


def bench_suite_dir() -> Path:
    """The bench/ pytest suite the latency step runs: $REPBENCH_BENCH, else ./bench (a checkout).

    It is a test suite, not part of the installed package, so an installed repbench without a checkout
    runs the demo with --skip-bench.
    """
    import os

    from repbench.errors import RepbenchError

    directory = Path(os.environ.get("REPBENCH_BENCH") or "bench")
    if not (directory / "test_encode_latency.py").is_file():
        raise RepbenchError(f"{directory.resolve()}: not the repbench bench/ suite (test_encode_latency.py); run "
                            "the demo from a repbench checkout, set REPBENCH_BENCH to its bench/ folder, or pass "
                            "--skip-bench")
    return directory.resolve()


def _print_top_passages(collection, run_path: Path, n_queries: int = 4, depth: int = 3) -> None:
    from repbench.evaluation.trec import read_run, trec_order

    run = read_run(run_path)
    docs = dict(zip(collection.corpus_ids, collection.corpus_texts, strict=True))
    queries = dict(zip(*collection.judged_queries(), strict=True))
    print(f"top passages from {run_path.name}:")
    for qid in sorted(run)[:n_queries]:
        rel = collection.qrels.get(qid, {})
        print(f"  {qid}: {queries.get(qid, '')!r}")
        for rank, (doc, score) in enumerate(trec_order(run[qid])[:depth], start=1):
            mark = f"rel={rel[doc]}" if doc in rel else "     "
            print(f"    {rank}. {doc:>6} {score:8.4f} {mark}  {docs[doc][:70]}")


def _bm25_run(collection, path: Path) -> Path:
    """A lexical baseline over the demo collection, written as an ordinary TREC run file."""
    from repbench.evaluation.trec import round_scores, write_run
    from repbench.retrieval.bm25 import bm25_run

    qids, qtexts = collection.judged_queries()
    run = bm25_run(collection.corpus_ids, collection.corpus_texts, qids, qtexts)
    return write_run(path, round_scores(run), tag="bm25")


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from repbench.cli import main
    from repbench.evaluation.collections import synthetic_collection
    from repbench.evaluation.sweep_outputs import run_file_name
    from repbench.schema.tables import read_per_query, write_per_query

    out = Path(args.out)
    if not args.resume:  # only the demo's own sub-directories: --out may be shared with other results
        for sub in DEMO_SUBDIRS:
            shutil.rmtree(out / sub, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()

    t = _step("1. synthetic collection")
    collection = synthetic_collection(n_docs=args.docs, n_queries=args.queries, doc_len=args.doc_len, seed=0)
    data_dir = collection.save_beir(out / "synthetic")  # the directory name becomes the dataset name
    print(f"{len(collection.corpus_ids)} documents, {len(collection.qrels)} judged queries -> {data_dir}")

    t = _step("2. effectiveness sweep (K_q, K_p in {1, 4}, five modes)")
    tables = []
    for backbone in DEMO_BACKBONES:
        target = out / "eval" / backbone.replace(":", "_")
        _check(main(["evaluate", "--backbone", backbone, "--dataset", str(data_dir), "--kq", "1,4", "--kp", "1,4",
                     "--modes", "all", "--out", str(target), "--max-length", "128"]), f"evaluate {backbone}")
        tables.append(read_per_query(target / "per_query.csv"))
    per_query = pd.concat(tables, ignore_index=True)
    summary = (per_query[per_query.measure == "ndcg_cut_10"]
               .groupby(["backbone", "encoder", "k_q", "k_p", "mode"])["value"].mean().unstack("mode"))
    with pd.option_context("display.width", 160, "display.precision", 3):
        print("\nnDCG@10 by cell and mode:\n" + summary.to_string())
    best_parallel = out / "eval" / DEMO_BACKBONES[1].replace(":", "_") / "runs" / (
        run_file_name(f"{DEMO_BACKBONES[1]}/parallel/q4p4/fusion_multi_sparse_max"))
    if best_parallel.exists():
        _print_top_passages(collection, best_parallel)
    bm25 = _bm25_run(collection, out / "external" / "bm25.trec")
    print(f"[{time.perf_counter() - t:.0f}s]")

    if not args.skip_bench:
        t = _step("3. latency: sequential vs parallel per K (pytest bench/)")
        bench_json = out / "bench" / "bench.json"
        bench_json.parent.mkdir(parents=True, exist_ok=True)
        bench_dir = bench_suite_dir()
        cmd = [sys.executable, "-m", "pytest", str(bench_dir / "test_encode_latency.py"), "-q", "-p", "no:cacheprovider",
               "--backbones", "tiny-ar,tiny-diffusion,smollm2-135m-instruct,smollm2-135m-instruct:bidirectional",
               "--k", "1,4,16", "--input-tokens", "32,128", "--benchmark-json", str(bench_json)]
        _run_bench(cmd, bench_json)
        search_json = out / "bench" / "search.json"
        _run_bench([sys.executable, "-m", "pytest", str(bench_dir / "test_search_latency.py"), "-q",
                    "-p", "no:cacheprovider", "--benchmark-json", str(search_json)], search_json)
        print(f"[{time.perf_counter() - t:.0f}s]")

    t = _step("4. oracle-K, significance and adaptive K")
    analysis_dir = out / "analysis"
    analysis_dir.mkdir(parents=True, exist_ok=True)
    combined = analysis_dir / "combined_per_query_input.csv"
    write_per_query(combined, per_query)
    _check(main(["analyze", "--per-query", str(combined), "--baseline", BASELINE, "--measure", "ndcg_cut_10",
                 "--out", str(analysis_dir)]), "analyze")
    print("\nadaptive K per query (NOTE: the demo's backbones are SmolLM2-135M and the same weights read "
          "bidirectionally, not trained diffusion LMs; the numbers show the machinery, not the paper's models)")
    sweeps = [str(out / "eval" / b.replace(":", "_") / "per_query.csv") for b in DEMO_BACKBONES]
    _check(main(["adapt", "--per-query", *sweeps, "--out", str(analysis_dir / "adapt"), "--measure", "ndcg_cut_10",
                 "--bootstrap", "2000", "--permutations", "2000"]), "adapt")
    print(f"[{time.perf_counter() - t:.0f}s]")

    t = _step("5. report")
    # BM25 as an external TREC run: the paper-style table's baseline and a reference line in the K figure.
    report_args = ["report", "--results", str(out), "--out", str(args.report), "--run", f"bm25={bm25}"]
    if args.no_pdf:
        report_args.append("--no-pdf")
    _check(main(report_args), "report")
    pdf = Path(args.report) / "report.pdf"
    print(f"\ndemo finished in {time.perf_counter() - t_all:.0f}s")
    print(f"results: {out.resolve()}")
    print(f"report:  {pdf.resolve() if pdf.exists() else Path(args.report).resolve() / 'report.md'}")
    return 0
