"""Exact top-k with a deterministic tie rule, merged over chunks so memory stays bounded.

Rows are ranked by score descending, then by column (document index) ascending. The search layer
orders documents by id descending before indexing (`repbench.retrieval.search`), so "index ascending"
is trec_eval's "doc id descending": the documents kept at a tied cut-off are the ones trec_eval would
keep from an untruncated run.
"""

from __future__ import annotations

import torch


def topk_desc(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k per row of a [Q, N] matrix: (values [Q, k], positions [Q, k]), ties by position ascending."""
    q, n = scores.shape
    k = min(k, n)
    if k == 0:
        return scores.new_zeros((q, 0)), torch.zeros((q, 0), dtype=torch.long, device=scores.device)
    kth = torch.topk(scores, k, dim=1, sorted=True).values[:, -1:]
    greater = scores > kth
    equal = scores == kth
    need = k - greater.sum(dim=1, keepdim=True)
    # torch.topk picks among equal values arbitrarily; take the first `need` tied positions instead.
    take = greater | (equal & (torch.cumsum(equal, dim=1) <= need))
    # Exactly k taken per row: the i-th taken position goes to column i (others to a spare column k).
    # A scatter, not nonzero(), whose data-dependent shape would wait for the device.
    slot = torch.where(take, torch.cumsum(take, dim=1) - 1, k)
    cols = torch.arange(n, device=scores.device).expand(q, n)
    pos = torch.empty((q, k + 1), dtype=torch.long, device=scores.device).scatter_(1, slot, cols)[:, :k]
    vals = scores.gather(1, pos)
    order = torch.sort(vals, dim=1, descending=True, stable=True).indices
    return vals.gather(1, order), pos.gather(1, order)


class RunningTopK:
    """Keeps the best `k` (score, global index) per query while chunks of documents stream past.

    Chunks must arrive in ascending index order: the kept entries then precede the new chunk in the
    concatenation, which keeps the position order equal to the index order among equal scores.
    """

    def __init__(self, n_queries: int, k: int, device: torch.device | str | None = None):
        self.k = k
        self.scores = torch.empty((n_queries, 0), dtype=torch.float32, device=device)
        self.idx = torch.empty((n_queries, 0), dtype=torch.long, device=device)
        self._next = 0

    def add(self, chunk_scores: torch.Tensor, start: int) -> None:
        if start < self._next:
            raise ValueError("chunks must be added in ascending document order")
        n = chunk_scores.shape[1]
        self._next = start + n
        dev = chunk_scores.device
        cols = torch.arange(start, start + n, dtype=torch.long, device=dev).expand(chunk_scores.shape[0], n)
        # The kept lists follow the chunks' device (empty ones are created wherever the caller said).
        all_scores = torch.cat([self.scores.to(dev), chunk_scores.float()], dim=1)
        all_idx = torch.cat([self.idx.to(dev), cols], dim=1)
        vals, pos = topk_desc(all_scores, self.k)
        self.scores, self.idx = vals, all_idx.gather(1, pos)

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.scores, self.idx
