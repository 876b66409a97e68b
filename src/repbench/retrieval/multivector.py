"""Exact multi-vector MaxSim (ColBERT style): blocked GEMM + amax + a running exact top-k.

The similarity block [q·K_q, n·K_p] is kept near `BLOCK_ELEMENTS` (1 MiB of float32) so it stays in
cache between the GEMM that writes it and the amax that reads it back (a 64 MiB block spilled to main
memory and cost ~1.5x). Block scores fill a [q, chunk] buffer, and the top-k runs once per chunk, not
per block. Documents may be stored in float16/bfloat16: each block is converted on its own.
"""

from __future__ import annotations

import numpy as np
import torch

from repbench.retrieval.index import unit_rows
from repbench.retrieval.topk import RunningTopK

BLOCK_ELEMENTS = 1 << 18  # similarity elements per block (float32: 1 MiB)
QUERY_ROWS = 2048  # query slot rows per block at most (q·K_q), so a block still spans several documents
CHUNK_DOCS = 16384  # documents scored between two top-k merges
DEFAULT_BUDGET = BLOCK_ELEMENTS  # (older name: the elements of one similarity block)


def _tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(x)


def maxsim_scores(q_unit: torch.Tensor, d_unit: torch.Tensor) -> torch.Tensor:
    """[Q, N]: sum over query slots of max(0, max over passage slots of <q_i, d_j>). No division by K_q."""
    q, kq, h = q_unit.shape
    n, kp, _ = d_unit.shape
    sim = (q_unit.reshape(q * kq, h) @ d_unit.reshape(n * kp, h).float().T).view(q, kq, n, kp)
    return sim.amax(dim=3).clamp_(min=0).sum(dim=1)


def maxsim_topk(
    q_unit: torch.Tensor,
    d_unit: torch.Tensor,
    keys: torch.Tensor,
    depth: int,
    chunk_docs: int | None = None,
    block_elements: int = BLOCK_ELEMENTS,
    normalise: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact MaxSim top-`depth` on the tensors' device: (scores float32 [Q, d], keys int64 [Q, d]),
    score descending then key ascending. `keys` int64 [N] on the documents' device. With `normalise`,
    `d_unit` holds raw slot vectors (any float dtype), L2-normalised block by block in float32."""
    q_t = q_unit.float()
    nq, kq, h = q_t.shape
    n, kp, _ = d_unit.shape
    q_block = max(1, min(nq, QUERY_ROWS // kq))
    chunk = chunk_docs or CHUNK_DOCS
    out_s, out_k = [], []
    with torch.inference_mode():
        for qs in range(0, nq, q_block):
            qb = q_t[qs:qs + q_block]
            b = qb.shape[0]
            q_flat = qb.reshape(b * kq, h)
            docs_per_block = max(1, block_elements // (b * kq * kp))
            top = RunningTopK(b, depth, device=qb.device)
            for cs in range(0, n, chunk):
                ce = min(n, cs + chunk)
                buf = torch.empty((b, ce - cs), dtype=torch.float32, device=qb.device)
                for ds in range(cs, ce, docs_per_block):
                    de = min(ce, ds + docs_per_block)
                    block = unit_rows(d_unit[ds:de]) if normalise else d_unit[ds:de].float()
                    d_flat = block.reshape((de - ds) * kp, h)
                    sim = (q_flat @ d_flat.T).view(b, kq, de - ds, kp)
                    torch.sum(sim.amax(dim=3).clamp_(min=0), dim=1, out=buf[:, ds - cs:de - cs])
                top.add(buf, keys[cs:ce])
            s, k = top.result()
            out_s.append(s)
            out_k.append(k)
    if not out_s:
        return torch.zeros((0, 0)), torch.zeros((0, 0), dtype=torch.long)
    return torch.cat(out_s), torch.cat(out_k)


def maxsim_search(
    q_unit: np.ndarray | torch.Tensor,
    d_unit: np.ndarray | torch.Tensor,
    depth: int,
    chunk_docs: int | None = None,
    budget: int = BLOCK_ELEMENTS,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact MaxSim top-`depth` (scores float32 [Q, d], idx int64 [Q, d]) on the host, best first, ties by
    index. Inputs are unit slot vectors [Q, Kq, H] and [N, Kp, H] (zero rows for invalid slots add 0)."""
    q_t, d_t = _tensor(q_unit), _tensor(d_unit)
    keys = torch.arange(d_t.shape[0], device=d_t.device)
    s, k = maxsim_topk(q_t, d_t, keys, depth, chunk_docs=chunk_docs, block_elements=budget)
    return s.cpu().numpy().astype(np.float32), k.cpu().numpy().astype(np.int64)
