"""Single-vector dense retrieval: the mean of the active unit slot vectors, searched exactly.

On the host the inner products are faiss IndexFlatIP's (its BLAS kernel, the paper's); on a GPU (or
`meta`) one matmul on the device. Either way the cut is `repbench.retrieval.topk`'s exact rule.
"""

from __future__ import annotations

import faiss
import numpy as np
import torch

from repbench.encoders.types import Representations
from repbench.retrieval.topk import topk


def mean_of_active(unit: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """float32 [N, H]: mean of the active (valid, non-zero) unit slot vectors [N, K, H]; zero if none.

    Not re-normalised, as in the paper (docs/method.md §6.2): for K > 1 the inner product of two such
    vectors is a dot product, not a cosine.
    """
    unit = unit.float()
    active = valid.bool() & unit.ne(0).any(dim=-1)  # a zero slot (no vector) does not count
    total = (unit * active.unsqueeze(-1)).sum(dim=1)
    count = active.sum(dim=1, keepdim=True).clamp(min=1)
    return total / count


def single_vectors(reps: Representations) -> np.ndarray:
    """float32 [N, H] single vectors on the host (`mean_of_active` of the unit slot vectors)."""
    return mean_of_active(reps.unit_dense(), reps.valid).cpu().numpy().astype(np.float32, copy=False)


def _host(v: np.ndarray | torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(v.cpu() if isinstance(v, torch.Tensor) else v, dtype=np.float32))


class FlatIPIndex:
    """Exact inner-product search over fixed document vectors: faiss IndexFlatIP on the host, a matmul
    where the vectors live on another device. `keys` (int64 [N]) rank tied documents (default: index)."""

    def __init__(self, v_docs: np.ndarray | torch.Tensor, keys: np.ndarray | torch.Tensor | None = None):
        on_device = isinstance(v_docs, torch.Tensor) and v_docs.device.type != "cpu"
        n = int(v_docs.shape[0])
        if len(v_docs.shape) != 2:
            raise ValueError(f"document vectors must be 2-D [N, H], got shape {tuple(v_docs.shape)}")
        self.keys = torch.as_tensor(np.arange(n) if keys is None else keys, dtype=torch.long)
        self.ntotal = n
        if on_device:
            self.vectors, self.index = v_docs.float(), None
            self.keys = self.keys.to(v_docs.device)
        else:
            self.vectors, self.index = None, faiss.IndexFlatIP(int(v_docs.shape[1]))
            self.index.add(_host(v_docs))
            self._keys_np = self.keys.numpy()

    def search_keys(self, v_queries: np.ndarray | torch.Tensor, depth: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(scores float32 [Q, d], keys int64 [Q, d]) with d = min(depth, N): score desc, then key asc."""
        if self.index is None:
            q = torch.as_tensor(v_queries).to(self.vectors.device).float()
            return topk(q @ self.vectors.T, self.keys, depth)
        q = _host(v_queries)
        n, d = self.ntotal, min(int(depth), self.ntotal)
        if d <= 0 or q.shape[0] == 0:
            return torch.zeros((q.shape[0], 0)), torch.zeros((q.shape[0], 0), dtype=torch.long)
        # faiss's heap keeps an arbitrary subset of the documents tied at the d-th score: fetch one more,
        # and widen while some row's extra score still equals its d-th, so the kept set is exact.
        k = min(n, d + 1)
        while True:
            # Always all queries in one call: faiss's kernel (BLAS or not) depends on the query count,
            # so the scores stay those of a plain search.
            scores, idx = self.index.search(q, k)
            if k == n or (scores[:, k - 1] < scores[:, d - 1]).all():
                break
            k = min(n, 2 * k)
        keys = self._keys_np[idx]
        if not (scores[:, 1:] == scores[:, :-1]).any():
            # No two equal scores: faiss's order is already the rule's, and the first d are the top d.
            return torch.from_numpy(scores[:, :d]), torch.from_numpy(keys[:, :d])
        return topk(torch.from_numpy(scores), torch.from_numpy(keys), d)

    def search(self, v_queries: np.ndarray | torch.Tensor, depth: int) -> tuple[np.ndarray, np.ndarray]:
        """`search_keys` as host arrays (scores float32, keys int64 = indices by default)."""
        s, k = self.search_keys(v_queries, depth)
        return s.cpu().numpy().astype(np.float32), k.cpu().numpy().astype(np.int64)
