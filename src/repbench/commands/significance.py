"""`repbench significance`: paired significance tests straight from TREC run files (first run = baseline)."""

from __future__ import annotations

import argparse
import sys

from repbench.commands.analyze import add_significance_options
from repbench.errors import RepbenchError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="TREC run files, or NAME=FILE to name one (bm25=runs/bm25.trec, as in `repbench "
                             "report --run`); the first is the baseline; unnamed runs are named by file stem "
                             "(by file name where two stems coincide)")
    parser.add_argument("--qrels", required=True, help="qrels (TREC 4 columns or BEIR TSV)")
    parser.add_argument("--measure", default="ndcg_cut_10", help="trec_eval measure name (default: ndcg_cut_10)")
    parser.add_argument("--relevance-level", type=int, default=1,
                        help="minimum grade counted relevant by binary measures (default: 1)")
    parser.add_argument("--format", choices=("text", "csv"), default="text",
                        help="csv prints the significance.csv columns (default: text)")
    parser.add_argument("--dataset", help="dataset name written into the table's dataset column (default: the "
                                          "collection's folder for BEIR-layout qrels, <dataset>/qrels/test.tsv, "
                                          "else the qrels file name without its extensions)")
    parser.add_argument("--out", metavar="FILE", help="also write the table as CSV to FILE (atomically)")
    add_significance_options(parser)


def run(args: argparse.Namespace) -> int:
    from repbench.analysis.perquery import align
    from repbench.analysis.runs import dataset_name, read_qrels_file, read_runs, runs_table
    from repbench.analysis.significance import significance_table
    from repbench.analysis.summary import format_significance
    from repbench.evaluation.trec import require_relevant
    from repbench.schema.tables import write_significance

    if len(args.runs) < 2:
        raise RepbenchError("give at least two runs: a baseline and one system")
    runs = read_runs(args.runs)
    qrels = require_relevant(read_qrels_file(args.qrels), args.qrels, args.relevance_level)
    tidy, notes = runs_table(runs, qrels, args.measure, relevance_level=args.relevance_level,
                             retrieved_only=args.intersect)
    aligned = align(tidy, intersect=args.intersect)
    table = significance_table(
        aligned.matrix, baseline=next(iter(runs)), all_pairs=args.all_pairs, measure=args.measure,
        dataset=args.dataset or dataset_name(args.qrels),
        test=args.test, correction=args.correction, alpha=args.alpha, n_permutations=args.permutations,
        n_bootstrap=args.bootstrap, seed=args.seed,
    )
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if args.out:
        write_significance(args.out, table)
    if args.format == "csv":
        sys.stdout.write(table.to_csv(index=False))
    else:
        print(format_significance(table, aligned.describe()))
    return 0
