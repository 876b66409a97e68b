"""The score modes of docs/method.md §6.2: one registry entry per mode (name, scorer, what it needs).

Standard library only at import time (the scorers import their numeric back ends when called), so the
report and the CLI can list and order the modes without loading torch or faiss. Adding a score mode is
one entry in SCORERS here, plus its test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from repbench.retrieval.index import DocIndex, Vectors


@dataclass(frozen=True)
class Scorer:
    """One score mode: either a search over an indexed collection (`search(queries, index, k, options)`:
    the queries' `Vectors` against a `DocIndex`, returning [queries, k] scores and tie keys,
    `repbench.retrieval.index`) or a 50/50 fusion of two
    other modes' runs."""

    name: str
    search: Callable[..., tuple[Any, Any]] | None = None
    fuse: tuple[str, str] | None = None
    multi: bool = False  # needs K_q > 1 or K_p > 1 (docs/method.md §6.1)
    sparse: bool = False  # needs the backbone's vocab_size


def _single_dense(queries: Vectors, index: DocIndex, k: int, options: dict):
    return index.flat_ip().search_keys(queries.single(), k)


def _multi_dense(queries: Vectors, index: DocIndex, k: int, options: dict):
    from repbench.retrieval.multivector import maxsim_topk

    rows, normalise = index.maxsim_rows()
    return maxsim_topk(queries.unit(), rows, index.keys, k, chunk_docs=options.get("chunk_docs"), normalise=normalise)


def _sparse_max(queries: Vectors, index: DocIndex, k: int, options: dict):
    vocab = int(options["vocab_size"])
    chunk = {} if options.get("chunk_docs") is None else {"chunk_docs": options["chunk_docs"]}
    return index.sparse(vocab).search_keys(queries.docs.sparse_ids, queries.docs.sparse_weights, k,
                                           prepared=queries.query_terms(vocab), **chunk)


DEFAULT_DEPTH = 1000  # documents per query of every run (trec_eval's default cut)

# The score modes of docs/method.md §6.2, in canonical order: adding a mode is one entry here (plus its test).
SCORERS: dict[str, Scorer] = {s.name: s for s in (
    Scorer("single_dense", search=_single_dense),
    Scorer("multi_dense", search=_multi_dense, multi=True),
    Scorer("sparse_max", search=_sparse_max, sparse=True),
    Scorer("fusion_single_sparse_max", fuse=("single_dense", "sparse_max"), sparse=True),
    Scorer("fusion_multi_sparse_max", fuse=("multi_dense", "sparse_max"), multi=True, sparse=True),
)}
MODES: tuple[str, ...] = tuple(SCORERS)
MULTI_MODES = frozenset(name for name, s in SCORERS.items() if s.multi)
