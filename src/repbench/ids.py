"""The one id rule every reader applies (queries, corpus, qrels, runs), so an id accepted in one file is
accepted in all."""

from __future__ import annotations

import os
import re

from repbench.errors import InputError

# The one id rule of every reader (queries, corpus, qrels, runs), so an id accepted in one file is
# accepted in all: non-empty; no whitespace (TREC files split on it); no control character (C0, DEL,
# C1: a NUL ends a C string, so pytrec_eval would see "d1\0x" as "d1"); no lone surrogate (not UTF-8,
# only reachable through a JSON "\ud800" escape); no leading "#" (a run or qrels line starting with
# "#" is a comment, so such a query id could never be judged). A "#" inside an id is fine.
_BAD_ID_CHAR = re.compile(r"[\s\x00-\x1f\x7f-\x9f\ud800-\udfff]")
SURROGATE = re.compile(r"[\ud800-\udfff]")
ID_RULE = ("without whitespace, control characters or lone surrogates, not starting with '#' (one rule for "
           "queries, corpus, qrels and runs)")


def id_problem(value: str) -> str | None:
    """Why `value` breaks the id rule, or None when it is a valid id."""
    if not value:
        return "it is empty"
    if value[0] == "#":
        return "it starts with '#' (a TREC comment line)"
    bad = _BAD_ID_CHAR.search(value)
    if bad is None:
        return None
    char = bad.group()
    if char.isspace():
        return f"it contains whitespace U+{ord(char):04X}"
    if 0xD800 <= ord(char) <= 0xDFFF:
        return f"it contains a lone surrogate U+{ord(char):04X} (not valid UTF-8)"
    return f"it contains the control character U+{ord(char):04X}"


def check_id(path: str | os.PathLike, lineno: int | None, value: str, what: str = '"_id"') -> str:
    """`value` if it passes the one id rule (`ID_RULE`), else InputError naming file, line and why."""
    if _BAD_ID_CHAR.search(value) is None and value and value[0] != "#":
        return value
    shown = value if len(value) <= 80 else value[:77] + "..."
    raise InputError(path, lineno, f"expected a non-empty {what} {ID_RULE}; {id_problem(value)}: {shown!r}")
