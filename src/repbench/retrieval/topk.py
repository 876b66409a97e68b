"""The one exact top-k of every search path (in memory, streaming, fusion, the sweep), on any device.

Documents are int64 keys: a document's position in trec_eval's order of the collection's ids (doc id
descending, `repbench.retrieval.ranking`), so a smaller key wins a tie. The rule is then one total
order, score descending then key ascending, which is trec_eval's order of the full run: the documents
kept at a tied cut-off are the ones trec_eval would keep, and merging lists in any order or chunking
gives the same result.

The total order is made into one int64 per candidate (the score's order-preserving bits above, the
inverted key below), so a single `torch.topk` is exact: no per-row Python, no host round trip, the same
on CPU, CUDA and `meta`.
"""

from __future__ import annotations

import torch

KEY_BITS = 32
_KEY_MASK = (1 << KEY_BITS) - 1
MAX_KEYS = 1 << KEY_BITS  # documents one key space can hold (4.29e9)


def _sortable(scores: torch.Tensor) -> torch.Tensor:
    """int64 whose order is the float32 order of `scores` (-0.0 == +0.0; NaN not expected)."""
    s = (scores.float() + 0.0).contiguous()  # + 0.0 turns -0.0 into +0.0, so they tie as floats do
    bits = s.view(torch.int32).to(torch.int64)
    # Negative floats count down as their bits count up: flip their 31 magnitude bits.
    return torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)


def topk(scores: torch.Tensor, keys: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Best `k` per row of `scores` [Q, c]: (values [Q, k'], keys int64 [Q, k']), k' = min(k, c), ordered by
    score descending then key ascending. `keys` is [c] (shared) or [Q, c], each < MAX_KEYS. Values are
    float32, or float64 for float64 scores (compared in float64)."""
    q, c = scores.shape
    k = min(int(k), c)
    if k <= 0:
        return (torch.zeros((q, 0), dtype=torch.float64 if scores.dtype == torch.float64 else torch.float32,
                            device=scores.device),
                torch.zeros((q, 0), dtype=torch.long, device=scores.device))
    keys = keys.to(device=scores.device, dtype=torch.long)
    if scores.dtype == torch.float64:
        # Fused and BM25 scores are float64, which does not fit beside a key in one int64: the same order
        # by two stable sorts (key, then score), on the few candidates those lists have.
        full = keys.expand(q, c)
        by_key = torch.argsort(full, dim=1, stable=True)
        by_score = torch.argsort(scores.gather(1, by_key), dim=1, descending=True, stable=True)
        pos = by_key.gather(1, by_score[:, :k])
        return scores.gather(1, pos), full.gather(1, pos)
    combined = (_sortable(scores) << KEY_BITS) | (_KEY_MASK - keys)  # keys < 2**32: the low bits
    pos = torch.topk(combined, k, dim=1, sorted=True).indices
    return scores.float().gather(1, pos), keys.expand(q, c).gather(1, pos)


MERGE_WIDTH = 8  # candidates held back per kept one before a merge (8k wide: one top-k instead of eight)
MAX_HELD = 1 << 23  # and at most this many (queries x held width; 12 B each), so a large query batch at
# depth 1000 holds ~100 MB, not 8 x its running lists


class RunningTopK:
    """The best `k` (score, key) per query over candidate blocks arriving in any order, kept on the
    blocks' device. Exact: the result equals `topk` of all candidates at once.

    Narrow blocks (a streamed chunk's own top-k) are held until about MERGE_WIDTH * k candidates wait,
    then cut in one top-k (or sooner, past MAX_HELD candidates in all): the cost of a merge is mostly per
    call, not per candidate, and the held candidates stay a few times the result's size. Blocks are held by reference: a caller must not write
    into a block after adding it."""

    def __init__(self, n_queries: int, k: int, device: torch.device | str | None = None):
        self.k = int(k)
        self._scores = torch.zeros((n_queries, 0), dtype=torch.float32, device=device)
        self._keys = torch.zeros((n_queries, 0), dtype=torch.long, device=device)
        self._held: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._width = 0

    def add(self, scores: torch.Tensor, keys: torch.Tensor) -> None:
        """Merge candidates: scores [Q, c] and their keys [c] or [Q, c]."""
        if scores.shape[1] == 0:
            return
        keys = keys.to(device=scores.device, dtype=torch.long).expand(scores.shape[0], scores.shape[1])
        self._held.append((scores if scores.dtype == torch.float64 else scores.float(), keys))
        self._width += scores.shape[1]
        if self._width > MERGE_WIDTH * self.k or self._width * scores.shape[0] > MAX_HELD:
            self._merge()

    def _merge(self) -> None:
        if not self._held:
            return
        dev = self._held[-1][0].device
        parts = ([(self._scores.to(dev), self._keys.to(dev))] if self._scores.shape[1] else []) + self._held
        self._held, self._width = [], 0
        if len(parts) == 1:
            self._scores, self._keys = topk(parts[0][0], parts[0][1], self.k)
            return
        self._scores, self._keys = topk(torch.cat([s for s, _ in parts], dim=1),
                                        torch.cat([k for _, k in parts], dim=1), self.k)

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        self._merge()
        return self._scores, self._keys


def top_docs(scores: dict[str, float], k: int) -> dict[str, float]:
    """The best `k` of one query's {doc id: score} (float64), in trec_eval's order: `topk` with each doc's
    position in the ids' descending order as its key."""
    if not scores:
        return {}
    ids = sorted(scores, reverse=True)
    values = torch.tensor([scores[d] for d in ids], dtype=torch.float64)[None]
    vals, keys = topk(values, torch.arange(len(ids)), k)
    return {ids[i]: v for i, v in zip(keys[0].tolist(), vals[0].tolist(), strict=True)}
