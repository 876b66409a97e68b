"""`repbench compare BASE [NEW]`: latency (bench JSON) and effectiveness (per_query.csv) against a baseline.

BASE/NEW are bench JSON files, per_query.csv tables, or baseline directories holding either or both.
Exit status: 0, or 1 when `--fail-above` (latency) or `--fail-on-eff` (effectiveness) trips.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from repbench.errors import RepbenchError


def parse_fraction(text: str) -> float:
    """'10%' -> 0.10; '0.1' -> 0.1; a bare number >= 1 is read as a percentage ('5' -> 0.05)."""
    s = str(text).strip()
    try:
        value = float(s[:-1]) / 100.0 if s.endswith("%") else float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a percentage like 5% or a fraction like 0.05, got {text!r}") from None
    if not s.endswith("%") and value >= 1.0:
        value /= 100.0
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative tolerance, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("base", help="BASE: bench JSON, per_query.csv, baseline dir (results/baselines/<slug>), or a "
                                     "TREC run (NAME=RUN as in `repbench report --run`, with --qrels)")
    parser.add_argument("new", nargs="?", help="NEW: same kinds as BASE; optional with --by backbone (one run)")
    parser.add_argument("--qrels", default=None,
                        help="qrels for TREC runs given as BASE/NEW: each is evaluated per query (MAP, nDCG@10, "
                             "MRR@10, R@100, R@1000) and compared as one cell")
    parser.add_argument("--by", choices=("cell", "backbone"), default="cell",
                        help="cell: same configuration in BASE and NEW (default); backbone: --base-backbone "
                             "cells vs --new-backbone cells on matching encoder/k/input_tokens/batch_size")
    parser.add_argument("--base-backbone", help="with --by backbone: the backbone taken from BASE")
    parser.add_argument("--new-backbone", help="with --by backbone: the backbone taken from NEW (or BASE)")
    parser.add_argument("--any-encoder", action="store_true",
                        help="with --by backbone: match cells regardless of encoder (e.g. sequential AR vs "
                             "parallel diffusion)")
    parser.add_argument("--tolerance", type=parse_fraction, default=0.05,
                        help="latency ratios within 1 +- this are 'same' (default 5%%)")
    parser.add_argument("--tolerance-for", action="append", default=[], metavar="PATTERN=TOL",
                        help="per-group tolerance for cells whose label matches the glob PATTERN, e.g. "
                             "'search:*=25%%' (repeatable; first match wins)")
    parser.add_argument("--fail-above", type=parse_fraction, default=None,
                        help="exit 1 when a cell is slower by more than this AND its CI lower bound is too "
                             "(e.g. 10%%)")
    parser.add_argument("--fail-efficiency-below", type=parse_fraction, default=None, metavar="RATIO",
                        help="exit 1 when a cell's MBU new / MBU base is below this (e.g. 80%%: the new device "
                             "reaches under 80%% of the bandwidth share the baseline reached)")
    parser.add_argument("--n-boot", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--test", choices=("t", "wilcoxon", "randomization"), default="t",
                        help="paired test for effectiveness (default t)")
    parser.add_argument("--eff-tolerance", type=float, default=0.01,
                        help="effectiveness |mean diff| up to this is OKish, beyond is FAIL (default 0.01)")
    parser.add_argument("--fail-on-eff", action="store_true", help="exit 1 when an effectiveness cell is FAIL")
    parser.add_argument("--markdown", metavar="FILE", help="write the comparison as Markdown")
    parser.add_argument("--figure", metavar="FILE.png", help="write a figure of latency ratios with CIs")
    parser.add_argument("--json", metavar="FILE", help="write the comparison as JSON (atomic)")


def _kinds(path: Path) -> set[str]:
    from repbench.analysis.baselines import PER_QUERY_FILE
    from repbench.analysis.runs import is_run_spec

    if is_run_spec(path):
        return {"effectiveness"}
    from repbench.schema.bench import BENCH_FILE

    if path.is_dir():
        kinds = set()
        if (path / BENCH_FILE).is_file() or [p for p in path.glob("*.json") if p.name != "metadata.json"]:
            kinds.add("latency")
        if (path / PER_QUERY_FILE).is_file():
            kinds.add("effectiveness")
        if not kinds:
            raise RepbenchError(f"{path}: directory holds neither a bench JSON nor {PER_QUERY_FILE}")
        return kinds
    if not path.exists():
        raise RepbenchError(f"{path}: no such file or directory")
    return {"effectiveness"} if path.suffix.lower() == ".csv" else {"latency"}


def _group_tolerances(items: list[str]) -> list[tuple[str, float]]:
    out = []
    for item in items:
        pattern, sep, tol = item.rpartition("=")
        if not sep or not pattern:
            raise RepbenchError(f"--tolerance-for expects PATTERN=TOL (e.g. 'search:*=25%'), got {item!r}")
        try:
            out.append((pattern, parse_fraction(tol)))
        except argparse.ArgumentTypeError as exc:
            raise RepbenchError(f"--tolerance-for {item!r}: {exc}") from None
    return out


def _efficiency_gate(table, min_ratio: float, gate: dict | None) -> dict:
    """The `--fail-efficiency-below` gate, merged into the latency gate record."""
    from repbench.analysis.roofline_cells import efficiency_failures

    ratios = table["efficiency_ratio"] if "efficiency_ratio" in table else []
    n = int(sum(1 for r in ratios if r == r))  # cells with an MBU on both sides (NaN != NaN)
    if n == 0:
        raise RepbenchError("--fail-efficiency-below: no matched cell has a roofline (MBU) on both sides; both "
                            "bench JSONs need the peaks probe (machine_info.repbench.peaks, written by pytest bench/)")
    low = efficiency_failures(table, min_ratio)
    gate = dict(gate or {"fail_above": None, "failed": [], "n_compared": int(len(table))})
    gate.update(min_efficiency=min_ratio, efficiency_failed=low["label"].tolist(), n_efficiency=n)
    return gate


def run(args: argparse.Namespace) -> int:
    from repbench.analysis import compare as cmp
    from repbench.analysis.baselines import load_per_query
    from repbench.report import compare as render
    from repbench.schema.bench import read_bench

    if args.new is None and args.by != "backbone":
        raise RepbenchError("NEW is required unless --by backbone compares two backbones within BASE")
    if args.n_boot < 100:
        raise RepbenchError(f"--n-boot must be at least 100, got {args.n_boot}")
    base_path = Path(args.base)
    new_path = Path(args.new) if args.new is not None else base_path
    from repbench.analysis.runs import is_run_spec, run_per_query
    from repbench.evaluation.metrics import DEFAULT_MEASURES

    runs = [p for p in (base_path, new_path) if is_run_spec(p)]
    if runs and args.qrels is None:
        raise RepbenchError(f"{runs[0]} is a TREC run: give --qrels to evaluate it")

    def per_query(path: Path):
        return run_per_query(str(path), args.qrels, DEFAULT_MEASURES) if is_run_spec(path) else load_per_query(path)

    kinds = _kinds(base_path) & _kinds(new_path)
    if not kinds:
        raise RepbenchError(f"{base_path} and {new_path} hold nothing comparable (one is latency, the other "
                            f"effectiveness)")

    warnings: list[str] = []
    latency = effectiveness = None
    gate = None
    bb = {"by": args.by, "base_backbone": args.base_backbone, "new_backbone": args.new_backbone}
    if "latency" in kinds:
        base, new = read_bench(base_path), read_bench(new_path)
        latency = cmp.compare_latency(base, new, tolerance=args.tolerance, any_encoder=args.any_encoder,
                                      n_boot=args.n_boot, seed=args.seed,
                                      group_tolerances=_group_tolerances(args.tolerance_for), **bb)
        _refuse_non_finite(latency.table, base_path, new_path)
        if args.by == "backbone":
            bcells = base.cells[base.cells["backbone"].astype(str) == args.base_backbone]
            ncells = new.cells[new.cells["backbone"].astype(str) == args.new_backbone]
            warnings += cmp.bench_environment_warnings(base, new, bcells, ncells)
        else:
            warnings += cmp.bench_environment_warnings(base, new)
        if args.fail_above is not None:
            if latency.table.empty:
                raise RepbenchError(
                    f"--fail-above: 0 cells matched between BASE {base.path} ({len(base.cells)} benchmarks) and "
                    f"NEW {new.path} ({len(new.cells)} benchmarks), so the gate would pass without comparing "
                    "anything; expected both files to time the same configurations (or use --by backbone)")
            failed = cmp.gate_failures(latency.table, args.fail_above)
            gate = {"fail_above": args.fail_above, "failed": failed["label"].tolist(),
                    "n_compared": int(len(latency.table))}
        if args.fail_efficiency_below is not None:
            gate = _efficiency_gate(latency.table, args.fail_efficiency_below, gate)
    elif args.fail_above is not None or args.fail_efficiency_below is not None:
        flag = "--fail-above" if args.fail_above is not None else "--fail-efficiency-below"
        raise RepbenchError(f"{flag} gates latency, but {base_path} and {new_path} hold no comparable bench "
                            "JSONs; expected two bench JSONs (or baseline directories holding them)")
    if "effectiveness" in kinds:
        pbase, pnew = per_query(base_path), per_query(new_path)
        effectiveness = cmp.compare_effectiveness(pbase, pnew, test=args.test, tolerance=args.eff_tolerance, **bb)
        if args.fail_on_eff and effectiveness.table.empty:
            raise RepbenchError(f"--fail-on-eff: 0 cells matched between BASE {pbase.path} and NEW {pnew.path}, so "
                                "the gate would pass without comparing anything")
        warnings += [w for w in cmp.effectiveness_environment_warnings(pbase, pnew) if w not in warnings]
    elif args.fail_on_eff:
        raise RepbenchError(f"--fail-on-eff gates effectiveness, but {base_path} and {new_path} hold no "
                            "comparable per_query.csv tables")

    _print_terminal(base_path, new_path, latency, effectiveness, warnings, gate)
    if args.markdown:
        from repbench.io import atomic_write_text

        atomic_write_text(args.markdown, render.comparison_markdown(str(base_path), str(new_path), latency,
                                                                 effectiveness, warnings, gate))
    if args.figure:
        if latency is None or latency.table.empty:
            raise RepbenchError("--figure needs at least one latency cell present in both BASE and NEW")
        render.plot_ratios(latency, args.figure, title=f"{new_path} vs {base_path}")
    if args.json:
        from repbench.io import atomic_write_json
        from repbench.telemetry.environment import result_header

        config = {"base": str(base_path), "new": str(new_path), "tolerance": args.tolerance,
                  "fail_above": args.fail_above, "fail_efficiency_below": args.fail_efficiency_below, "n_boot": args.n_boot, "seed": args.seed, "test": args.test,
                  "tolerance_for": args.tolerance_for, "eff_tolerance": args.eff_tolerance, **bb,
                  "any_encoder": args.any_encoder}
        atomic_write_json(args.json, {**result_header(config, "compare"),
                                      **render.comparison_record(latency, effectiveness, warnings, gate)},
                          strict=True)

    failed = bool(gate and (gate["failed"] or gate.get("efficiency_failed")))
    if args.fail_on_eff and effectiveness is not None and (effectiveness.table["verdict"] == "FAIL").any():
        failed = True
    if not matched_cells(latency, effectiveness):
        # Nothing was compared: a zero exit would read as "no difference".
        print(f"repbench compare: 0 cells matched between BASE {base_path} and NEW {new_path}: nothing was "
              "compared (check that both timed the same configurations, or use --by backbone)", file=sys.stderr)
        return 1
    return 1 if failed else 0


def _refuse_non_finite(table: Any, base_path: Any, new_path: Any) -> None:
    """A ratio of inf or NaN (a median of 0 s in BASE or NEW) cannot pass or fail a gate honestly: refused."""
    import numpy as np

    for column in ("ratio", "ci_low", "ci_high"):
        if column not in table or table.empty:
            continue
        values = table[column].to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            row = table.iloc[int(np.flatnonzero(bad)[0])]
            raise RepbenchError(f"cell {row.get('label', '?')}: the latency {column} NEW/BASE is {values[bad][0]} "
                                f"(a median of 0 s or no samples in {base_path} or {new_path}); expected "
                                "positive timings on both sides")


def matched_cells(latency: Any, effectiveness: Any) -> int:
    return sum(len(c.table) for c in (latency, effectiveness) if c is not None)


def summary_line(kind: str, table: Any, column: str, order: tuple[str, ...]) -> str:
    """'144 OK / 3 OKish / 0 FAIL of 147 cells' from a comparison table's verdict column."""
    counts = table[column].value_counts() if len(table) else {}
    parts = [f"{int(counts.get(v, 0))} {v}" for v in order]
    return f"{kind}: " + " / ".join(parts) + f" of {len(table)} cells compared"


def _print_terminal(base_path, new_path, latency, effectiveness, warnings, gate) -> None:
    from rich.console import Console
    from rich.table import Table

    from repbench.report import compare as render

    console = Console(width=None if sys.stdout.isatty() else 200, highlight=False)
    console.print(f"repbench compare: NEW {new_path} vs BASE {base_path}")
    for w in warnings:
        console.print(f"[bold yellow]WARNING[/]: {w}")
    styles = {"faster": "green", "slower": "red", "OK": "green", "OKish": "yellow", "FAIL": "red"}
    if latency is not None:
        table = Table(title=f"latency: ratio NEW/BASE of medians, 95% bootstrap CI, tolerance "
                            f"±{latency.tolerance:.0%}")
        for h in render.LATENCY_HEADERS:
            table.add_column(h, justify="left" if h in ("cell", "verdict", "note") else "right")
        for row in render.latency_rows(latency):
            row[6] = f"[{styles[row[6]]}]{row[6]}[/]" if row[6] in styles else row[6]
            table.add_row(*row)
        console.print(table)
        for title, items in (("only in BASE", latency.only_base), ("only in NEW", latency.only_new),
                             ("skipped", latency.skipped)):
            for item in items:
                console.print(f"{title}: {item}")
        if gate is not None and gate.get("min_efficiency") is not None:
            low = gate["efficiency_failed"]
            console.print(f"gate --fail-efficiency-below {gate['min_efficiency']:.0%} "
                          + (f"[bold red]FAILED[/] ({len(low)} of {gate['n_efficiency']} cells): " + "; ".join(low)
                             if low else f"passed ({gate['n_efficiency']} cells with an MBU on both sides)"))
        if gate is not None and gate.get("fail_above") is not None:
            if gate["failed"]:
                console.print(f"[bold red]gate --fail-above {gate['fail_above']:.0%} FAILED[/] "
                              f"({len(gate['failed'])} of {gate['n_compared']} cells compared): "
                              + "; ".join(gate["failed"]))
            else:
                console.print(f"gate --fail-above {gate['fail_above']:.0%} passed ({gate['n_compared']} cells "
                              "compared)")
    if effectiveness is not None:
        table = Table(title="effectiveness: mean NEW - BASE over shared queries (OK <= 0.0005, OKish <= "
                            "tolerance, else FAIL)")
        for h in render.EFF_HEADERS:
            table.add_column(h, justify="left" if h in ("cell", "verdict") else "right")
        for row in render.effectiveness_rows(effectiveness):
            row[-1] = f"[{styles[row[-1]]}]{row[-1]}[/]"
            table.add_row(*row)
        console.print(table)
        for note in effectiveness.warnings:
            console.print(f"note: {note}")
        for title, items in (("only in BASE", effectiveness.only_base), ("only in NEW", effectiveness.only_new)):
            for item in items:
                console.print(f"{title}: {item}")
    # The one line to read first, after a table that can run to hundreds of rows.
    if latency is not None:
        console.print(summary_line("latency", latency.table, "verdict", ("faster", "same", "slower")))
    if effectiveness is not None:
        console.print(summary_line("effectiveness", effectiveness.table, "verdict", ("OK", "OKish", "FAIL")))
