"""BM25 over raw texts: a lexical baseline run to set beside the representative-token retrievers.

Lucene's formula as Anserini uses it (k1 = 0.9, b = 0.4 by default): idf = ln(1 + (N - df + 0.5) /
(df + 0.5)), term weight tf (k1 + 1) / (tf + k1 (1 - b + b |d| / avgdl)); query terms counted with
their multiplicity. Tokens: lower-cased runs of letters and digits. Ties as trec_eval orders them.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from repbench.retrieval.topk import top_docs

_TOKEN = re.compile(r"\w+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def bm25_run(doc_ids: Sequence[str], doc_texts: Sequence[str], query_ids: Sequence[str],
             query_texts: Sequence[str], k1: float = 0.9, b: float = 0.4, depth: int = 1000) -> dict[str, dict[str, float]]:
    """{qid: {docid: score}} of the top `depth` documents per query (documents scoring 0 left out)."""
    docs = [Counter(tokenize(t)) for t in doc_texts]
    lengths = [sum(c.values()) for c in docs]
    avgdl = (sum(lengths) / len(lengths)) if lengths else 0.0
    postings: dict[str, list[tuple[int, int]]] = {}
    for i, counts in enumerate(docs):
        for term, tf in counts.items():
            postings.setdefault(term, []).append((i, tf))
    n = len(docs)
    run: dict[str, dict[str, float]] = {}
    for qid, text in zip(query_ids, query_texts, strict=True):
        scores: dict[int, float] = {}
        for term, qtf in Counter(tokenize(text)).items():
            plist = postings.get(term, [])
            idf = math.log(1.0 + (n - len(plist) + 0.5) / (len(plist) + 0.5))
            for i, tf in plist:
                norm = k1 * (1.0 - b + b * lengths[i] / avgdl) if avgdl else k1
                scores[i] = scores.get(i, 0.0) + qtf * idf * tf * (k1 + 1.0) / (tf + norm)
        ranked = {doc_ids[i]: s for i, s in scores.items() if s > 0}
        run[str(qid)] = top_docs(ranked, depth)
    return run
