"""Documents made searchable once: tie keys, unit vectors, single vectors and the sparse index.

A `DocIndex` is built per collection (or per streamed chunk), not per search call: every search of it
reuses the normalised slot vectors, the mean vectors (and their faiss index), the sparse CSC matrix and
the documents' tie keys (`repbench.retrieval.topk`: position in trec_eval's order of the ids). Each is
computed the first time a mode needs it. Searches return keys (int64); they become doc id strings
once, at the end (`ids_for_keys`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from repbench.encoders.types import Representations
from repbench.retrieval.topk import MAX_KEYS


def trec_keys(ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(keys, order) int64: keys[row] is the row's position in trec_eval's order of `ids` (doc id
    descending, by code point = UTF-8 byte order), order[key] the row at that position."""
    if len(ids) >= MAX_KEYS:
        raise ValueError(f"{len(ids)} documents exceed the {MAX_KEYS} a key space holds")
    order = np.array(sorted(range(len(ids)), key=ids.__getitem__, reverse=True), dtype=np.int64)
    keys = np.empty(len(ids), dtype=np.int64)
    keys[order] = np.arange(len(ids), dtype=np.int64)
    return keys, order


BLOCK_ROWS = 4096  # rows normalised at a time where the unit vectors are not kept (a streamed chunk)


def unit_rows(dense: torch.Tensor) -> torch.Tensor:
    """float32 unit slot vectors of [n, K, H] rows in any float dtype (zero slots stay zero): the same
    numbers as `Representations.unit_dense` of the float32 rows, row by row."""
    return torch.nn.functional.normalize(dense.float(), dim=-1, eps=1e-12)


class Vectors:
    """Representations with their derived vectors computed once, on their device: the queries of a
    search (used against every chunk) and the base of a document index.

    `once=True` (a streamed chunk, searched once): the unit vectors are not kept; MaxSim normalises each
    block of the stored rows (float16/bfloat16 stay so in memory) and the single vectors are made block
    by block, so no float32 copy of the whole chunk exists. With `share` as well (single_dense and MaxSim
    both read the chunk) the unit vectors are made once, block by block into one float32 buffer (the room
    `streaming.chunk_docs_for` counts per element), and both modes read them: normalising the chunk
    twice cost more than the rest of streaming's own work.
    """

    def __init__(self, reps: Representations, once: bool = False, share: bool = False):
        self.docs = reps
        self.once = once
        self.per_block = once and not share  # each mode normalises its own blocks of the stored rows
        self._cache: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self.docs)

    def _cached(self, name: str, make: Any) -> Any:
        if name not in self._cache:
            self._cache[name] = make()
        return self._cache[name]

    def unit(self) -> torch.Tensor:
        """float32 [N, K, H] unit slot vectors (zero slots stay zero), on the representations' device."""
        def blocks() -> torch.Tensor:
            # Row by row the same numbers as one call; block by block no float32 copy of the stored rows
            # exists beside the result.
            dense = self.docs.dense
            out = torch.empty(dense.shape, dtype=torch.float32, device=dense.device)
            for lo in range(0, len(dense), BLOCK_ROWS):
                torch.nn.functional.normalize(dense[lo:lo + BLOCK_ROWS].float(), dim=-1, eps=1e-12,
                                              out=out[lo:lo + BLOCK_ROWS])
            return out

        return self._cached("unit", blocks if self.once else lambda: unit_rows(self.docs.dense))

    def maxsim_rows(self) -> tuple[torch.Tensor, bool]:
        """(slot vectors, whether MaxSim must normalise each block of them itself)."""
        return (self.docs.dense, True) if self.per_block else (self.unit(), False)

    def single(self) -> torch.Tensor:
        """float32 [N, H] single vectors (mean of the active unit slots), on the representations' device."""
        from repbench.retrieval.dense import mean_of_active

        def make() -> torch.Tensor:
            if not self.per_block:
                return mean_of_active(self.unit(), self.docs.valid)
            dense, valid = self.docs.dense, self.docs.valid
            parts = [mean_of_active(unit_rows(dense[lo:lo + BLOCK_ROWS]), valid[lo:lo + BLOCK_ROWS])
                     for lo in range(0, len(self.docs), BLOCK_ROWS)]
            return torch.cat(parts) if parts else mean_of_active(unit_rows(dense), valid)

        return self._cached("single", make)


    def query_terms(self, vocab_size: int) -> Any:
        """These rows as sparse queries (`repbench.retrieval.sparse.query_terms`): once per search, not
        once per streamed chunk."""
        from repbench.retrieval.sparse import query_terms

        return self._cached(f"query_terms{vocab_size}", lambda: query_terms(
            self.docs.sparse_ids, self.docs.sparse_weights, vocab_size))


class DocIndex(Vectors):
    """One collection's (or one chunk's) documents, ready for every score mode.

    `keys` (int64 [N], by row) defaults to the rows' trec_eval order among these documents; a streamed
    chunk passes its slice of the whole collection's keys instead, so its results merge exactly, and
    `device_keys`, the same keys already on the documents' device (moved with the chunk's rows, so no
    synchronous copy is made here).
    """

    def __init__(self, docs: Representations, keys: np.ndarray | None = None, once: bool = False,
                 device_keys: torch.Tensor | None = None, share: bool = False):
        super().__init__(docs, once, share)
        if keys is None:
            keys, self._order = trec_keys(docs.ids)
        else:
            self._order = None
        self.keys_host = torch.from_numpy(np.ascontiguousarray(keys, dtype=np.int64))
        self.device = docs.dense.device
        # The device copy is made once here, not per search (the top-k runs where the scores are).
        self.keys = device_keys if device_keys is not None else self.keys_host.to(self.device)

    def flat_ip(self) -> Any:
        from repbench.retrieval.dense import FlatIPIndex

        # On the host faiss reads host keys; on a device the keys already there (no copy per index).
        keys = self.keys_host if self.device.type == "cpu" else self.keys
        return self._cached("flat_ip", lambda: FlatIPIndex(self.single(), keys))

    def sparse(self, vocab_size: int) -> Any:
        from repbench.retrieval.sparse import SparseIndex

        return self._cached(f"sparse{vocab_size}", lambda: SparseIndex(
            self.docs.sparse_ids, self.docs.sparse_weights, vocab_size, keys=self.keys_host))

    def ids_for_keys(self, keys: Sequence[int]) -> list[str]:
        """Doc id strings of keys of this index's own key space (not of a chunk given outside keys)."""
        if self._order is None:
            raise ValueError("this index's keys belong to a larger collection; map them there")
        order, ids = self._order, self.docs.ids
        return [ids[order[k]] for k in keys]


# The last collection indexed, reused while the caller searches the same Representations object again
# (the sweep scores one passage K_p against every K_q). One entry: memory stays one index.
_LAST: list[tuple[Representations, tuple, DocIndex]] = []


def _state(docs: Representations) -> tuple:
    """What an index was built from: the tensors' identities and in-place version counters, and the ids."""
    tensors = (docs.dense, docs.valid, docs.sparse_ids, docs.sparse_weights)
    return (*(id(t) for t in tensors), *(t._version for t in tensors), id(docs.ids), len(docs.ids))


def index_for(docs: Representations | DocIndex, device: torch.device | str | None = None) -> DocIndex:
    """`docs` itself if already an index, else its index (built once, reused for the same object as long
    as its tensors and ids were not replaced or changed in place). With `device`, the index's dense rows
    live there (`repbench.retrieval.transfer.to_device`); an index already built elsewhere is refused."""
    if isinstance(docs, DocIndex):
        if device is not None and docs.device != torch.device(device):
            raise ValueError(f"this index lives on {docs.device}, not {device}; build it from the "
                             "Representations instead")
        return docs
    from repbench.retrieval.transfer import to_device

    state = (*_state(docs), None if device is None else str(torch.device(device)))
    if _LAST and _LAST[0][0] is docs and _LAST[0][1] == state:
        return _LAST[0][2]
    index = DocIndex(to_device(docs, device))
    _LAST[:] = [(docs, state, index)]
    return index
