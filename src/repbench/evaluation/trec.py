"""TREC run and qrels files, read and written under trec_eval's own input rules.

Run lines are ``qid Q0 docid rank score tag`` (six whitespace-separated fields; trec_eval ignores anything
after the tag, and so does this reader: its test file ``results.trunc`` has such trailing text). As in trec_eval, the
rank column is ignored: the order is score descending, then doc id descending (byte-wise string order),
so ties resolve the same way here, in trec_eval and in pytrec_eval. A doc id listed twice for one query
is refused (trec_eval refuses it too). Blank lines and lines starting with ``#`` are skipped; a ``#``
inside a field (trec_eval's test suite has doc ids like ``CR#93E-1860``) is part of the field.

Qrels are either TREC (``qid iter docid grade``) or BEIR TSV (header ``query-id corpus-id score``, then
three columns). Grades must be integers; all grades are kept, including 0.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from repbench.errors import InputError
from repbench.evaluation.trec_fast import (  # the formats' constants live there, the lower module
    BEIR_QRELS_HEADER,
    GRADE_MAX,
    GRADE_MIN,
    Qrels,
    Run,
    read_qrels_fast,
    read_run_fast,
)
from repbench.ids import check_id
from repbench.io import atomic_write_text, iter_lines
from repbench.retrieval.ranking import trec_order

# Plain ASCII decimals only: Python's float()/int() would also take "1_0" or Arabic-Indic digits, which
# trec_eval reads differently (atof stops at the first odd character).
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|infinity|nan)", re.ASCII | re.IGNORECASE)
_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)


def _lines(path: str | os.PathLike) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of every line that is neither blank nor a comment."""
    for lineno, line in iter_lines(path):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        yield lineno, fields


def read_run(path: str | os.PathLike) -> Run:
    """Read a TREC run file into {qid: {docid: score}}.

    Refuses (InputError naming file and line): a line with fewer than six fields, a score that is not a
    finite number, and a doc id repeated within one query.
    """
    return read_run_with_id(path)[0]


def read_run_with_id(path: str | os.PathLike) -> tuple[Run, str]:
    """`read_run`, and the run id trec_eval prints as ``runid``: the tag of the file's last line.

    Read at C speed where the file is plain (repbench.evaluation.trec_fast); anything unusual is read
    here line by line, which gives the same run or the exact error with its line number.
    """

    fast = read_run_fast(path)
    if fast is not None:
        return fast
    return read_run_lines(path)


def read_run_lines(path: str | os.PathLike) -> tuple[Run, str]:
    """`read_run_with_id` line by line: the reference the fast path must agree with, and its fallback."""
    run: Run = {}
    run_id = ""
    first_seen: dict[tuple[str, str], int] = {}
    for lineno, fields in _lines(path):
        if len(fields) < 6:
            raise InputError(
                path, lineno,
                f"expected 6 whitespace-separated fields 'qid Q0 docid rank score tag', got {len(fields)}",
            )
        qid, _, docid, _, score_text = fields[:5]
        check_id(path, lineno, qid, "the query id (column 1)")
        check_id(path, lineno, docid, "the doc id (column 3)")
        if not _NUMBER.fullmatch(score_text):
            raise InputError(path, lineno, f"expected a numeric score in column 5, got {score_text!r}")
        score = float(score_text)
        if not math.isfinite(score):
            raise InputError(path, lineno, f"expected a finite score in column 5, got {score_text!r}")
        key = (qid, docid)
        if key in first_seen:
            raise InputError(
                path, lineno,
                f"duplicate doc id {docid!r} for query {qid!r} (first on line {first_seen[key]})",
            )
        first_seen[key] = lineno
        run.setdefault(qid, {})[docid] = score
        run_id = fields[5]
    if not run:
        raise InputError(path, None, "expected at least one run line 'qid Q0 docid rank score tag' (the file "
                                     "holds none: every query would silently score 0)")
    return run, run_id


# pytrec_eval and trec_eval hold a grade in a C int: a larger one wraps or crashes the C code.


def _parse_grade(path: str | os.PathLike, lineno: int, text: str, column: int) -> int:
    if not _INTEGER.fullmatch(text):
        raise InputError(path, lineno, f"expected an integer relevance grade in column {column}, got {text!r}")
    if len(text) > 12 or not GRADE_MIN <= int(text) <= GRADE_MAX:
        raise InputError(path, lineno, f"expected a relevance grade in column {column} within the C int range "
                                       f"[{GRADE_MIN}, {GRADE_MAX}] trec_eval reads, got {text[:40]!r}")
    return int(text)


def read_qrels(path: str | os.PathLike) -> Qrels:
    """Read TREC qrels (4 columns) or BEIR TSV qrels (header + 3 columns) into {qid: {docid: grade}}.

    The format is decided by the first data line: three fields mean BEIR, which must then be the header
    ``query-id corpus-id score``; four fields mean TREC. Every later line must have the same number of
    fields. A (qid, docid) pair judged twice is refused, since the two grades could disagree. Read at C
    speed where the file is plain (repbench.evaluation.trec_fast), else line by line (`read_qrels_lines`).
    """

    fast = read_qrels_fast(path)
    return fast if fast is not None else read_qrels_lines(path)


def read_qrels_lines(path: str | os.PathLike) -> Qrels:
    """`read_qrels` line by line: the reference the fast path must agree with, and its fallback."""
    qrels: Qrels = {}
    first_seen: dict[tuple[str, str], int] = {}
    ncols: int | None = None
    for lineno, fields in _lines(path):
        if ncols is None:
            if len(fields) == 3:
                if tuple(fields) != BEIR_QRELS_HEADER:
                    raise InputError(
                        path, lineno,
                        "expected the BEIR header 'query-id<TAB>corpus-id<TAB>score' on the first line "
                        f"of a 3-column qrels file, got {' '.join(fields)!r}",
                    )
                ncols = 3
                continue
            if len(fields) != 4:
                raise InputError(
                    path, lineno,
                    "expected 4 fields 'qid iter docid grade' (TREC) or the 3-column BEIR header, "
                    f"got {len(fields)} fields",
                )
            ncols = 4
        if len(fields) != ncols:
            layout = "'query-id corpus-id score'" if ncols == 3 else "'qid iter docid grade'"
            raise InputError(path, lineno, f"expected {ncols} fields {layout}, got {len(fields)}")
        if ncols == 3:
            qid, docid, grade_text = fields
        else:
            qid, _, docid, grade_text = fields
        check_id(path, lineno, qid, "the query id (column 1)")
        check_id(path, lineno, docid, f"the doc id (column {ncols - 1})")
        grade = _parse_grade(path, lineno, grade_text, ncols)
        key = (qid, docid)
        if key in first_seen:
            raise InputError(
                path, lineno, f"duplicate judgement for query {qid!r}, doc {docid!r} (first on line {first_seen[key]})"
            )
        first_seen[key] = lineno
        qrels.setdefault(qid, {})[docid] = grade
    return qrels


def require_relevant(qrels: Qrels, path: str | os.PathLike, relevance_level: int = 1) -> Qrels:
    """Refuse qrels with no judgement counted relevant: every measure would be 0 without a word."""
    if not qrels:
        raise InputError(path, None, "expected at least one judgement")
    if not any(g >= relevance_level for docs in qrels.values() for g in docs.values()):
        top = max(g for docs in qrels.values() for g in docs.values())
        raise InputError(path, None, f"no judgement has a grade >= {relevance_level} (the highest is {top}), so "
                                     "every measure would be 0; expected at least one relevant document")
    return qrels


def round_scores(run: Mapping[str, Mapping[str, float]], decimals: int = 6) -> Run:
    """Scores rounded as they are written, so a run read back from disk equals the one evaluated."""
    return {q: {d: round(float(s), decimals) for d, s in docs.items()} for q, docs in run.items()}


def format_run_lines(run: Mapping[str, Mapping[str, float]], tag: str, decimals: int = 6) -> Iterable[str]:
    for qid, docs in run.items():
        for rank, (docid, score) in enumerate(trec_order(docs), start=1):
            yield f"{qid} Q0 {docid} {rank} {score:.{decimals}f} {tag}\n"


def write_run(path: str | os.PathLike, run: Mapping[str, Mapping[str, float]], tag: str = "repbench",
              decimals: int = 6) -> Path:
    """Write a TREC run atomically, each query's docs in trec_eval order with 1-based ranks.

    Ids or a tag containing whitespace would make an unreadable file, so they are refused.
    """
    if not tag or any(c.isspace() for c in tag):
        raise ValueError(f"run tag must be a non-empty string without whitespace, got {tag!r}")
    from repbench.ids import id_problem

    for qid, docs in run.items():
        for name in (qid, *docs):
            if id_problem(name) is not None:
                raise ValueError(f"query/doc id {name!r}: {id_problem(name)}")
    return atomic_write_text(path, "".join(format_run_lines(run, tag, decimals)))
