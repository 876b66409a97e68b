"""The pandas API: `repbench.evaluate(run, qrels, measures) -> DataFrame`, one row per query and measure.

Runs and qrels may be file paths (TREC run; TREC or BEIR qrels; gzip too), nested dicts
({qid: {docid: score}}, {qid: {docid: grade}}) or DataFrames with ir_measures' / ranx's column names
(query_id, doc_id, score; query_id, doc_id, relevance) or repbench's (qid, docid, score / grade).
Measures take trec_eval's names (ndcg_cut_10, ndcg_cut.10, map, P.5) and ir_measures' (nDCG@10, AP, P@5,
R@100, RR@10). The values are `repbench eval-run -c`'s: every judged query is scored, 0 when missing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from repbench.errors import RepbenchError
from repbench.evaluation.metrics import DEFAULT_MEASURES
from repbench.evaluation.metrics import evaluate as _evaluate

_QID = ("query_id", "qid", "q_id")
_DOCID = ("doc_id", "docid", "d_id", "corpus-id", "corpus_id")
_SCORE = ("score",)
_GRADE = ("relevance", "grade", "label", "score")


def _column(frame: pd.DataFrame, names: tuple[str, ...], what: str) -> str:
    for name in names:
        if name in frame.columns:
            return name
    raise RepbenchError(f"the {what} DataFrame needs one of the columns {', '.join(names)}; it has "
                        f"{', '.join(map(str, frame.columns))}")


def _nested(frame: pd.DataFrame, value_names: tuple[str, ...], what: str, cast: type) -> dict[str, dict[str, Any]]:
    q, d, v = (_column(frame, _QID, what), _column(frame, _DOCID, what), _column(frame, value_names, what))
    out: dict[str, dict[str, Any]] = {}
    for qid, docid, value in zip(frame[q].astype(str), frame[d].astype(str), frame[v], strict=True):
        out.setdefault(qid, {})[docid] = cast(value)
    return out


def _run(run: Any) -> Mapping[str, Mapping[str, float]]:
    if isinstance(run, (str, os.PathLike)):
        from repbench.evaluation.trec import read_run

        return read_run(run)
    if isinstance(run, pd.DataFrame):
        return _nested(run, _SCORE, "run", float)
    return run


def _qrels(qrels: Any) -> Mapping[str, Mapping[str, int]]:
    if isinstance(qrels, (str, os.PathLike)):
        from repbench.evaluation.trec import read_qrels

        return read_qrels(qrels)
    if isinstance(qrels, pd.DataFrame):
        return _nested(qrels, _GRADE, "qrels", int)
    return qrels


def evaluate(run: Any, qrels: Any, measures: Sequence[str] | str = DEFAULT_MEASURES, relevance_level: int = 1,
             *, complete: bool = True) -> pd.DataFrame:
    """Per-query effectiveness as a tidy DataFrame with columns qid, measure, value.

    >>> df = repbench.evaluate("run.trec", "qrels.tsv", ["nDCG@10", "AP"])
    >>> df.pivot(index="qid", columns="measure", values="value").mean()
    """
    if isinstance(measures, str):
        measures = [m for m in measures.split(",") if m]
    return _evaluate(_run(run), _qrels(qrels), list(measures), relevance_level, complete=complete)
