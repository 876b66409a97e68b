"""Per-query effectiveness with pytrec_eval (the terrier fork), and trec_eval's rule for the "all" value.

Measure names and syntax are trec_eval's (repbench.evaluation.measures): ``ndcg_cut_10`` or
``ndcg_cut.10,20``, ``P.5,7,3``, ``map``, ``utility.2,-1,0,0``, ``all_trec``; ``recip_rank_<N>`` is
reciprocal rank on the run cut to its top N in trec_eval order, i.e. MRR@N (docs/method.md §6.5).

Which queries get rows: with `complete` (the default, trec_eval ``-c``, the MS MARCO convention) every
qrels query, a judged query with no retrieved documents scoring 0 on every measure but ``num_rel`` (its
true count, as trec_eval prints it); without, only the judged queries the run retrieved for (trec_eval's
default). Either way judged queries missing from the run are counted in a warning, and run queries
without judgements are ignored, as trec_eval ignores them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

# The C extension itself: pytrec_eval's Python wrapper rewrites measure strings with a regex that cuts
# "utility.2,-1,0,0" to "utility.2" and "ndcg.1=3,2=9" to "ndcg.1" (which crashes the interpreter).
from pytrec_eval_ext import RelevanceEvaluator

from repbench.errors import RepbenchError
from repbench.evaluation.measures import COUNTS, DEFAULT_MEASURES, GEOMETRIC, MIN_GEO_MEAN, Measure, resolve
from repbench.retrieval.ranking import trec_order

if TYPE_CHECKING:
    import pandas as pd
# pandas is imported only where a frame is built: `repbench eval-run` prints without one, and importing
# pandas alone cost about a third of a direct pytrec_eval script's whole run (issue 20).


class MissingQueriesWarning(UserWarning):
    """Judged queries absent from a run (scored 0 with `complete`, left out without)."""


def _plain_qrels(qrels: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    """{str: {str: int}}, always copied: pytrec_eval must never refuse qrels, because its constructor's
    error path frees the qrels dict one reference early (RelevanceEvaluator_init decrefs it, then
    dealloc decrefs it again), corrupting memory. The copy is ~1% of an evaluation."""
    try:
        # pytrec_eval drops queries with no judgements; so does this, so both agree on the query set.
        plain = {str(q): {str(d): int(g) for d, g in docs.items()} for q, docs in qrels.items() if docs}
    except (TypeError, ValueError) as exc:
        raise RepbenchError(f"qrels grades must be integers: {exc}") from None
    if not plain:
        raise RepbenchError("the qrels hold no judgements")
    return plain


def _judged_run(run: Mapping[str, Mapping[str, float]], qrels: Mapping[str, object]) -> dict:
    """The run's judged, non-empty queries, handed to pytrec_eval without copying each query's docs.

    Copying 7 million (doc, score) pairs into fresh dicts cost as much as the evaluation itself; a query's
    docs are copied only when they are not a plain dict.
    """
    out = {}
    for q, docs in run.items():
        q = q if type(q) is str else str(q)
        if q in qrels and docs:
            out[q] = docs if type(docs) is dict else dict(docs)
    return out


def _plain_run(run: Mapping[str, Mapping[object, object]]) -> dict[str, dict[str, float]]:
    try:
        return {q: {str(d): float(s) for d, s in docs.items()} for q, docs in run.items()}
    except (TypeError, ValueError) as exc:
        raise RepbenchError(f"run scores must be numbers: {exc}") from None


def _pytrec(qrels: dict, requests: set[str], run: dict, relevance_level: int) -> dict[str, dict[str, float]]:
    if not run:
        return {}
    evaluator = RelevanceEvaluator(query_relevance=qrels, measures=requests, relevance_level=relevance_level,
                                   judged_docs_only_flag=False)
    try:
        return evaluator.evaluate(run)
    except TypeError:
        # Doc ids that are not str or scores that are not float/int: convert and retry. (evaluate's
        # error path, unlike the constructor's, only leaks the part of the run it had copied.)
        return evaluator.evaluate(_plain_run(run))


def _passes(measures: Sequence[Measure]) -> list[list[Measure]]:
    """Split the requests so that no pytrec_eval call gets one base twice (ndcg and ndcg.1=3)."""
    passes: list[list[Measure]] = []
    for m in measures:
        for p in passes:
            if all(o.request == m.request or o.base != m.base for o in p):
                p.append(m)
                break
        else:
            passes.append([m])
    return passes


def _as_measures(measures: Sequence[str | Measure]) -> list[Measure]:
    resolved = [m for m in measures if isinstance(m, Measure)]
    if not resolved:
        return resolve([str(m) for m in measures], text=False)
    if len(resolved) != len(measures):
        raise RepbenchError("measures must be all trec_eval specs or all resolved Measure objects")
    return resolved


def check_measures(measures: Sequence[str]) -> list[str]:
    """The requested names, deduplicated, each checked on a one-document toy run, so an unknown name
    fails before any encoding or writing."""
    names = list(dict.fromkeys(m for m in measures if m))
    if not names:
        raise RepbenchError("--measures names no measure")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            evaluate({"q": {"d": 1.0}}, {"q": {"d": 1}}, names)
        except ValueError as exc:  # pytrec_eval's own refusal
            raise RepbenchError(f"--measures {','.join(names)}: {exc}") from None
    return names


def _truncate(run: Mapping[str, Mapping[str, float]], depth: int) -> dict[str, dict[str, float]]:
    return {q: dict(trec_order(docs)[:depth]) for q, docs in run.items()}


@dataclass(frozen=True)
class PerQuery:
    """Per-query values without pandas: `values[i, j]` is measure `names[j]` of query `qids[i]`."""

    qids: list[str]
    names: list[str]
    values: np.ndarray

    def frame(self) -> pd.DataFrame:
        """The tidy frame `evaluate` returns: columns qid, measure, value, query by query."""
        import pandas as pd

        return pd.DataFrame({"qid": np.repeat(np.array(self.qids, dtype=object), len(self.names)),
                             "measure": self.names * len(self.qids), "value": self.values.ravel()})


def evaluate(
    run: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    measures: Sequence[str | Measure] = DEFAULT_MEASURES,
    relevance_level: int = 1,
    *,
    complete: bool = True,
    max_docs: int | None = None,
) -> pd.DataFrame:
    """Per-query values: a tidy frame with columns qid, measure, value (`evaluate_values`, as a frame)."""
    return _values(run, qrels, measures, relevance_level, complete, max_docs, stacklevel=3).frame()


def evaluate_values(
    run: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    measures: Sequence[str | Measure] = DEFAULT_MEASURES,
    relevance_level: int = 1,
    *,
    complete: bool = True,
    max_docs: int | None = None,
) -> PerQuery:
    """Per-query values, one row per query and one column per measure.

    Rows come in qrels query order, then measure order (as requested, nicknames expanded). Measures are
    trec_eval specs or resolved `Measure`s; the text measures (runid, relstring) and num_q are printed by
    repbench.evaluation.trec_eval_text, not computed here. `relevance_level` is the minimum grade counted
    relevant by binary measures (trec_eval ``-l``); nDCG uses the graded gains. `max_docs` keeps each
    query's top N in trec_eval order (trec_eval ``-M``). ``gm_map``/``gm_bpref`` per query are the AP/bpref
    floored at 1e-5 (trec_eval's MIN_GEO_MEAN); `aggregate` turns them into the geometric mean.
    """
    return _values(run, qrels, measures, relevance_level, complete, max_docs, stacklevel=3)


def _values(run: Mapping[str, Mapping[str, float]], qrels: Mapping[str, Mapping[str, int]],
            measures: Sequence[str | Measure], relevance_level: int, complete: bool, max_docs: int | None,
            stacklevel: int) -> PerQuery:
    """`evaluate_values`; `stacklevel` points the missing-queries warning at the public function's caller."""
    resolved = _as_measures(measures)
    if not resolved:
        raise RepbenchError("no measures requested")
    if max_docs is not None and max_docs < 1:
        raise RepbenchError(f"max docs per query must be a positive integer, got {max_docs}")
    qrels_plain = _plain_qrels(qrels)
    judged = _judged_run(run, qrels_plain)
    if max_docs is not None:
        judged = _truncate(judged, max_docs)
    missing = [q for q in qrels_plain if q not in judged]
    if missing:
        fate = "score 0" if complete else "are left out of the average (complete=True / -c scores them 0)"
        warnings.warn(
            f"{len(missing)} of {len(qrels_plain)} judged queries have no retrieved documents and {fate} "
            f"(e.g. {', '.join(missing[:5])})",
            MissingQueriesWarning,
            stacklevel=stacklevel,
        )

    columns: dict[str, dict[str, float]] = {}
    for group in _passes(resolved):
        result = _pytrec(qrels_plain, {m.request for m in group if m.request}, judged, relevance_level)
        for m in group:
            try:
                col = {q: per[m.key] for q, per in result.items()}
            except KeyError:
                raise RepbenchError(f"pytrec_eval returned no value for measure {m.name!r}") from None
            if m.cutoff is not None:
                # MRR@N from the full ranking: the first relevant doc is within the top N iff 1/rank >= 1/N,
                # exactly the recip_rank of the run cut to N in trec_eval order.
                floor = 1.0 / m.cutoff
                col = {q: (v if v >= floor else 0.0) for q, v in col.items()}
            elif m.name in GEOMETRIC:
                col = {q: math.exp(v) for q, v in col.items()}  # pytrec_eval holds log(max(x, 1e-5))
            columns[m.name] = col
    if complete and missing and "num_rel" in columns:
        columns["num_rel"].update(_num_rel(qrels_plain, missing, relevance_level))

    qids = list(qrels_plain) if complete else [q for q in qrels_plain if q in judged]
    names = [m.name for m in resolved]
    values = np.empty((len(qids), len(names)), dtype=float)
    for j, n in enumerate(names):
        col = columns[n]
        values[:, j] = [col.get(q, 0.0) for q in qids]
    return PerQuery(qids, names, values)


def _num_rel(qrels: dict[str, dict[str, int]], qids: list[str], relevance_level: int) -> dict[str, float]:
    """num_rel of judged queries the run lacks, as trec_eval -c prints it: from pytrec_eval, on a
    one-document placeholder ranking (num_rel does not depend on the ranking)."""
    placeholder = "\x00repbench-placeholder"
    sub = {q: qrels[q] for q in qids}
    result = _pytrec(sub, {"num_rel"}, {q: {placeholder: 0.0} for q in qids}, relevance_level)
    return {q: per["num_rel"] for q, per in result.items()}


def aggregate(values: Sequence[float] | np.ndarray, measure: str) -> float:
    """trec_eval's "all" value of one measure over the given queries.

    Counts (num_ret, num_rel, num_rel_ret, num_nonrel_judged_ret) are summed; gm_map and gm_bpref are the
    geometric mean of the per-query values floored at 1e-5, exp(mean(log(max(v, 1e-5)))), trec_eval's
    formula (meas_avg.c), so a query scoring 0 counts as 1e-5; everything else is the arithmetic mean.
    """
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        raise RepbenchError(f"no queries to average {measure!r} over")
    if measure in COUNTS:
        return float(v.sum())
    if measure in GEOMETRIC:
        return float(np.exp(np.mean(np.log(np.maximum(v, MIN_GEO_MEAN)))))
    return float(v.mean())


def summarize(per_query: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """trec_eval's "all" value (`aggregate`: mean; geometric mean for gm_*; sum for counts) as column
    `mean`, and the query count `n`, per measure (and per the `by` columns), in first-seen order."""
    keys = [*by, "measure"]
    geo = per_query["measure"].isin(GEOMETRIC)
    work = per_query
    if geo.any():
        logs = np.log(np.maximum(per_query["value"].to_numpy(dtype=float), MIN_GEO_MEAN))
        work = per_query.assign(value=np.where(geo, logs, per_query["value"]))
    out = work.groupby(keys, sort=False)["value"].agg(mean="mean", total="sum", n="count").reset_index()
    is_geo, is_count = out["measure"].isin(GEOMETRIC), out["measure"].isin(COUNTS)
    out["mean"] = np.where(is_geo, np.exp(out["mean"]), np.where(is_count, out["total"], out["mean"]))
    return out.drop(columns="total")
