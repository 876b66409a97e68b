"""`repbench <command> ...`: a thin dispatcher over repbench.commands.*.

Each command lives in its own module with `add_arguments(parser)` and `run(args) -> int`; only the
chosen one is imported, so `repbench --help` stays fast (no torch import).

The one rule for failures: no Python traceback reaches a user by default.
  exit 2  a RepbenchError (bad input or option: the message names file:line and what was expected), an
          OSError (missing file, disk full: the message names the file), or a usage error from argparse
  exit 3  an unexpected exception (a bug): a one-line summary and the file holding the full traceback
  exit 130 interrupted (Ctrl-C); 141 stdout closed early (`| head`), silently
`--debug` (any command) or REPBENCH_DEBUG=1 re-raises instead, showing the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
import warnings
from pathlib import Path

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
    "predict": ("repbench.commands.predict", "roofline floor and expected latency of an unmeasured GPU/backbone"),
    "bundle": ("repbench.commands.bundle", "write the offline bundle for a CUDA node (bench/gpu_check.py --offline)"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"usage: repbench <command> [options]   (repbench {__version__})", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "`repbench <command> --help` shows a command's options."]
    return "\n".join(lines)


EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 3


def log_dir() -> Path:
    """Where tracebacks of unexpected errors go: $REPBENCH_LOG_DIR, else the user log directory."""
    if os.environ.get("REPBENCH_LOG_DIR"):
        return Path(os.environ["REPBENCH_LOG_DIR"])
    try:
        from platformdirs import user_log_dir

        return Path(user_log_dir("repbench"))
    except ImportError:  # platformdirs is a dependency; this only guards a broken install
        return Path.home() / ".cache" / "repbench" / "log"


def _write_traceback(name: str, argv: list[str], exc: BaseException) -> str:
    """The traceback in a new file (mkstemp: an unpredictable name, O_EXCL, mode 0600, so a planted
    symlink is never followed) in the log directory, else in a private 0700 directory of $TMPDIR."""
    import tempfile

    text = (f"repbench {name} {' '.join(argv[1:])}\n{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n\n"
            + "".join(traceback.format_exception(exc)))
    prefix = f"traceback-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}-"
    for directory in (log_dir(), None):
        try:
            if directory is None:
                directory = Path(tempfile.mkdtemp(prefix="repbench-log-"))  # 0700, new
            else:
                directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, path = tempfile.mkstemp(prefix=prefix, suffix=".txt", dir=directory)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            return path
        except OSError:
            continue
    return "nowhere (the log directory is not writable)"


def _os_error_message(exc: OSError) -> str:
    where = exc.filename if exc.filename is not None else "a file"
    hint = ": the disk is full; free space and rerun (files already written are intact)" if exc.errno == 28 else ""
    return f"{where}: {exc.strerror or exc}{hint}"


def _debug(argv: list[str]) -> bool:
    return os.environ.get("REPBENCH_DEBUG", "") not in ("", "0") or "--debug" in argv


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
    debug = _debug(argv)
    original_format = warnings.formatwarning
    if not debug:
        # A warning reads as one line, not as "file.py:123: UserWarning" plus a line of repbench's source.
        warnings.formatwarning = lambda message, category, *_args, **_kw: f"repbench {name}: warning: {message}\n"
    try:
        return _run(name, argv, debug)
    finally:
        warnings.formatwarning = original_format


def _run(name: str, argv: list[str], debug: bool) -> int:
    try:
        return _dispatch(name, argv)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"repbench {name}: interrupted", file=sys.stderr)
        return 130
    except RepbenchError as exc:
        if debug:
            raise
        print(f"repbench {name}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # `repbench ... | head`: the reader left; say nothing, as other CLI tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as exc:
        if debug:
            raise
        print(f"repbench {name}: error: {_os_error_message(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except MemoryError:
        if debug:
            raise
        print(f"repbench {name}: error: out of memory; expected inputs that fit (REPBENCH_MAX_DOCUMENT_BYTES, "
              "REPBENCH_MAX_LINE_BYTES and --max-memory bound what one file, line or chunk may take)", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception as exc:
        if debug:
            raise
        where = _write_traceback(name, argv, exc)
        summary = (str(exc).strip().splitlines() or [""])[0][:300]
        print(f"repbench {name}: internal error: {type(exc).__name__}: {summary}\n"
              f"This is a bug in repbench; the full traceback is in {where} "
              "(rerun with --debug or REPBENCH_DEBUG=1 to see it here).", file=sys.stderr)
        return EXIT_INTERNAL_ERROR


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the text already states one (or there is none)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (not action.option_strings or action.required or default in (None, False, [], argparse.SUPPRESS)
                or "default" in text.lower()):
            return action.help
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"


def _dispatch(name: str, argv: list[str]) -> int:
    module_name, help_ = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"repbench {name}", description=help_,
                                     formatter_class=DefaultsHelpFormatter)
    module.add_arguments(parser)
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an error (also REPBENCH_DEBUG=1)")
    args = parser.parse_args(argv[1:])
    from repbench.option_checks import check_options

    check_options(parser, args)  # every option's range, before the command reads or writes anything
    del args.debug  # read from argv by main(); not a setting of the command (kept out of its metadata)
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
