"""`repbench report --results DIR --out DIR [--no-pdf]`: figures, LaTeX/Markdown tables and report.pdf."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", type=Path, default=Path("results"),
                        help="directory searched (recursively) for latency JSONs and effectiveness/analysis CSVs")
    parser.add_argument("--out", type=Path, default=Path("report"), help="output directory (default: report)")
    parser.add_argument("--no-pdf", action="store_true", help="write report.tex and report.md, no report.pdf")
    parser.add_argument("--recipes", type=Path, default=None, help="a directory of recipe .py files to run instead (default: the recipes shipped with repbench)")


def run(args: argparse.Namespace) -> int:
    from repbench.report import build_report

    summary = build_report(args.results, args.out, compile_pdf=not args.no_pdf, recipes=args.recipes)
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
