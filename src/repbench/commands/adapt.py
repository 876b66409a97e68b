"""`repbench adapt`: cross-validated adaptive K per query, and the optimal-K analyses, from a sweep.

Example (a sweep written by `repbench evaluate --out results/eval/adi`):
  repbench adapt --per-query results/eval/adi/per_query.csv --signals results/eval/adi/signals.csv \\
      --out results/eval/adi/adapt
Writes adaptive.csv, adaptive_choices.csv, adaptive_cells.csv, adaptive_rules.csv, folds.csv,
oracle_k.csv, oracle_k_corr.csv and metadata.json under --out.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from repbench.errors import RepbenchError, did_you_mean
from repbench.io import atomic_write_json
from repbench.schema import FILE_NAMES, KIND_COLUMNS, SELECTORS
from repbench.schema.choices import DEFAULT_SELECTORS, SCOPES
from repbench.stats.choices import TESTS

if TYPE_CHECKING:
    import pandas as pd

# pandas and the analyses are imported when the command runs, so --help answers at once.


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--per-query", required=True, nargs="+", metavar="FILE",
                        help="per_query.csv file(s) from `repbench evaluate`")
    parser.add_argument("--signals", nargs="+", metavar="FILE",
                        help="signals.csv file(s) (default: signals.csv next to each --per-query file)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument("--measure", default="ndcg_cut_10", help="measure to select on (default: ndcg_cut_10)")
    parser.add_argument("--modes", nargs="+", metavar="MODE", help="score modes to analyse (default: all present)")
    parser.add_argument("--scopes", nargs="+", choices=SCOPES, default=list(SCOPES),
                        help="option sets as in `repbench analyze` (default: kq kp grid)")
    parser.add_argument("--fixed-kp", type=int, nargs="+", metavar="K", help="scope kq: the fixed K_p values")
    parser.add_argument("--fixed-kq", type=int, nargs="+", metavar="K", help="scope kp: the fixed K_q values")
    parser.add_argument("--selectors", nargs="+", choices=SELECTORS, default=list(DEFAULT_SELECTORS),
                        help=f"selectors (default: {' '.join(DEFAULT_SELECTORS)})")
    parser.add_argument("--probe-k", type=int, metavar="K",
                        help="query encoding whose signals are the features (default: the smallest K_q)")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds over queries (default: 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the folds, bootstrap and tests (default: 0)")
    parser.add_argument("--test", choices=TESTS, default="t", help="paired test vs the best fixed cell (default: t)")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level (default: 0.05)")
    parser.add_argument("--bootstrap", type=int, default=10_000, help="bootstrap resamples for CIs (default: 10000)")
    parser.add_argument("--permutations", type=int, default=10_000, help="randomization-test permutations")
    parser.add_argument("--intersect", action="store_true",
                        help="keep only queries every cell has (default: missing queries score 0)")
    parser.add_argument("--baseline-run", metavar="RUN", help="difficulty from this TREC run (e.g. BM25) ...")
    parser.add_argument("--qrels", metavar="FILE", help="... evaluated against these qrels (with --baseline-run)")
    parser.add_argument("--dataset", help="the dataset the baseline run belongs to (when the table holds several)")


def _baseline(args: argparse.Namespace, datasets: list[str]) -> dict[str, pd.Series] | None:
    import numpy as np

    if args.baseline_run is None and args.qrels is None:
        return None
    if args.baseline_run is None or args.qrels is None:
        raise RepbenchError("give --baseline-run and --qrels together")
    from repbench.evaluation.metrics import evaluate
    from repbench.evaluation.trec import read_qrels, read_run

    dataset = args.dataset
    if dataset is None:
        if len(datasets) > 1:
            raise RepbenchError(f"the table holds several datasets ({', '.join(datasets)}); name the baseline "
                                "run's with --dataset")
        dataset = datasets[0]
    scores = evaluate(read_run(args.baseline_run), read_qrels(args.qrels), [args.measure])
    return {dataset: scores.set_index(scores["qid"].astype(str))["value"].astype(np.float64)}


def _signals(args: argparse.Namespace) -> pd.DataFrame:
    import pandas as pd

    from repbench.schema.signals import read_signals

    paths = args.signals or [Path(p).parent / "signals.csv" for p in args.per_query]
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        raise RepbenchError(f"no signals file {', '.join(missing)}: rerun `repbench evaluate` (it writes "
                            "signals.csv) or pass --signals")
    return pd.concat([read_signals(p) for p in paths], ignore_index=True)


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from repbench.analysis.adaptive import holm_across_datasets, make_folds, score_option_set
    from repbench.analysis.features import query_features
    from repbench.analysis.oracle import option_sets
    from repbench.analysis.oracle_k import optimal_k_tables
    from repbench.analysis.selectors import make_selectors
    from repbench.schema.tables import read_per_query, write_table

    per_query = pd.concat([read_per_query(p) for p in args.per_query], ignore_index=True)
    if args.dataset is not None:
        names = sorted(per_query["dataset"].astype(str).unique())
        if args.dataset not in names:
            raise RepbenchError(f"dataset {args.dataset!r} is not in the per-query table"
                                f"{did_you_mean(args.dataset, names)}; it has {', '.join(names)}")
        per_query = per_query[per_query["dataset"].astype(str) == args.dataset]
    signals = _signals(args)
    selectors = make_selectors(args.selectors)
    datasets = sorted(per_query["dataset"].astype(str).unique())
    folds, fold_rows = {}, []
    for ds in datasets:
        qids = sorted(per_query.loc[per_query["dataset"].astype(str) == ds, "qid"].astype(str).unique())
        f = make_folds(qids, args.folds, args.seed)
        folds[ds] = dict(zip(qids, f.tolist(), strict=True))
        fold_rows += [{"dataset": ds, "qid": q, "fold": int(k)} for q, k in zip(qids, f, strict=True)]
    features: dict[tuple[str, str, str], tuple[pd.DataFrame, int]] = {}
    options = list(option_sets(per_query, args.measure, args.scopes, args.fixed_kq, args.fixed_kp, args.modes,
                               args.intersect))
    if not options:
        raise RepbenchError("no group of the per-query table has two or more cells to choose from")
    summary, choices, cells, rules = [], [], [], []
    for option in options:
        key = (str(option.ident["dataset"]), option.ident["backbone"], option.ident["encoder"])
        if key not in features:
            features[key] = query_features(signals, *key, k=args.probe_k)
        feats, probe_k = features[key]
        s, c, d, r = score_option_set(option, feats, folds[key[0]], selectors, probe_k=probe_k, test=args.test,
                                      n_bootstrap=args.bootstrap, n_permutations=args.permutations,
                                      seed=args.seed)
        summary += s
        choices += c
        cells += d
        rules += r
    table = holm_across_datasets(pd.DataFrame(summary), alpha=args.alpha)
    lengths = {key: f["text_tokens"] for key, (f, _) in features.items() if "text_tokens" in f}
    optimal, corr = optimal_k_tables(options, _baseline(args, datasets),
                                     Path(args.baseline_run).name if args.baseline_run else "", lengths,
                                     n_bootstrap=args.bootstrap, seed=args.seed)
    out = Path(args.out)
    tables = {"adaptive": table, "adaptive_choices": choices, "adaptive_cells": cells, "adaptive_rules": rules,
              "folds": fold_rows, "oracle_k": optimal, "oracle_k_corr": corr}
    written = []
    for kind, rows in tables.items():
        frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows, columns=list(KIND_COLUMNS[kind]))
        if "fixed_k" in frame:
            frame["fixed_k"] = frame["fixed_k"].astype("Int64")
        written.append(write_table(out / FILE_NAMES[kind], frame, kind))
    from repbench.telemetry.environment import result_header  # imports torch: only once results exist

    config = {k: v for k, v in vars(args).items() if not callable(v)}
    atomic_write_json(out / "metadata.json", {
        **result_header(config, kind="adaptive"),
        "features": {"/".join(k): {"probe_k": pk, "columns": list(f.columns), "n_queries": len(f)}
                     for k, (f, pk) in features.items()},
    })
    print(format_adaptive(table))
    print(f"\nwrote {', '.join(str(p) for p in written)}")
    return 0


def format_adaptive(table: pd.DataFrame, limit: int = 40) -> str:
    """A compact text view: one line per option set and selector."""
    import pandas as pd

    if table.empty:
        return "no adaptive results"
    lines = ["cross-validated adaptive K (selector never scored on a query it was trained on):"]
    for _, r in table.head(limit).iterrows():
        fixed = {"kq": f"K_q varies, K_p={r['fixed_k']}", "kp": f"K_p varies, K_q={r['fixed_k']}"}.get(
            r["scope"], "grid")
        closed = "n/a" if pd.isna(r["gap_closed"]) else f"{100 * r['gap_closed']:.0f}%"
        lines.append(
            f"  {r['dataset']} {r['backbone']}/{r['encoder']} {r['mode']} ({fixed}) {r['selector']}: "
            f"{r['adaptive_mean']:.3f} [{r['adaptive_ci_low']:.3f}, {r['adaptive_ci_high']:.3f}]  best fixed "
            f"{r['best_cell']} {r['best_mean']:.3f}  oracle {r['oracle_mean']:.3f}  gap closed {closed}  "
            f"p_holm {r['p_adjusted']:.3g}")
    if len(table) > limit:
        lines.append(f"  ... {len(table) - limit} more rows in adaptive.csv")
    return "\n".join(lines)
