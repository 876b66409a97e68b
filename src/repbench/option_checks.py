"""The one check of every command's options, run by the CLI after parsing and before the command runs,
so a bad value is refused (exit 2, naming the option) before anything is read, encoded or written.

Rules, by the option's parsed type (argparse's `type=`), so a new option is covered without a line here:
  int    a whole number >= 0 and <= 2**31 - 1 (K, depths, sizes and counts all reach C, torch or faiss
         code that holds a C int; a larger one wraps); a seed may go up to 2**63 - 1
  float  finite (no inf, nan)
and by name: --relevance-level in [1, 2**31 - 1] (pytrec_eval refuses a level below 1, and a grade is a C int).
A command's own checks (a K of 0, a fraction above 1) still run in the command; these are the ranges
no command can take.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from repbench.errors import RepbenchError

INT_MAX = 2**31 - 1  # a C int: pytrec_eval grades, faiss k, torch topk sizes
SEED_MAX = 2**63 - 1  # numpy and torch take a 64-bit seed
_SEEDS = ("seed",)
_LOW = {"relevance_level": 1}  # pytrec_eval raises on a level < 1 (after a sweep has encoded everything)


def _option_name(action: argparse.Action) -> str:
    longs = [s for s in action.option_strings if s.startswith("--")]
    return (longs or action.option_strings or [action.dest])[0]


def _check_value(name: str, dest: str, value: Any) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        top, low = SEED_MAX if dest in _SEEDS else INT_MAX, _LOW.get(dest, 0)
        if not low <= value <= top:
            raise RepbenchError(f"option {name}: expected a whole number in [{low}, {top}], got {value}")
    elif isinstance(value, float) and not math.isfinite(value):
        raise RepbenchError(f"option {name}: expected a finite number, got {value}")


def check_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse (RepbenchError, exit 2) any parsed option outside the ranges above."""
    for action in parser._actions:  # noqa: SLF001 - argparse exposes no public list of actions
        if action.dest in (argparse.SUPPRESS, "help") or not hasattr(args, action.dest):
            continue
        value = getattr(args, action.dest)
        name = _option_name(action)
        for item in value if isinstance(value, list | tuple) else [value]:
            _check_value(name, action.dest, item)


def check_int_text(text: str, option: str, low: int = 1, high: int = INT_MAX) -> int:
    """`text` as a whole number in [low, high], else RepbenchError naming `option`."""
    try:
        value = int(text.strip())
    except ValueError:
        raise RepbenchError(f"option {option}: expected a whole number, got {text!r}") from None
    if not low <= value <= high:
        raise RepbenchError(f"option {option}: expected a whole number in [{low}, {high}], got {text.strip()}")
    return value
