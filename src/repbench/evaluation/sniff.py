"""What a TREC-style file looks like from its first data line: a run, qrels, or neither.

Used to name a common mistake instead of reporting a field count: the two files given in trec_eval's
order (qrels first) to a command that takes the run first.
"""

from __future__ import annotations

import os
import re

from repbench.errors import RepbenchError
from repbench.io import iter_lines

_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
BEIR_HEADER = ("query-id", "corpus-id", "score")


def file_kind(path: str | os.PathLike) -> str:
    """'run' (qid Q0 docid rank score tag), 'qrels' (TREC 4 columns or the BEIR header) or 'unknown'."""
    try:
        for _, line in iter_lines(path):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            if tuple(fields) == BEIR_HEADER or (len(fields) == 4 and _INT.match(fields[3])):
                return "qrels"
            if len(fields) >= 6 and _INT.match(fields[3]) and _FLOAT.match(fields[4]):
                return "run"
            return "unknown"
    except (RepbenchError, OSError):
        return "unknown"  # the real reader reports what is wrong with the file
    return "unknown"


def check_run_then_qrels(run: str | os.PathLike, qrels: str | os.PathLike, command: str) -> None:
    """Refuse, naming the swap, when `run` looks like qrels and `qrels` like a run."""
    if file_kind(run) == "qrels" and file_kind(qrels) == "run":
        raise RepbenchError(
            f"the two files look swapped: {run} is qrels and {qrels} is a run. `repbench {command}` takes the run "
            f"first, then the qrels (trec_eval takes qrels first): repbench {command} {qrels} {run}")
