"""A fast path for reading TREC run and qrels files: whole blocks of bytes checked at C speed, then one tight loop.

`read_run_with_id` (repbench.evaluation.trec) checks every line in Python: bounded readline, UTF-8
decode, the id rule, the score syntax and the duplicate test, line by line, which made it ~85% of a whole
`repbench eval-run` (issue 20). Here the same rules are checked per block instead:

- bytes are read in blocks cut at newlines, within the same limits (line length, decompressed size);
- a block's text is valid UTF-8 (one decode) and holds no character the id rule refuses that `str.split`
  would leave inside a field (a control character that is not whitespace); no field starts with ``#``
  (a comment line, or an id the rule refuses);
- each line then splits exactly as the line reader splits it (lines end at "\\n", fields at any
  `str.split` whitespace) and must have exactly six fields;
- a score is taken by `float` only where `float` and the reader's ASCII-decimal rule agree (ASCII, no
  "_"); every score is finite; no (qid, docid) pair repeats (the dict sizes add up to the line count).

The fast path never raises an error of its own: whenever anything fails or looks unusual (a bad byte,
a comment, trailing text after the tag, a duplicate, a non-finite score, a line near the length limit,
a corrupt gzip, a file that is not a regular file) it returns None and the caller reads the file again
with the line reader, which accepts what it accepts and refuses with the exact message and line number.
So both paths give the same run, or the same error, for every file. Qrels (`read_qrels_fast`) go the
same way: the layout decided by the first data line, exactly 3 (BEIR, after its header) or 4 fields,
integer grades within trec_eval's C int range, no pair judged twice.
"""

from __future__ import annotations

import gzip
import math
import os
import re
import stat
import zlib
from collections.abc import Iterator

from repbench.errors import RepbenchError
from repbench.io import BOM, open_binary
from repbench.limits import max_input_bytes, max_line_bytes

# The formats' constants live here, the lower module; repbench.evaluation.trec imports them from here.
Run = dict[str, dict[str, float]]
Qrels = dict[str, dict[str, int]]
BEIR_QRELS_HEADER = ("query-id", "corpus-id", "score")
GRADE_MIN, GRADE_MAX = -(2**31), 2**31 - 1  # a grade pytrec_eval holds in a C int

_BLOCK = 1 << 24  # bytes per read: big enough that per-block work is negligible, small next to the run itself
# Control characters `str.split` does not split on, so a field could hold them, and the id rule refuses
# (C0 and C1 controls minus the whitespace ones: \t \n \v \f \r \x1c-\x1f \x85).
_HIDDEN_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")
# The bytes an ASCII block may hold (printable, space and the ASCII whitespace controls).
_ASCII_OK = bytes(range(0x09, 0x0E)) + bytes(range(0x1C, 0x7F))
# A field starting with "#": a comment line or an id the rule refuses; the line reader decides which.
_FIELD_HASH = re.compile(r"(?:^|\s)#", re.MULTILINE)




class _Unusual(Exception):
    """Leave this file to the line reader."""


def _text(block: bytes) -> tuple[str, bool]:
    """The block as text, and whether its scores need the strict check (`_parse`); _Unusual if the block
    holds anything the id rule could refuse inside a field."""
    if block.isascii():
        if block.translate(None, _ASCII_OK):
            raise _Unusual
        text = block.decode("ascii")
        strict = "_" in text
    else:
        text = block.decode("utf-8")  # UnicodeDecodeError: the line reader names the line and byte
        if _HIDDEN_CONTROL.search(text):
            raise _Unusual
        strict = True
    if "#" in text and _FIELD_HASH.search(text):
        raise _Unusual
    return text, strict


def _parse(text: str, strict: bool, run: Run) -> tuple[int, str | None]:
    """Add the block's lines to `run`: (lines read, the last line's tag).

    `float` takes every score the line reader's ASCII-decimal rule takes, and more only with a "_"
    ("1_0") or a non-ASCII digit; so, `strict`, when the block holds either, the score texts are
    kept and checked for them (one pass over their joined text).
    """
    n = 0
    tag = None
    kept: list[str] = []
    for line in text.split("\n"):
        try:
            qid, _, docid, _, score, tag = line.split()
        except ValueError:
            if line.split():
                raise _Unusual from None  # fewer or more than six fields
            continue
        docs = run.get(qid)
        if docs is None:
            docs = run[qid] = {}
        docs[docid] = float(score)  # ValueError: not a number at all
        if strict:
            kept.append(score)
        n += 1
    if kept:
        joined = " ".join(kept)
        if "_" in joined or not joined.isascii():
            raise _Unusual
    return n, tag


def _texts(path: str | os.PathLike) -> Iterator[tuple[str, bool]]:
    """The file's text in blocks of whole lines, each as `_text` gives it; _Unusual for anything the line
    reader must judge: not a regular file, a line or file near the limits, a corrupt gzip, bad bytes."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise _Unusual  # a pipe cannot be read twice
    # A little under each limit, so a file at the edge goes to the line reader, which owns the exact rule.
    max_line, max_total = max_line_bytes() - 8, max_input_bytes() - 8
    total = 0
    with open_binary(path) as fh:
        tail, first = b"", True
        while True:
            chunk = fh.read(_BLOCK)
            total += len(chunk)
            if total > max_total:
                raise _Unusual
            if chunk:
                cut = chunk.rfind(b"\n")
                if cut < 0:
                    tail += chunk
                    if len(tail) > max_line:
                        raise _Unusual
                    continue
                block, tail = tail + chunk[:cut], chunk[cut + 1:]
                if len(tail) > max_line:
                    raise _Unusual
            else:
                block, tail = tail, b""
            if first:
                block, first = block.removeprefix(BOM), False
            if len(block) > max_line and max(map(len, block.split(b"\n"))) > max_line:
                raise _Unusual
            yield _text(block)
            if not chunk:
                return


# Whatever reading or parsing a block can raise; each means "let the line reader say what is wrong".
_STEP_ASIDE = (_Unusual, ValueError, RepbenchError, OSError, EOFError, zlib.error, gzip.BadGzipFile)


def read_run_fast(path: str | os.PathLike) -> tuple[Run, str] | None:
    """The run and its run id exactly as `read_run_with_id` reads them, or None: read it line by line."""
    run: Run = {}
    lines = 0
    run_id: str | None = None
    try:
        for text, strict in _texts(path):
            n, tag = _parse(text, strict, run)
            lines += n
            run_id = tag if tag is not None else run_id
    except _STEP_ASIDE:
        return None
    if not run or run_id is None or sum(map(len, run.values())) != lines:
        return None  # empty, or a (qid, docid) pair repeated: the line reader names the line
    for docs in run.values():
        if not math.isfinite(sum(docs.values())):  # nan and inf carry through a sum (an overflow just falls back)
            return None
    return run, run_id


def _parse_qrels(text: str, strict: bool, qrels: Qrels, ncols: int | None) -> tuple[int, int | None]:
    """Add the block's judgements to `qrels`: (lines read, the layout: 3 for BEIR, 4 for TREC).

    `int` takes every grade the line reader's ASCII-integer rule takes, and more only with a "_" or a
    non-ASCII digit (`strict`: checked); a grade text over 12 characters is left to the line reader's
    range message, and the C int range is checked on the dict afterwards.
    """
    n = 0
    for line in text.split("\n"):
        fields = line.split()
        if not fields:
            continue
        if ncols is None:  # the first data line decides, as in the line reader
            if tuple(fields) == BEIR_QRELS_HEADER:
                ncols = 3
                continue
            ncols = 4
        if len(fields) != ncols:
            raise _Unusual
        if ncols == 4:
            qid, _, docid, grade = fields
        else:
            qid, docid, grade = fields
        if len(grade) > 12 or (strict and ("_" in grade or not grade.isascii())):
            raise _Unusual
        docs = qrels.get(qid)
        if docs is None:
            docs = qrels[qid] = {}
        docs[docid] = int(grade)  # ValueError: not an integer
        n += 1
    return n, ncols


def read_qrels_fast(path: str | os.PathLike) -> Qrels | None:
    """The qrels exactly as `read_qrels` reads them, or None: read them line by line."""
    qrels: Qrels = {}
    lines = 0
    ncols: int | None = None
    try:
        for text, strict in _texts(path):
            n, ncols = _parse_qrels(text, strict, qrels, ncols)
            lines += n
    except _STEP_ASIDE:
        return None
    if sum(map(len, qrels.values())) != lines:
        return None  # a (qid, docid) pair judged twice: the line reader names the line
    for docs in qrels.values():
        if docs and not GRADE_MIN <= min(docs.values()) <= max(docs.values()) <= GRADE_MAX:
            return None
    return qrels
