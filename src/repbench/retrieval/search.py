"""The five score modes of method-spec §6.2, from two Representations to TREC-style runs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from repbench.encoders.types import Representations
from repbench.errors import RepbenchError
from repbench.retrieval.dense import FlatIPIndex, single_vectors
from repbench.retrieval.fusion import fuse
from repbench.retrieval.multivector import maxsim_search
from repbench.retrieval.sparse import sparse_search

Run = dict[str, dict[str, float]]

MODES: tuple[str, ...] = (
    "single_dense",
    "multi_dense",
    "sparse_max",
    "fusion_single_sparse_max",
    "fusion_multi_sparse_max",
)
MULTI_MODES = frozenset({"multi_dense", "fusion_multi_sparse_max"})
DEFAULT_DEPTH = 1000


def parse_modes(text: str | Iterable[str]) -> list[str]:
    """'all' or a comma list of mode names -> the modes in canonical order."""
    names = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    if names == ["all"]:
        return list(MODES)
    unknown = [n for n in names if n not in MODES]
    if unknown or not names:
        raise RepbenchError(f"unknown score mode(s) {unknown or names}; choose from {', '.join(MODES)} or 'all'")
    return [m for m in MODES if m in names]


def modes_for(k_q: int, k_p: int, modes: Sequence[str]) -> list[str]:
    """The requested modes that exist for this cell: multi-vector modes need K_q > 1 or K_p > 1.

    At K_q = K_p = 1 MaxSim is the single-vector cosine clamped at 0, so the paper does not compute it
    (method-spec §6.1).
    """
    if k_q > 1 or k_p > 1:
        return list(modes)
    return [m for m in modes if m not in MULTI_MODES]


def _to_run(qids: Sequence[str], docids: Sequence[str], scores: np.ndarray, idx: np.ndarray,
            depth: int, remove_self: bool) -> Run:
    run: Run = {}
    for row, qid in enumerate(qids):
        docs: dict[str, float] = {}
        for s, i in zip(scores[row].tolist(), idx[row].tolist(), strict=True):
            if i < 0:
                continue
            d = docids[i]
            if remove_self and d == qid:
                continue
            if len(docs) == depth:
                break
            docs[d] = float(s)
        run[qid] = docs
    return run


def retrieve(
    queries: Representations,
    docs: Representations,
    modes: Sequence[str] = MODES,
    depth: int = DEFAULT_DEPTH,
    vocab_size: int | None = None,
    remove_self: bool = True,
    chunk_docs: int | None = None,
) -> dict[str, Run]:
    """Rank `docs` for every query in each requested mode: {mode: {qid: {docid: score}}}.

    Each list holds up to `depth` documents (fewer when the corpus is smaller). With `remove_self`
    (default) a document whose id equals the query id is dropped and the list is refilled from the
    next rank (BEIR's ignore_identical_ids); pass False to reproduce the paper, which keeps it.
    Documents are searched in doc-id-descending order, so exact ties at the cut-off keep the documents
    trec_eval would keep. `vocab_size` is needed for the sparse modes.
    """
    modes = parse_modes(modes)
    if any(m in MULTI_MODES for m in modes) and queries.k == 1 and docs.k == 1:
        raise RepbenchError("multi-vector modes need K_q > 1 or K_p > 1 (use repbench.retrieval.search.modes_for)")
    needs_sparse = any("sparse" in m for m in modes)
    if needs_sparse and vocab_size is None:
        raise RepbenchError("sparse modes need the backbone's vocab_size")
    perm = sorted(range(len(docs)), key=lambda i: docs.ids[i], reverse=True)
    d = docs.select(perm)
    qids, docids = list(queries.ids), list(d.ids)
    extra = 1 if remove_self and not set(qids).isdisjoint(docids) else 0
    k = depth + extra

    base: dict[str, Run] = {}
    if any(m in ("single_dense", "fusion_single_sparse_max") for m in modes):
        s, i = FlatIPIndex(single_vectors(d)).search(single_vectors(queries), k)
        base["single_dense"] = _to_run(qids, docids, s, i, depth, remove_self)
    if any(m in MULTI_MODES for m in modes):
        kwargs = {} if chunk_docs is None else {"chunk_docs": chunk_docs}
        s, i = maxsim_search(queries.unit_dense(), d.unit_dense(), k, **kwargs)
        base["multi_dense"] = _to_run(qids, docids, s, i, depth, remove_self)
    if needs_sparse:
        kwargs = {} if chunk_docs is None else {"chunk_docs": chunk_docs}
        s, i = sparse_search(queries.sparse_ids, queries.sparse_weights, d.sparse_ids, d.sparse_weights,
                             k, int(vocab_size), **kwargs)
        base["sparse_max"] = _to_run(qids, docids, s, i, depth, remove_self)

    out: dict[str, Run] = {}
    for m in modes:
        if m == "fusion_single_sparse_max":
            out[m] = fuse(base["single_dense"], base["sparse_max"], 0.5, depth)
        elif m == "fusion_multi_sparse_max":
            out[m] = fuse(base["multi_dense"], base["sparse_max"], 0.5, depth)
        else:
            out[m] = base[m]
    return out
