"""Single-vector dense retrieval: the mean of the active unit slot vectors, searched with faiss."""

from __future__ import annotations

import faiss
import numpy as np
import torch

from repbench.encoders.types import Representations


def single_vectors(reps: Representations) -> np.ndarray:
    """float32 [N, H]: mean of the active (valid, non-zero) L2-normalised slot vectors.

    Not re-normalised, as in the paper (docs/method.md §6.2): for K > 1 the inner product of two such
    vectors is a dot product, not a cosine. An item without any active slot gets the zero vector.
    """
    unit = reps.unit_dense().float()
    active = reps.valid.bool() & (unit.abs().sum(dim=-1) > 0)
    total = (unit * active.unsqueeze(-1)).sum(dim=1)
    count = active.sum(dim=1, keepdim=True).clamp(min=1)
    return (total / count).cpu().numpy().astype(np.float32, copy=False)  # faiss-cpu searches on the host


def _host(v: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    return v.cpu() if isinstance(v, torch.Tensor) else v


class FlatIPIndex:
    """Exact inner-product search (faiss IndexFlatIP) over fixed document vectors."""

    def __init__(self, v_docs: np.ndarray | torch.Tensor):
        v = np.ascontiguousarray(np.asarray(_host(v_docs), dtype=np.float32))
        if v.ndim != 2:
            raise ValueError(f"document vectors must be 2-D [N, H], got shape {v.shape}")
        self.index = faiss.IndexFlatIP(v.shape[1])
        self.index.add(v)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def search(self, v_queries: np.ndarray | torch.Tensor, depth: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores float32 [Q, d], idx int64 [Q, d]) with d = min(depth, ntotal), best first.

        Equal scores are ordered by index ascending, also at the cut-off: faiss's heap keeps an
        arbitrary subset of the documents tied at the d-th score, so the search is widened until every
        row's last returned score is below its d-th, then cut by (score desc, index asc).
        """
        q = np.ascontiguousarray(np.asarray(_host(v_queries), dtype=np.float32))
        d = min(int(depth), self.ntotal)
        if d <= 0 or q.shape[0] == 0:
            return np.zeros((q.shape[0], 0), np.float32), np.zeros((q.shape[0], 0), np.int64)
        k = d
        while True:
            # Always all queries in one call: faiss's kernel (BLAS or not) depends on the query count,
            # so the scores stay those of a plain search.
            scores, idx = self.index.search(q, k)
            if k == self.ntotal or (scores[:, -1] < scores[:, d - 1]).all():
                break
            k = min(self.ntotal, 2 * k)
        order = np.lexsort((idx, -scores), axis=1)[:, :d]
        return (np.take_along_axis(scores, order, 1).astype(np.float32),
                np.take_along_axis(idx, order, 1).astype(np.int64))
