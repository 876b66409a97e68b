"""trec_eval 10's text output: the per-query and "all" lines, as `trec_eval [-q] [-c] [-M N] [-l N] -m ...`.

Layout (meas_print_*.c): ``%-22s\\t%s\\t%6.4f`` for values, ``%ld`` for counts and num_q, ``'...'`` around
relstring; queries in qid byte order, measures in trec_eval's own order whatever the request order;
gm_map/gm_bpref and runid only in "all", relstring only per query, num_q once, only when asked for.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from repbench.errors import RepbenchError
from repbench.evaluation.measures import COUNTS, GEOMETRIC, ORDER, base_of, resolve
from repbench.evaluation.metrics import MissingQueriesWarning, PerQuery, aggregate, evaluate_values
from repbench.evaluation.trec import Qrels, Run
from repbench.retrieval.ranking import trec_order

if TYPE_CHECKING:
    import pandas as pd


def relstring(docs: Mapping[str, float], judged: Mapping[str, int], depth: int) -> str:
    """The grades of the top `depth` docs, one character each: 0-9, '>' above 9, '-' for a doc not in
    the qrels, '.' for one judged with a negative grade (in the pool, unjudged; m_relstring.c)."""
    chars = []
    for doc, _ in trec_order(docs)[:depth]:
        grade = judged.get(doc)
        chars.append("-" if grade is None else "." if grade < 0 else ">" if grade > 9 else str(grade))
    return "".join(chars)


def _line(name: str, qid: str, value: float | str, decimals: int = 4) -> str:
    if isinstance(value, str):
        text = value
    elif name in COUNTS or name == "num_q":
        text = str(int(round(value)))
    else:
        text = f"{value:6.{decimals}f}"
    return f"{name:<22}\t{qid}\t{text}"


def format_trec_eval(
    per_query: pd.DataFrame | PerQuery,
    per_query_rows: bool = False,
    *,
    num_q: bool = True,
    run_id: str | None = None,
    texts: Mapping[str, Mapping[str, str]] | None = None,
    qids: Sequence[str] | None = None,
    decimals: int = 4,
) -> str:
    """trec_eval's lines for the values from `evaluate` (a frame) or `evaluate_values`: per query first
    (`per_query_rows`, as ``-q``), then "all" (trec_eval's rule, `metrics.aggregate`, over the queries).

    `texts` holds per-query strings by measure name (relstring); `run_id` prints the ``runid`` line;
    `qids` is the query set where the values may lack some (only text measures asked for).
    """
    if isinstance(per_query, PerQuery):
        columns = {n: dict(zip(per_query.qids, per_query.values[:, j].tolist(), strict=True))
                   for j, n in enumerate(per_query.names)}
        frame_qids: Sequence[str] = per_query.qids
    else:
        columns = {}
        for q, m, v in per_query[["qid", "measure", "value"]].itertuples(index=False):
            columns.setdefault(m, {})[q] = v
        frame_qids = list(per_query["qid"])
    texts = texts or {}
    names = list(dict.fromkeys([*columns, *texts]))
    names.sort(key=lambda n: ORDER[base_of(n)])  # stable: cutoffs keep their ascending order
    qids = sorted(dict.fromkeys(frame_qids if qids is None else qids))
    lines: list[str] = []
    if per_query_rows:
        for qid in qids:
            for name in names:
                if name in texts:
                    lines.append(_line(name, qid, f"'{texts[name].get(qid, '')}'"))
                elif name not in GEOMETRIC:
                    lines.append(_line(name, qid, columns[name][qid], decimals))
    if run_id is not None:
        lines.append(_line("runid", "all", run_id))
    if num_q:
        lines.append(_line("num_q", "all", len(qids)))
    for name in names:
        if name not in texts:
            lines.append(_line(name, "all", aggregate(np.fromiter(columns[name].values(), float), name), decimals))
    return "\n".join(lines) + "\n"


def trec_eval(
    run: Run,
    qrels: Qrels,
    measures: Sequence[str],
    *,
    run_id: str = "",
    per_query: bool = False,
    complete: bool = False,
    max_docs: int | None = None,
    relevance_level: int = 1,
) -> tuple[str, PerQuery, list[str]]:
    """What ``trec_eval [-q] [-c] [-M max_docs] [-l level] -m ... qrels run`` prints.

    Returns the text, the per-query values of the numeric measures (`.frame()` for a table), and the
    warnings' messages (judged
    queries missing from the run). Without `complete` the average is over the judged queries the run
    retrieved for; with it, over every qrels query (missing ones scored 0).
    """
    resolved = resolve(measures)
    numeric = [m for m in resolved if m.request is not None]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MissingQueriesWarning)
        # Only text measures and num_q asked for: num_ret still decides the query set.
        frame = evaluate_values(run, qrels, numeric or ["num_ret"], relevance_level, complete=complete,
                                max_docs=max_docs)
    notes = [str(w.message) for w in caught if issubclass(w.category, MissingQueriesWarning)]
    qids = list(dict.fromkeys(frame.qids))
    if not numeric:
        frame = PerQuery(frame.qids, [], frame.values[:, :0])
    if not qids:
        raise RepbenchError("no query has both results and relevance judgements")
    texts: dict[str, dict[str, str]] = {}
    for m in resolved:
        if m.base == "relstring":
            depth = int(float(m.name[len("relstring_"):])) if m.name != "relstring" else 10
            if max_docs is not None:
                depth = min(depth, max_docs)
            texts[m.name] = {q: relstring(run.get(q, {}), qrels[q], depth) for q in qids}
    text = format_trec_eval(frame, per_query_rows=per_query, num_q=any(m.base == "num_q" for m in resolved),
                            run_id=run_id if any(m.base == "runid" for m in resolved) else None, texts=texts,
                            qids=qids)
    return text, frame, notes
