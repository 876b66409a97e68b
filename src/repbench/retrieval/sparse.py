"""Sparse (lexical) retrieval: dot products of max-pooled vocabulary-weight vectors, exact."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from repbench.retrieval.topk import RunningTopK


def to_csr(ids: np.ndarray | torch.Tensor, weights: np.ndarray | torch.Tensor, vocab_size: int) -> sp.csr_matrix:
    """Padded (id, weight) rows -> CSR [N, vocab_size]. Id -1 is padding; a repeated id keeps its max weight."""
    ids_a = np.asarray(torch.as_tensor(ids).cpu(), dtype=np.int64)  # scipy builds the matrix on the host
    w_a = np.asarray(torch.as_tensor(weights).cpu(), dtype=np.float32)
    if ids_a.shape != w_a.shape or ids_a.ndim != 2:
        raise ValueError(f"sparse ids {ids_a.shape} and weights {w_a.shape} must be equal 2-D shapes")
    n = ids_a.shape[0]
    mask = ids_a >= 0
    if mask.any() and ids_a[mask].max() >= vocab_size:
        raise ValueError(f"sparse id {int(ids_a[mask].max())} is outside the vocabulary (size {vocab_size})")
    if (ids_a < -1).any():
        raise ValueError("sparse ids must be >= 0, or -1 for padding")
    # Sorting each (narrow) row by id is far cheaper than one lexsort of every entry; read row-major,
    # the entries are then in (row, col) order.
    order = np.argsort(ids_a, axis=1, kind="stable")
    ids_a, w_a = np.take_along_axis(ids_a, order, 1), np.take_along_axis(w_a, order, 1)
    mask = ids_a >= 0
    rows = np.broadcast_to(np.arange(n)[:, None], ids_a.shape)[mask]
    cols, vals = ids_a[mask], w_a[mask]
    if len(rows):
        first = np.ones(len(rows), dtype=bool)
        first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
        starts = np.flatnonzero(first)
        vals = np.maximum.reduceat(vals, starts)
        rows, cols = rows[starts], cols[starts]
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, vocab_size), dtype=np.float32)


def query_terms(q_ids: np.ndarray | torch.Tensor, q_w: np.ndarray | torch.Tensor,
                vocab_size: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """(the queries' CSR over the terms they use, those terms): only terms some query uses can score,
    so dropping the rest shrinks every product."""
    qm = to_csr(q_ids, q_w, vocab_size)
    terms = np.unique(qm.indices)
    return qm[:, terms].tocsr(), terms


class SparseIndex:
    """Documents' sparse vectors, kept column-major so a query batch reads only the terms it uses."""

    def __init__(self, d_ids: np.ndarray | torch.Tensor, d_w: np.ndarray | torch.Tensor, vocab_size: int,
                 keys: np.ndarray | torch.Tensor | None = None):
        self.vocab_size = vocab_size
        self.docs = to_csr(d_ids, d_w, vocab_size).tocsc()
        n = self.docs.shape[0]
        # Tie keys (repbench.retrieval.topk), on the host where scipy's products are.
        self.keys = torch.as_tensor(np.arange(n) if keys is None else keys, dtype=torch.long).cpu()

    def __len__(self) -> int:
        return self.docs.shape[0]

    def search(self, q_ids: np.ndarray | torch.Tensor, q_w: np.ndarray | torch.Tensor, depth: int,
               chunk_docs: int = 8192) -> tuple[np.ndarray, np.ndarray]:
        """Exact sparse top-`depth`: (scores float32 [Q, d], keys int64 [Q, d]), best first, ties by key
        (the document index unless keys were given).

        Documents with no term in common with a query score 0 and can fill the list's tail, as in the
        paper's brute-force search.
        """
        s, k = self.search_keys(q_ids, q_w, depth, chunk_docs)
        return s.numpy().astype(np.float32), k.numpy().astype(np.int64)

    def search_keys(self, q_ids: np.ndarray | torch.Tensor, q_w: np.ndarray | torch.Tensor, depth: int,
                    chunk_docs: int = 8192, prepared: tuple[sp.csr_matrix, np.ndarray] | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`search` as host tensors. `prepared`: `query_terms` of these queries, made once by a caller that
        searches many chunks with them."""
        qm, terms = prepared or query_terms(q_ids, q_w, self.vocab_size)
        dm = self.docs[:, terms].tocsr()
        top = RunningTopK(qm.shape[0], depth)
        for ds in range(0, dm.shape[0], chunk_docs):
            block = (qm @ dm[ds:ds + chunk_docs].T).toarray().astype(np.float32)
            top.add(torch.from_numpy(block), self.keys[ds:ds + chunk_docs])
        return top.result()


def sparse_search(
    q_ids: np.ndarray | torch.Tensor,
    q_w: np.ndarray | torch.Tensor,
    d_ids: np.ndarray | torch.Tensor,
    d_w: np.ndarray | torch.Tensor,
    depth: int,
    vocab_size: int,
    chunk_docs: int = 8192,
) -> tuple[np.ndarray, np.ndarray]:
    """One-shot `SparseIndex(d_ids, d_w, vocab_size).search(q_ids, q_w, depth)`."""
    return SparseIndex(d_ids, d_w, vocab_size).search(q_ids, q_w, depth, chunk_docs)
