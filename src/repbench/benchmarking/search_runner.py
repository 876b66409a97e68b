"""The search-cell runner: builds a synthetic index per cell (outside the timed region) and measures
exact search over it with the scorers `repbench search` runs: single_dense (faiss inner product on the
host, a matmul on a GPU), MaxSim on the device, sparse_max (CSR scipy, on the host)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import psutil
import torch

from repbench.benchmarking.cell_results import SearchIndex, SearchResult
from repbench.benchmarking.cells import SEARCH_MODES, SearchCell, search_index_bytes
from repbench.benchmarking.harness import RoundsRunner, is_oom
from repbench.benchmarking.session import BenchSession, oom_reason
from repbench.benchmarking.workloads import sparse_rows, unit_vectors
from repbench.encoders.types import Representations


def memory_cap(device: torch.device, gib: float | None = None) -> int:
    """Bytes a search index may take: `gib` when given, else a quarter of the memory available now (host,
    and the device's free memory on a GPU), leaving the rest to the process and the search's own copies."""
    if gib is not None:
        return int(gib * 2**30)
    avail = psutil.virtual_memory().available
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        avail = min(avail, free)
    return int(0.25 * avail)


@dataclass
class SearchCellRunner:
    """`run(cell, runner)` -> the cell's extra_info. A cell whose index would need more than `max_bytes`
    (0: no cap) is skipped before anything is allocated."""

    session: BenchSession
    depth: int = 100
    sparse_terms: int = 128
    max_bytes: int = 0

    def run(self, cell: SearchCell, runner: RoundsRunner) -> dict[str, Any]:
        s = self.session
        info = {**cell.to_json(self.depth), **s.base_info()}
        need = search_index_bytes(cell, self.sparse_terms)
        if self.max_bytes and need > self.max_bytes:
            return s.skip(cell.id, info, f"index needs ~{need / 2**30:.2f} GiB, over the memory cap "
                          f"{self.max_bytes / 2**30:.2f} GiB (--search-max-gib)")
        try:
            fn, index = self._search_fn(cell)
            # searches are often sub-ms: time them in blocks of back-to-back calls (harness.CellPlan)
            measurement, _ = s.measure(fn, runner, cell.query_batch, None, plan=replace(s.plan, block_below_s=1e-3))
        except Exception as exc:
            if not is_oom(exc):
                raise
            reason = oom_reason(exc)
        else:
            s.results.append({**info, "median_s": measurement.median_s, "flag": measurement.latency.stats["flag"]})
            return SearchResult(cell, self.depth, s.setup, index, measurement).to_json()
        return s.skip(cell.id, info, reason)  # after the except block: the failed index is freed first

    def _search_fn(self, cell: SearchCell) -> tuple[Callable[[Any], Any], SearchIndex]:
        """The cell's search through the code `repbench search --device` and `retrieve(device=)` run: the
        mode's scorer (repbench.retrieval.modes.SCORERS) over a DocIndex on the session's device. The
        index is built and its derived data (unit vectors, mean vectors and their faiss index, the CSC
        matrix) made by one search before the timed region, as an index is built once and searched often."""
        from repbench.retrieval.index import DocIndex, Vectors
        from repbench.retrieval.modes import SCORERS
        from repbench.retrieval.transfer import to_device

        depth, seed, device = self.depth, self.session.seed, self.session.device
        vocab = 1 << 16
        if cell.kind == "sparse":
            docs = _reps(sparse=sparse_rows(cell.index_size, self.sparse_terms, vocab, seed=seed))
            queries = _reps(sparse=sparse_rows(cell.query_batch, self.sparse_terms, vocab, seed=seed + 1))
            where = SearchIndex("cpu (scipy)", self.sparse_terms, vocab)  # the sparse products run on the host
        else:
            k_p, k_q = (1, 1) if cell.kind == "dense" else (cell.k_p, cell.k_q)
            docs = _reps(dense=unit_vectors(cell.index_size, k_p, cell.dim, seed=seed))
            queries = _reps(dense=unit_vectors(cell.query_batch, k_q, cell.dim, seed=seed + 1))
            where = SearchIndex("cpu (faiss-cpu)" if cell.kind == "dense" and device.type == "cpu" else str(device))
        index, qv = DocIndex(to_device(docs, device)), Vectors(to_device(queries, device))
        del docs
        search, options = SCORERS[SEARCH_MODES[cell.kind]].search, {"vocab_size": vocab, "chunk_docs": None}
        search(qv, index, depth, options)
        # A search ends with its lists on the host, as `repbench search` ends (and as these cells did).
        return (lambda cb: [t.cpu() for t in search(qv, index, depth, options)]), where


def _reps(dense: np.ndarray | None = None, sparse: tuple[np.ndarray, np.ndarray] | None = None) -> Representations:
    """Synthetic Representations for a search cell: dense slot vectors [n, K, H], or sparse rows (with a
    one-element dense placeholder, which the sparse scorer does not read)."""
    n = len(dense) if dense is not None else len(sparse[0])
    if dense is None:
        dense = np.zeros((n, 1, 1), dtype=np.float32)
    if sparse is None:
        sparse = (np.full((n, 1), -1, dtype=np.int64), np.zeros((n, 1), dtype=np.float32))
    k = dense.shape[1]
    return Representations(ids=[f"d{i}" for i in range(n)], dense=torch.from_numpy(dense),
                           valid=torch.ones(n, k, dtype=torch.bool), sparse_ids=torch.from_numpy(sparse[0]),
                           sparse_weights=torch.from_numpy(sparse[1]), token_ids=torch.zeros(n, k, dtype=torch.long),
                           input_tokens=torch.zeros(n, dtype=torch.long))
