"""`repbench analyze`: significance tests and the per-query oracle over K from a per_query.csv."""

from __future__ import annotations

import argparse
from pathlib import Path

from repbench.errors import RepbenchError
from repbench.io import atomic_write_json
from repbench.stats.choices import CORRECTIONS, TESTS


def add_significance_options(parser: argparse.ArgumentParser) -> None:
    """Options shared with `repbench significance`."""
    parser.add_argument("--test", choices=TESTS, default="t", help="paired test (default: t)")
    parser.add_argument("--correction", choices=CORRECTIONS, default="holm",
                        help="multiple-comparison correction across the table (default: holm)")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level (default: 0.05)")
    parser.add_argument("--all-pairs", action="store_true", help="compare every pair of systems")
    parser.add_argument("--intersect", action="store_true",
                        help="keep only queries every system has (default: missing queries score 0)")
    parser.add_argument("--permutations", type=int, default=10_000,
                        help="randomization-test permutations (default: 10000)")
    parser.add_argument("--bootstrap", type=int, default=10_000, help="bootstrap resamples for CIs (default: 10000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the permutations and bootstrap (default: 0)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--per-query", required=True, metavar="FILE", help="per_query.csv from `repbench evaluate`")
    parser.add_argument("--baseline", metavar="SYSTEM",
                        help="baseline system backbone/encoder/q{k_q}p{k_p}/mode (required unless --all-pairs)")
    parser.add_argument("--measure", default="ndcg_cut_10", help="measure to analyse (default: ndcg_cut_10)")
    parser.add_argument("--dataset", help="dataset to analyse when the table holds several")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    add_significance_options(parser)
    parser.add_argument("--budget-q", type=int, metavar="B", help="oracle: only cells with K_q <= B")
    parser.add_argument("--budget-p", type=int, metavar="B", help="oracle: only cells with K_p <= B")
    parser.add_argument("--fixed-kp", type=int, nargs="+", metavar="K",
                        help="oracle scope kq: the fixed K_p values (default: every K_p present)")
    parser.add_argument("--fixed-kq", type=int, nargs="+", metavar="K",
                        help="oracle scope kp: the fixed K_q values (default: every K_q present)")


def run(args: argparse.Namespace) -> int:
    from repbench.analysis.oracle import oracle_tables
    from repbench.analysis.significance import compare_per_query
    from repbench.analysis.summary import format_oracle, format_significance
    from repbench.schema.tables import read_per_query, write_oracle, write_oracle_cells, write_significance

    if args.baseline is None and not args.all_pairs:
        raise RepbenchError("give --baseline SYSTEM or --all-pairs")
    per_query = read_per_query(args.per_query)
    table, aligned = compare_per_query(
        per_query, args.measure, baseline=args.baseline, all_pairs=args.all_pairs, dataset=args.dataset,
        intersect=args.intersect, test=args.test, correction=args.correction, alpha=args.alpha,
        n_permutations=args.permutations, n_bootstrap=args.bootstrap, seed=args.seed,
    )
    rows = per_query if args.dataset is None else per_query[per_query["dataset"] == args.dataset]
    oracle, cells = oracle_tables(
        rows, measure=args.measure, fixed_kq=args.fixed_kq, fixed_kp=args.fixed_kp, budget_q=args.budget_q,
        budget_p=args.budget_p, intersect=args.intersect, n_bootstrap=args.bootstrap, seed=args.seed,
    )
    out = Path(args.out)
    write_significance(out / "significance.csv", table)
    write_oracle(out / "oracle.csv", oracle)
    write_oracle_cells(out / "oracle_cells.csv", cells)
    from repbench.telemetry.environment import result_header  # imports torch: only once results exist

    config = {k: v for k, v in vars(args).items() if not callable(v)}
    atomic_write_json(out / "metadata.json", {
        **result_header(config, kind="analysis"),
        "queries": {"n": aligned.n, "n_union": aligned.n_union, "n_common": aligned.n_common,
                    "intersect": aligned.intersect, "missing_per_system": aligned.missing},
    })
    print(format_significance(table, aligned.describe()))
    print()
    print(format_oracle(oracle))
    print(f"\nwrote {out / 'significance.csv'}, {out / 'oracle.csv'}, {out / 'oracle_cells.csv'}")
    return 0
