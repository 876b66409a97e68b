"""`repbench baselines [--root results/baselines]`: list the stored baselines, one row per file."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", default="results/baselines", help="baselines directory (default results/baselines)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--slug", action="store_true",
                        help="print this machine's device slug (the directory its baseline belongs in) and exit")


def run(args: argparse.Namespace) -> int:
    from repbench.analysis.baselines import device_slug, list_baselines

    if args.slug:
        from repbench.telemetry.environment import capture_environment

        print(device_slug(capture_environment()))
        return 0
    table = list_baselines(args.root)
    if args.json:
        print(json.dumps(table.astype(object).where(table.notna(), None).to_dict(orient="records"), indent=2))
        return 0
    if table.empty:
        print(f"no baselines under {args.root}")
        return 0
    from rich.console import Console
    from rich.table import Table

    out = Table(title=f"stored baselines under {args.root}")
    for col in ("device slug", "file", "kind", "created (UTC)", "backbones", "repbench", "git commit"):
        out.add_column(col)
    for _, r in table.iterrows():
        out.add_row(*["" if v is None or v != v else str(v) for v in
                      (r["slug"], r["file"], r["kind"], r["created_utc"], r["backbones"], r["repbench_version"],
                       r["git_commit"])])
    Console(width=None if sys.stdout.isatty() else 200, highlight=False).print(out)
    return 0
