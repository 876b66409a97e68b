"""`repbench eval-run RUN QRELS`: score any TREC run file, printed in trec_eval's layout or as CSV.

Example: repbench eval-run results/adi/runs/x.trec ../shared/data/adi/qrels/test.tsv --per-query
"""

from __future__ import annotations

import argparse
import sys
import warnings

from repbench.evaluation.metrics import DEFAULT_MEASURES, MissingQueriesWarning, evaluate, format_trec_eval
from repbench.evaluation.trec import read_qrels, read_run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="TREC run file: qid Q0 docid rank score tag (rank ignored, as trec_eval)")
    parser.add_argument("qrels", help="TREC qrels (qid iter docid grade) or BEIR TSV (with header)")
    parser.add_argument("--measures", nargs="+", default=list(DEFAULT_MEASURES),
                        help="trec_eval measure names (comma or space separated); recip_rank_<N> is MRR@N "
                             f"(default: {' '.join(DEFAULT_MEASURES)})")
    parser.add_argument("--per-query", action="store_true", help="one line per measure and query, then 'all'")
    parser.add_argument("--format", choices=("trec", "csv"), default="trec",
                        help="trec: 'measure<TAB>qid<TAB>value' as trec_eval prints; csv: a qid,measure,value table")
    parser.add_argument("--relevance-level", type=int, default=1,
                        help="minimum grade counted relevant by binary measures (default 1; 2 for TREC DL MRR)")


def run(args: argparse.Namespace) -> int:
    measures = [m for item in args.measures for m in item.split(",") if m]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MissingQueriesWarning)
        table = evaluate(read_run(args.run), read_qrels(args.qrels), measures, relevance_level=args.relevance_level)
    for w in caught:
        print(f"repbench eval-run: warning: {w.message}", file=sys.stderr)
    if args.format == "csv":
        if args.per_query:
            sys.stdout.write(table.to_csv(index=False))
        else:
            means = table.groupby("measure", sort=False)["value"].agg(mean="mean", n="count").reset_index()
            sys.stdout.write(means.to_csv(index=False))
    else:
        sys.stdout.write(format_trec_eval(table, per_query_rows=args.per_query))
    return 0
