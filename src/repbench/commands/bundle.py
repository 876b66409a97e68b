"""`repbench bundle DIR`: the offline bundle for a CUDA node (repbench.benchmarking.bundle)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="directory to write (absent or empty); copy it to the GPU node")
    parser.add_argument("--python", default="3.11,3.12,3.13",
                        help="comma list of the node's Python versions to fetch binary wheels for (default 3.11,3.12,3.13)")


def run(args: argparse.Namespace) -> int:
    from repbench.benchmarking.bundle import write_bundle
    from repbench.errors import RepbenchError

    pythons = tuple(v.strip() for v in args.python.split(",") if v.strip())
    bad = [v for v in pythons if not v.replace(".", "").isdigit() or v.count(".") != 1]
    if not pythons or bad:
        raise RepbenchError(f"--python: expected versions such as 3.12, got {args.python!r}")
    write_bundle(args.out, pythons)
    return 0
