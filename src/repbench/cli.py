"""`repbench <command> ...`: a thin dispatcher over repbench.commands.*.

Each command lives in its own module with `add_arguments(parser)` and `run(args) -> int`; only the
chosen one is imported, so `repbench --help` stays fast (no torch import).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from repbench import __version__
from repbench.errors import RepbenchError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "backbones": ("repbench.commands.backbones", "list the backbone registry (table or --json)"),
    "encode": ("repbench.commands.encode", "encode a BEIR JSONL into a representations directory"),
    "merge": ("repbench.commands.merge", "verify the shards of a store written by several workers; write its manifest"),
    "search": ("repbench.commands.search", "exact streaming search of a query store over a passage store"),
    "demo": ("repbench.commands.demo", "end-to-end demo on the embedded default (make demo)"),
    "evaluate": ("repbench.commands.evaluate", "(K_q, K_p) x score-mode effectiveness sweep on a collection"),
    "eval-run": ("repbench.commands.eval_run", "evaluate a TREC run file against qrels (trec_eval layout)"),
    "analyze": ("repbench.commands.analyze", "oracle-K and significance from a per-query table"),
    "adapt": ("repbench.commands.adapt", "cross-validated adaptive K per query and the optimal-K analyses"),
    "significance": ("repbench.commands.significance", "significance tests straight from TREC run files"),
    "report": ("repbench.commands.report", "regenerate figures, LaTeX tables and report.pdf"),
    "compare": ("repbench.commands.compare", "compare bench JSONs / per-query tables against a baseline"),
    "baselines": ("repbench.commands.baselines", "list stored baselines under results/baselines"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"usage: repbench <command> [options]   (repbench {__version__})", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "`repbench <command> --help` shows a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        print(__version__)
        return 0
    name = argv[0]
    if name not in COMMANDS:
        print(f"repbench: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, help_ = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"repbench {name}", description=help_)
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except RepbenchError as exc:
        print(f"repbench {name}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
