"""`repbench eval-run RUN QRELS`: score any TREC run file, printed as trec_eval 10 prints it, or as CSV.

Options follow trec_eval's: -q, -c, -M N, -l N, and -m repeated, each one measure in trec_eval's syntax
(P.5,7,3, ndcg_cut.10,20, utility.2,-1,0,0, ndcg.1=3,2=9, all_trec). Note the argument order: run, then
qrels (trec_eval takes qrels first).

Example: repbench eval-run results/adi/runs/x.trec data/adi/qrels/test.tsv -q -m all_trec
"""

from __future__ import annotations

import argparse
import sys

from repbench.evaluation.measures import DEFAULT_MEASURES

# The readers and metrics (pandas, pytrec_eval) are imported when the command runs: --help answers at once.


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="TREC run file: qid Q0 docid rank score tag (rank ignored, as trec_eval)")
    parser.add_argument("qrels", help="TREC qrels (qid iter docid grade) or BEIR TSV (with header)")
    parser.add_argument("-m", "--measure", action="append", default=[], metavar="MEASURE",
                        help="one measure per flag, repeatable, in trec_eval's syntax: map, P.5,7,3, ndcg_cut.10,20, "
                             "utility.2,-1,0,0, ndcg.1=3,2=9,4=4.5, official, all_trec; also ndcg_cut_10 and "
                             "recip_rank_<N> (MRR@N)")
    parser.add_argument("--measures", nargs="+", default=[],
                        help="measure names, comma or space separated (no parametrised measures: use -m); "
                             f"default without -m: num_q {' '.join(DEFAULT_MEASURES)}")
    parser.add_argument("-q", "--per-query", action="store_true", help="one line per measure and query, then 'all'")
    parser.add_argument("-c", "--complete", action="store_true",
                        help="average over every qrels query, a judged query missing from the run scoring 0 "
                             "(trec_eval -c; what `repbench evaluate` does); default: over the judged queries "
                             "the run retrieved for, as trec_eval")
    parser.add_argument("-M", "--max-docs", type=int, default=None, metavar="N",
                        help="evaluate only each query's top N documents in trec_eval order (trec_eval -M)")
    parser.add_argument("-l", "--relevance-level", type=int, default=1,
                        help="minimum grade counted relevant by binary measures (default 1; 2 for TREC DL MRR)")
    parser.add_argument("--format", choices=("trec", "csv"), default="trec",
                        help="trec: 'measure<TAB>qid<TAB>value' as trec_eval prints; csv: qid,measure,value "
                             "(with -q) or measure,mean,n where mean is trec_eval's 'all' value")


def run(args: argparse.Namespace) -> int:
    from repbench.evaluation.metrics import summarize
    from repbench.evaluation.sniff import check_run_then_qrels
    from repbench.evaluation.trec import read_qrels, read_run_with_id, require_relevant
    from repbench.evaluation.trec_eval_text import trec_eval

    measures = [*args.measure, *(m for item in args.measures for m in item.split(",") if m)]
    if not measures:
        measures = ["num_q", *DEFAULT_MEASURES]
    check_run_then_qrels(args.run, args.qrels, "eval-run")
    run_, run_id = read_run_with_id(args.run)
    qrels = require_relevant(read_qrels(args.qrels), args.qrels, args.relevance_level)
    text, table, notes = trec_eval(run_, qrels, measures, run_id=run_id, per_query=args.per_query,
                                   complete=args.complete, max_docs=args.max_docs,
                                   relevance_level=args.relevance_level)
    for note in notes:
        print(f"repbench eval-run: warning: {note}", file=sys.stderr)
    if args.format == "csv":
        frame = table.frame()  # pandas only here: the trec format prints without it
        sys.stdout.write(frame.to_csv(index=False) if args.per_query else summarize(frame).to_csv(index=False))
    else:
        sys.stdout.write(text)
    return 0
