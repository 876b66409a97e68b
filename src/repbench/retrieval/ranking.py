"""The one ranking rule every run follows: trec_eval's order (standard library only).

It lives in retrieval, below evaluation, because retrieval (fusion) cuts lists with it and the TREC
writer and metrics order by it: both must agree, and the arrow may only point down.
"""

from __future__ import annotations

from collections.abc import Mapping


def trec_order(docs: Mapping[str, float]) -> list[tuple[str, float]]:
    """(docid, score) pairs in trec_eval's order: score descending, then doc id descending."""
    # Two stable sorts: secondary key first.
    items = sorted(docs.items(), key=lambda kv: kv[0], reverse=True)
    items.sort(key=lambda kv: kv[1], reverse=True)
    return items
