"""Min-max fusion of two ranked lists per query (PromptReps' hybrid, docs/method.md §6.3)."""

from __future__ import annotations

from collections.abc import Mapping

from repbench.retrieval.topk import top_docs


def minmax(docs: Mapping[str, float]) -> dict[str, float]:
    """(s - min) / max(max - min, 1e-9) within one query's retained list."""
    if not docs:
        return {}
    lo, hi = min(docs.values()), max(docs.values())
    span = max(hi - lo, 1e-9)
    return {d: (s - lo) / span for d, s in docs.items()}


def fuse(
    run_a: Mapping[str, Mapping[str, float]],
    run_b: Mapping[str, Mapping[str, float]],
    alpha: float = 0.5,
    depth: int = 1000,
) -> dict[str, dict[str, float]]:
    """alpha * mm(a) + (1 - alpha) * mm(b), a document missing from one list getting 0 there; top `depth`."""
    out: dict[str, dict[str, float]] = {}
    for qid in dict.fromkeys([*run_a, *run_b]):
        na, nb = minmax(run_a.get(qid, {})), minmax(run_b.get(qid, {}))
        fused = {d: alpha * na.get(d, 0.0) + (1 - alpha) * nb.get(d, 0.0) for d in dict.fromkeys([*na, *nb])}
        out[qid] = top_docs(fused, depth)
    return out
