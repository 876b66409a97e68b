"""The one ranking rule every run follows: trec_eval's order (standard library only).

The TREC writer and the metrics order whole lists by it; every cut at a depth is `retrieval.topk`, whose keys
follow the same rule (a test holds the two to each other). It sits in retrieval, below evaluation, so that
both layers may import it.
"""

from __future__ import annotations

from collections.abc import Mapping


def trec_order(docs: Mapping[str, float]) -> list[tuple[str, float]]:
    """(docid, score) pairs in trec_eval's order: score descending, then doc id descending."""
    # Two stable sorts: secondary key first.
    items = sorted(docs.items(), key=lambda kv: kv[0], reverse=True)
    items.sort(key=lambda kv: kv[1], reverse=True)
    return items
