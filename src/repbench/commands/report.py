"""`repbench report --results DIR --out DIR [--no-pdf]`: figures, LaTeX/Markdown tables and report.pdf."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", type=Path, default=Path("results"),
                        help="directory searched (recursively) for latency JSONs and effectiveness/analysis CSVs")
    parser.add_argument("--out", type=Path, default=Path("report"), help="output directory (default: report)")
    parser.add_argument("--no-pdf", action="store_true", help="write report.tex and report.md, no report.pdf")
    parser.add_argument("--run", action="append", default=[], metavar="NAME=RUN",
                        help="an external TREC run to put beside the sweeps (e.g. bm25=runs/bm25.trec; repeatable): "
                             "evaluated on the qrels of the dataset whose queries it answers, shown in the "
                             "paper-style table (the first one is its baseline) and the K figure")
    parser.add_argument("--run-qrels", type=Path, default=None,
                        help="qrels for the --run files (default: found from the sweeps' metadata.json)")
    parser.add_argument("--run-dataset", default=None,
                        help="dataset name of --run-qrels (default: its collection folder)")
    parser.add_argument("--recipes", type=Path, default=None, help="a directory of recipe .py files to run instead (default: the recipes shipped with repbench)")


def run(args: argparse.Namespace) -> int:
    from repbench.analysis.runs import run_names, split_run_spec
    from repbench.errors import RepbenchError
    from repbench.report import build_report

    for spec in args.run:
        if split_run_spec(spec)[0] is None:
            raise RepbenchError(f"--run expects NAME=RUN (e.g. bm25=runs/bm25.trec), got {spec!r}")
    runs = {name: split_run_spec(spec)[1] for name, spec in zip(run_names(args.run), args.run, strict=True)}
    summary = build_report(args.results, args.out, compile_pdf=not args.no_pdf, recipes=args.recipes,
                           runs=runs, run_qrels=args.run_qrels, run_dataset=args.run_dataset)
    for name, paths in summary["produced"].items():
        print(f"{name}: " + ", ".join(Path(p).name for p in paths))
    for name, reason in summary["skipped"].items():
        print(f"{name}: skipped ({reason})")
    if summary["failed"]:
        from repbench.io import atomic_write_text

        # One line each here; the tracebacks (bugs in a recipe) go to a file, not to the terminal.
        log = atomic_write_text(Path(args.out) / "recipe_failures.txt",
                                "\n\n".join(f"{n}: {e}" for n, e in summary["failed"].items()) + "\n")
        for name, error in summary["failed"].items():
            print(f"{name}: FAILED {error.splitlines()[0]} (details: {log})")
    print(f"report: {summary['tex']}")
    print(f"pdf: {summary['pdf'] or summary['pdf_message']}")
    return 1 if summary["failed"] else 0
