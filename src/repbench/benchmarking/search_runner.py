"""The search-cell runner: builds a synthetic index per cell (outside the timed region) and measures
exact search over it: faiss inner product (dense), MaxSim on the device (maxsim), CSR scipy (sparse)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import psutil
import torch

from repbench.benchmarking.cell_results import SearchIndex, SearchResult
from repbench.benchmarking.cells import SearchCell, search_index_bytes
from repbench.benchmarking.harness import RoundsRunner, is_oom
from repbench.benchmarking.session import BenchSession, oom_reason
from repbench.benchmarking.workloads import sparse_rows, unit_vectors


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
        depth, seed, device = self.depth, self.session.seed, self.session.device
        if cell.kind == "dense":
            from repbench.retrieval.dense import FlatIPIndex

            docs = unit_vectors(cell.index_size, 1, cell.dim, seed=seed)[:, 0]
            queries = unit_vectors(cell.query_batch, 1, cell.dim, seed=seed + 1)[:, 0]
            index = FlatIPIndex(docs)
            del docs
            return (lambda cb: index.search(queries, depth)), SearchIndex("cpu (faiss-cpu)")
        if cell.kind == "maxsim":
            from repbench.retrieval.multivector import maxsim_search

            docs_t = torch.from_numpy(unit_vectors(cell.index_size, cell.k_p, cell.dim, seed=seed)).to(device)
            q_t = torch.from_numpy(unit_vectors(cell.query_batch, cell.k_q, cell.dim, seed=seed + 1)).to(device)
            return (lambda cb: maxsim_search(q_t, docs_t, depth)), SearchIndex(str(device))
        from repbench.retrieval.sparse import SparseIndex

        vocab = 1 << 16
        d_ids, d_w = sparse_rows(cell.index_size, self.sparse_terms, vocab, seed=seed)
        q_ids, q_w = sparse_rows(cell.query_batch, self.sparse_terms, vocab, seed=seed + 1)
        sparse_index = SparseIndex(d_ids, d_w, vocab)  # built once, outside the timed region
        return (lambda cb: sparse_index.search(q_ids, q_w, depth)), SearchIndex("cpu (scipy)", self.sparse_terms, vocab)
