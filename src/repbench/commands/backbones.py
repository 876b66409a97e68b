"""`repbench backbones [--json]`: the backbone registry."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON list of objects")


def run(args: argparse.Namespace) -> int:
    from repbench.backbones import list_specs
    from repbench.backbones.loading import spec_row

    rows = [spec_row(spec) for spec in list_specs()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = ("name", "family", "source", "params", "available", "description")
    table = [header] + [
        (r["name"], r["family"], r["source"], f"{r['params'] / 1e9:.3f}B" if r["params"] else "?",
         "yes" if r["available"] else "no", r["description"]) for r in rows
    ]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header) - 1)]
    for row in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(row[:-1], widths, strict=False)) + "  " + row[-1])
    print("\nReal checkpoints load from a local directory (--model-path or REPBENCH_MODEL_PATH_<NAME>) or the "
          "local HF cache; nothing is downloaded. ':random' variants need no weights.")
    return 0
