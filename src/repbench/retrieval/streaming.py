"""Exact search over a store too large for memory: shard by shard, chunk by chunk, merged top-depth.

Each chunk of documents is ranked with the same scorers as the in-memory path
(`repbench.retrieval.search.SCORERS`: faiss inner product, blocked MaxSim, sparse products). Every
document carries its int64 tie key over the whole collection (its position in trec_eval's order of
the ids, computed once per search), so the per-chunk lists merge exactly with the one top-k
(`repbench.retrieval.topk`): score descending, then doc id descending. A document's score does not
depend on which other documents share its chunk, so the merged lists are the in-memory lists: same
ids, same order, same scores. Fusion then
normalises each mode's retained top-`depth` list (docs/method.md §6.3) exactly as the in-memory path.

Memory is bounded by the chunk (`chunk_docs`, or `max_memory` bytes), plus the running lists
(queries x depth), plus, per document, its tie key, its row and its id packed as UTF-8 (24 B + the
id's bytes, kept per process for the store last searched), never by the documents' vectors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from repbench.encoders.store import Store, open_store
from repbench.encoders.types import Representations
from repbench.errors import RepbenchError
from repbench.retrieval.fusion import fuse
from repbench.retrieval.index import DocIndex, Vectors, trec_keys
from repbench.retrieval.multivector import DEFAULT_BUDGET
from repbench.retrieval.search import DEFAULT_DEPTH, MODES, MULTI_MODES, SCORERS, Run, parse_modes, to_run
from repbench.retrieval.topk import RunningTopK
from repbench.retrieval.transfer import copier_for, prefetched, to_device

DEFAULT_MAX_MEMORY = 1 << 30  # bytes for one chunk's working set when neither limit is given


def chunk_docs_for(max_memory: int, k_p: int, hidden: int, sparse_width: int, store_bytes: int = 2) -> int:
    """Documents per chunk so one chunk's working set stays under `max_memory` bytes.

    Per document: the stored dense rows, left in the store's dtype (the scorers normalise and convert
    them block by block), with 4 B per element of room (the one float32 copy of the unit vectors made
    when single_dense and MaxSim share them, `repbench.retrieval.index.Vectors`)
    (K_p*H*(store_bytes+4)), the sparse rows through CSR/CSC conversions (~48 B per entry) and the single
    vector; plus fixed room for the similarity blocks and the [queries, chunk] score buffers.
    """
    fixed = DEFAULT_BUDGET * 4 + (64 << 20)
    per_doc = k_p * hidden * (store_bytes + 4) + sparse_width * 48 + hidden * 8 + 64
    if max_memory <= fixed + per_doc:
        raise RepbenchError(f"--max-memory {max_memory} B is too small: one chunk needs at least "
                            f"{fixed + per_doc} B here ({per_doc} B per document + {fixed} B fixed)")
    return max(1, (max_memory - fixed) // per_doc)


def store_shapes(store: Store) -> tuple[int, int, int, int]:
    """(K_p, H, widest sparse row, bytes per stored dense element), read from the shard headers only."""
    from safetensors import safe_open

    k_p = hidden = width = 0
    store_bytes = 4
    for stem, _ in store.shards:
        with safe_open(str(stem.with_suffix(".safetensors")), framework="pt") as fh:
            _, k_p, hidden = fh.get_slice("dense").get_shape()
            width = max(width, fh.get_slice("sparse_ids").get_shape()[1])
            store_bytes = {"F16": 2, "BF16": 2, "F32": 4}.get(fh.get_slice("dense").get_dtype(), 4)
    return k_p, hidden, width, store_bytes


def _chunks(docs: Store | Representations, chunk_docs: int, verify: bool) -> Iterator[Representations]:
    if isinstance(docs, Store):
        yield from docs.chunks(chunk_docs, verify=verify, float32=False)  # scorers convert block by block
        return
    for lo in range(0, len(docs), chunk_docs):
        yield docs.select(list(range(lo, min(len(docs), lo + chunk_docs))))


def _placed(chunks: Iterable[Representations], keys: np.ndarray, device: torch.device | str | None
            ) -> Iterator[tuple[Representations, np.ndarray, torch.Tensor | None]]:
    """(chunk, its slice of the collection's tie keys, those keys on `device` or None), empty chunks
    skipped; with `device`, each chunk's dense rows and keys moved there, the next copy started before
    this chunk is scored (`repbench.retrieval.transfer.prefetched`)."""

    def sliced() -> Iterator[tuple[Representations, np.ndarray]]:
        lo = 0
        for chunk in chunks:
            if len(chunk):
                yield chunk, keys[lo:lo + len(chunk)]
            lo += len(chunk)

    if device is None:
        yield from ((chunk, chunk_keys, None) for chunk, chunk_keys in sliced())
        return

    def split(item: tuple[Representations, np.ndarray]) -> tuple[torch.Tensor, ...]:
        return item[0].dense, item[0].valid, torch.from_numpy(item[1])

    def join(item: tuple[Representations, np.ndarray], moved: tuple[torch.Tensor, ...]):
        return dataclasses.replace(item[0], dense=moved[0], valid=moved[1]), item[1], moved[2]

    yield from prefetched(sliced(), split, join, copier_for(device))


def _all_ids(docs: Store | Representations) -> Iterator[list[str]]:
    if isinstance(docs, Store):
        for i in range(len(docs.shards)):
            yield docs.read_shard(i, verify=False)[0]  # the sidecar agrees with the manifest
    else:
        yield list(docs.ids)


class _Collection:
    """A collection's tie keys (`trec_keys`: keys by row, rows by key) and its ids by row. A store's ids
    are kept packed (their UTF-8 bytes end to end, and where each starts): 8 B per document plus the
    ids' own bytes, not a Python string each, and reading the kept documents' ids back does not parse
    every shard's sidecar again."""

    def __init__(self, ids: Sequence[str], pack: bool):
        self.keys, self.order = trec_keys(ids)
        if not pack:
            self._ids: Sequence[str] | None = ids
            return
        self._ids = None
        # surrogatepass: any str round-trips, even a lone surrogate a hand-edited sidecar could hold
        encoded = [i.encode("utf-8", "surrogatepass") for i in ids]
        self._starts = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=self._starts[1:])
        self._bytes = b"".join(encoded)

    def ids_of(self, rows: np.ndarray) -> list[str]:
        """The ids of `rows` (row numbers in collection order)."""
        if self._ids is not None:
            return [self._ids[r] for r in rows.tolist()]
        data = self._bytes
        # the bounds as Python ints in two vector ops: indexing numpy per id costs more than the decode
        los, his = self._starts[rows].tolist(), self._starts[rows + 1].tolist()
        return [data[lo:hi].decode("utf-8", "surrogatepass") for lo, hi in zip(los, his, strict=True)]


# A store's keys and ids, made once per process: a server or a sweep that searches the same store
# again does not re-read, re-sort or re-parse every id. Keyed by the store's path, manifest hashes and size.
_STORE_KEYS: dict[tuple[str, str, int], _Collection] = {}


def _collection(docs: Store | Representations) -> _Collection:
    if not isinstance(docs, Store):
        return _Collection(list(docs.ids), pack=False)
    tag = (str(docs.root.resolve()), str(docs.manifest.get("input_hash")) + str(docs.manifest.get("options_hash")),
           len(docs))
    if tag not in _STORE_KEYS:
        _STORE_KEYS.clear()  # one store's at a time: memory stays bounded
        _STORE_KEYS[tag] = _Collection([i for part in _all_ids(docs) for i in part], pack=True)
    return _STORE_KEYS[tag]


def _collection_keys(docs: Store | Representations) -> tuple[np.ndarray, np.ndarray]:
    """(keys by row, rows by key) of the collection (`repbench.retrieval.index.trec_keys`)."""
    c = _collection(docs)
    return c.keys, c.order


def stream_retrieve(
    queries: Representations,
    docs: Store | Representations | str | Path,
    modes: Sequence[str] = MODES,
    depth: int = DEFAULT_DEPTH,
    vocab_size: int | None = None,
    remove_self: bool = True,
    chunk_docs: int | None = None,
    max_memory: int | None = None,
    verify: bool = True,
    progress: bool = False,
    device: torch.device | str | None = None,
) -> dict[str, Run]:
    """`retrieve`'s result, computed over `docs` one chunk at a time (a store directory, an open Store,
    or Representations in memory). `vocab_size` defaults to the store's meta; `verify` checks each
    shard's sha256 before reading it. With `device`, the queries and each chunk's dense rows and tie
    keys are moved there and the dense modes scored there, the next chunk's copy overlapping this one's
    scoring (`repbench.retrieval.transfer`); default: where the tensors already are."""
    if isinstance(docs, str | Path):
        docs = open_store(docs)
    modes = parse_modes(modes)
    meta = docs.meta
    if isinstance(docs, Store):
        k_p, hidden, width, store_bytes = store_shapes(docs)
    else:
        k_p, hidden, width, store_bytes = docs.k, docs.hidden_size, int(docs.sparse_ids.shape[1]), 4
    if any(m in MULTI_MODES for m in modes) and queries.k == 1 and k_p == 1:
        raise RepbenchError("multi-vector modes need K_q > 1 or K_p > 1 (use repbench.retrieval.search.modes_for)")
    needs_sparse = any(SCORERS[m].sparse for m in modes)
    vocab_size = vocab_size if vocab_size is not None else meta.get("vocab_size")
    if needs_sparse and vocab_size is None:
        raise RepbenchError("sparse modes need the backbone's vocab_size")
    if chunk_docs is None:
        chunk_docs = chunk_docs_for(max_memory or DEFAULT_MAX_MEMORY, k_p, hidden, width, store_bytes)
    if chunk_docs < 1:
        raise RepbenchError(f"--chunk-docs must be a positive integer, got {chunk_docs}")

    # The searched modes these need (fusions read two of them), in canonical order.
    base = [m for m in MODES if SCORERS[m].fuse is None and (m in modes or any(
        m in (SCORERS[f].fuse or ()) for f in modes))]
    # One extra document per list, so dropping a self-hit still leaves `depth` (retrieve fetches the
    # same extra one whenever a query id is also a doc id; the first `depth` kept are the same).
    k = depth + (1 if remove_self else 0)
    options = {"vocab_size": vocab_size, "chunk_docs": None}  # the in-memory kernels' own inner chunking
    queries = to_device(queries, device)
    qids, qv = list(queries.ids), Vectors(queries)  # the queries' vectors: once, not per chunk
    # Every document's tie key over the whole collection, once: then each chunk's lists merge exactly,
    # by int64 keys (ids are read again only for the documents kept, at the end).
    collection = _collection(docs)
    keys = collection.keys
    # The sparse products run on the host (scipy): their running lists stay there too.
    merged = {m: RunningTopK(len(qids), k, device="cpu" if SCORERS[m].sparse else queries.dense.device)
              for m in base}

    chunks = _chunks(docs, chunk_docs, verify)
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc="search chunks", unit="chunk")
    # Both dense modes read a chunk's unit vectors: then they are made once per chunk and shared.
    share = {"single_dense", "multi_dense"} <= set(base)
    for chunk, chunk_keys, device_keys in _placed(chunks, keys, device):
        index = DocIndex(chunk, keys=chunk_keys, once=True, device_keys=device_keys, share=share)
        for m in base:
            merged[m].add(*SCORERS[m].search(qv, index, k, options))
        del chunk, index  # before the next is fetched: two chunks on the device at most

    # Every mode's kept keys to ids in one pass over the sidecars that hold them.
    results = {m: [t.cpu() for t in merged[m].result()] for m in base}
    wanted = np.unique(np.concatenate([r[1].numpy().ravel() for r in results.values()] or [np.zeros(0, np.int64)]))
    id_of = dict(zip(wanted.tolist(), collection.ids_of(collection.order[wanted]), strict=True))
    runs: dict[str, Run] = {m: to_run(qids, *results[m], lambda ks: [id_of[k] for k in ks], depth, remove_self)
                            for m in base}

    def run_of(name: str) -> Run:
        if name not in runs:
            a, b = SCORERS[name].fuse
            runs[name] = fuse(run_of(a), run_of(b), 0.5, depth)
        return runs[name]

    return {m: run_of(m) for m in modes}
