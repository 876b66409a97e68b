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
    from repbench.encoders.types import Representations


@dataclass(frozen=True)
class Scorer:
    """One score mode: either a search over the documents (`search(queries, docs, k, options)` returning
    [queries, k] scores and document indices) or a 50/50 fusion of two other modes' runs."""

    name: str
    search: Callable[..., tuple[Any, Any]] | None = None
    fuse: tuple[str, str] | None = None
    multi: bool = False  # needs K_q > 1 or K_p > 1 (docs/method.md §6.1)
    sparse: bool = False  # needs the backbone's vocab_size


def _chunk(options: dict) -> dict:
    return {} if options.get("chunk_docs") is None else {"chunk_docs": options["chunk_docs"]}


def _single_dense(queries: Representations, docs: Representations, k: int, options: dict):
    from repbench.retrieval.dense import FlatIPIndex, single_vectors

    return FlatIPIndex(single_vectors(docs)).search(single_vectors(queries), k)


def _multi_dense(queries: Representations, docs: Representations, k: int, options: dict):
    from repbench.retrieval.multivector import maxsim_search

    return maxsim_search(queries.unit_dense(), docs.unit_dense(), k, **_chunk(options))


def _sparse_max(queries: Representations, docs: Representations, k: int, options: dict):
    from repbench.retrieval.sparse import sparse_search

    return sparse_search(queries.sparse_ids, queries.sparse_weights, docs.sparse_ids, docs.sparse_weights,
                         k, int(options["vocab_size"]), **_chunk(options))


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
