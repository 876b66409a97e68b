"""Exact multi-vector MaxSim (ColBERT style), chunked over documents and queries."""

from __future__ import annotations

import numpy as np
import torch

from repbench.retrieval.topk import RunningTopK

# Elements of the [q, Kq, n, Kp] similarity block held at once (float32: 4 bytes each).
DEFAULT_BUDGET = 1 << 24


def _tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(x).float()


def maxsim_scores(q_unit: torch.Tensor, d_unit: torch.Tensor) -> torch.Tensor:
    """[Q, N]: sum over query slots of max(0, max over passage slots of <q_i, d_j>). No division by K_q."""
    q, kq, h = q_unit.shape
    n, kp, _ = d_unit.shape
    sim = (q_unit.reshape(q * kq, h) @ d_unit.reshape(n * kp, h).T).view(q, kq, n, kp)
    return sim.amax(dim=3).clamp_(min=0).sum(dim=1)


def maxsim_search(
    q_unit: np.ndarray | torch.Tensor,
    d_unit: np.ndarray | torch.Tensor,
    depth: int,
    chunk_docs: int | None = None,
    budget: int = DEFAULT_BUDGET,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact MaxSim top-`depth` (scores float32 [Q, d], idx int64 [Q, d]), best first, ties by index.

    Inputs are unit slot vectors [Q, Kq, H] and [N, Kp, H] (zero rows for invalid slots contribute 0).
    `chunk_docs` defaults to what fits `budget` similarity elements per block.
    """
    q_t, d_t = _tensor(q_unit), _tensor(d_unit)
    nq, kq, _ = q_t.shape
    n, kp, _ = d_t.shape
    q_block = max(1, min(nq, 256))
    if chunk_docs is None:
        chunk_docs = max(1, budget // (q_block * kq * kp))
    out_s, out_i = [], []
    with torch.inference_mode():
        for qs in range(0, nq, q_block):
            qb = q_t[qs:qs + q_block]
            top = RunningTopK(qb.shape[0], depth, device=qb.device)
            for ds in range(0, n, chunk_docs):
                top.add(maxsim_scores(qb, d_t[ds:ds + chunk_docs]), ds)
            s, i = top.result()
            out_s.append(s)
            out_i.append(i)
    if not out_s:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.int64)
    return torch.cat(out_s).cpu().numpy().astype(np.float32), torch.cat(out_i).cpu().numpy().astype(np.int64)
