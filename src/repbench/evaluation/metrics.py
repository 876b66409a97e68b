"""Per-query effectiveness with pytrec_eval (the terrier fork), over the complete qrels query set.

Measure names are trec_eval's output names (``ndcg_cut_10``, ``recall_1000``, ``P_10``, ``map``,
``recip_rank``). ``recip_rank_<N>`` is the one addition: reciprocal rank on the run cut to its top N in
trec_eval order, i.e. MRR@N as the paper computes it (method-spec §6.5).

Every qrels query gets a value for every measure. A judged query with no retrieved documents scores 0
(trec_eval ``-c``, the MS MARCO convention) and is counted in a warning; run queries without judgements
are ignored, as trec_eval ignores them.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence

import pandas as pd
import pytrec_eval

from repbench.errors import RepbenchError
from repbench.evaluation.trec import trec_order

DEFAULT_MEASURES: tuple[str, ...] = ("ndcg_cut_10", "recip_rank_10", "recall_100", "recall_1000")

_CUTOFF_RR = re.compile(r"^recip_rank_(\d+)$")


class MissingQueriesWarning(UserWarning):
    """Judged queries absent from a run; they were scored 0."""


def _pytrec_measure(name: str) -> str:
    """trec_eval output name -> pytrec_eval request ("ndcg_cut_10" -> "ndcg_cut.10", "map" -> "map")."""
    if name in pytrec_eval.supported_measures:
        return name
    # The longest supported base wins ("map_cut_10" is map_cut + 10, not map + cut_10).
    for base in sorted(pytrec_eval.supported_measures, key=len, reverse=True):
        if name.startswith(base + "_") and len(name) > len(base) + 1:
            return f"{base}.{name[len(base) + 1:]}"
    raise RepbenchError(
        f"unknown measure {name!r}; use trec_eval names such as ndcg_cut_10, recall_1000, P_10, map, "
        "recip_rank, or recip_rank_<N> for MRR@N"
    )


def _truncate(run: Mapping[str, Mapping[str, float]], depth: int) -> dict[str, dict[str, float]]:
    return {q: dict(trec_order(docs)[:depth]) for q, docs in run.items()}


def evaluate(
    run: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    measures: Sequence[str] = DEFAULT_MEASURES,
    relevance_level: int = 1,
) -> pd.DataFrame:
    """Per-query values: a tidy frame with columns qid, measure, value.

    Rows come in qrels query order, then the order of `measures`. `relevance_level` is the minimum grade
    counted as relevant by binary measures (recall, recip_rank, P); nDCG uses the graded gains as they are.
    """
    measures = list(dict.fromkeys(measures))
    if not measures:
        raise RepbenchError("no measures requested")
    qrels_plain = {str(q): {str(d): int(g) for d, g in docs.items()} for q, docs in qrels.items()}
    if not qrels_plain:
        raise RepbenchError("the qrels hold no judgements")
    # Only judged queries matter, and pytrec_eval skips queries with no documents anyway.
    run_plain = {
        str(q): {str(d): float(s) for d, s in docs.items()}
        for q, docs in run.items()
        if str(q) in qrels_plain and docs
    }
    missing = [q for q in qrels_plain if q not in run_plain]
    if missing:
        warnings.warn(
            f"{len(missing)} of {len(qrels_plain)} judged queries have no retrieved documents and score 0 "
            f"(e.g. {', '.join(missing[:5])})",
            MissingQueriesWarning,
            stacklevel=2,
        )

    # One evaluator per run variant: the full run, and one truncated copy per MRR@N cutoff.
    groups: dict[int | None, list[str]] = {}
    for name in measures:
        m = _CUTOFF_RR.match(name)
        groups.setdefault(int(m.group(1)) if m else None, []).append(name)
    values: dict[str, dict[str, float]] = {}
    for cutoff, names in groups.items():
        variant = run_plain if cutoff is None else _truncate(run_plain, cutoff)
        requests = ["recip_rank"] if cutoff is not None else [_pytrec_measure(n) for n in names]
        evaluator = pytrec_eval.RelevanceEvaluator(qrels_plain, set(requests), relevance_level=relevance_level)
        result = evaluator.evaluate(variant)
        for qid, per in result.items():
            row = values.setdefault(qid, {})
            if cutoff is not None:
                for n in names:
                    row[n] = per["recip_rank"]
            else:
                for n in names:
                    if n not in per:
                        raise RepbenchError(f"pytrec_eval returned no value for measure {n!r}")
                    row[n] = per[n]
    rows = [
        (qid, name, float(values.get(qid, {}).get(name, 0.0)))
        for qid in qrels_plain
        for name in measures
    ]
    return pd.DataFrame(rows, columns=["qid", "measure", "value"])


def summarize(per_query: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Mean and query count per measure (and per the `by` columns), in first-seen order."""
    keys = [*by, "measure"]
    out = per_query.groupby(keys, sort=False)["value"].agg(mean="mean", n="count").reset_index()
    return out


def format_trec_eval(per_query: pd.DataFrame, per_query_rows: bool = False, decimals: int = 4) -> str:
    """trec_eval's text layout: ``measure<TAB>qid<TAB>value``, measure padded to 22 characters.

    With `per_query_rows`, each query's rows come first (as ``trec_eval -q``), then the ``all`` rows,
    whose value is the mean over every qrels query (missing ones counted as 0, as ``trec_eval -c``).
    """
    lines: list[str] = []
    measures = list(dict.fromkeys(per_query["measure"]))
    if per_query_rows:
        for row in per_query.itertuples(index=False):
            lines.append(f"{row.measure:<22}\t{row.qid}\t{row.value:.{decimals}f}")
    lines.append(f"{'num_q':<22}\tall\t{per_query['qid'].nunique()}")
    means = per_query.groupby("measure", sort=False)["value"].mean()
    for name in measures:
        lines.append(f"{name:<22}\tall\t{means[name]:.{decimals}f}")
    return "\n".join(lines) + "\n"
