"""PromptReps-style sparse vectors from slot logits (docs/method.md §3.7).

NLTK cannot be downloaded here, so its English stopword list ships as package data and
`word_tokenize` is approximated by a regex (words with inner hyphens/apostrophes, or single
punctuation marks); both only decide which vocabulary ids a text may activate.
"""

from __future__ import annotations

import re
import string
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import torch

from repbench.encoders.host import to_host
from repbench.encoders.options import SPARSE_TOP_K

TOP_K = SPARSE_TOP_K
SCALE = 100.0
_WORD_RE = re.compile(r"\w+(?:['\-]\w+)*|[^\w\s]")


@cache
def stopwords() -> frozenset[str]:
    text = resources.files("repbench.encoders").joinpath("stopwords_en.txt").read_text()
    return frozenset(w.strip() for w in text.splitlines() if w.strip())


def content_words(text: str) -> list[str]:
    """Lower-cased words of `text` minus stopwords and single punctuation characters, in order, unique."""
    stop = stopwords()
    seen: dict[str, None] = {}
    for w in _WORD_RE.findall(text.lower()):
        if w in stop or (len(w) == 1 and w in string.punctuation):
            continue
        seen.setdefault(w, None)
    return list(seen)


@lru_cache(maxsize=32)
def _pieces(tokenizer: Any) -> dict[str, tuple[int, ...]]:
    """word -> its ids, per tokenizer, filled as words are met: a corpus repeats its words, and the
    tokenizer call per batch was a visible share of a batch-1 encoding (issue 15)."""
    return {}


_MAX_CACHED_WORDS = 1 << 20


def allowed_ids(tokenizer: Any, texts: list[str], mask_token_id: int | None) -> list[torch.Tensor]:
    """Per text, the union of ids of its content words, each tokenised alone with no leading space."""
    per_text = [content_words(t) for t in texts]
    lookup = _pieces(tokenizer)
    new = sorted({w for words in per_text for w in words if w not in lookup})
    if new:
        if len(lookup) + len(new) > _MAX_CACHED_WORDS:
            lookup.clear()  # bounded memory on very large corpora
        pieces = tokenizer(new, add_special_tokens=False)["input_ids"]
        lookup.update(zip(new, map(tuple, pieces), strict=True))
    out = []
    for words in per_text:
        ids = {i for w in words for i in lookup[w]}
        ids.discard(mask_token_id)
        out.append(torch.tensor(sorted(ids), dtype=torch.long))
    return out


def pad_allowed(allowed: list[torch.Tensor], device: torch.device | str | None = None) -> torch.Tensor:
    """Per-text allowed ids as one [B, A] matrix padded with -1, on `device` (one copy for the batch)."""
    width = max((len(a) for a in allowed), default=0)
    out = torch.full((len(allowed), width), -1, dtype=torch.long)
    for i, a in enumerate(allowed):
        out[i, : len(a)] = a
    return out.to(device) if device is not None else out


def sparse_from_logits(
    logits: torch.Tensor, valid: torch.Tensor, allowed: list[torch.Tensor] | torch.Tensor, top_k: int = TOP_K,
    quantise: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Max-pooled sparse vectors from slot logits.

    logits [B, K, V] float32, valid [B, K] bool, allowed: per item the ascending vocabulary ids it may
    activate (a list, or `pad_allowed`'s matrix already on the logits' device). Per slot: weights
    log1p(relu(logit)) on allowed ids only, top-`top_k` of those float weights (equal weights at the cut:
    lower id first), then x100, truncated to an integer when `quantise` (the diffusion path and AR K=1 upstream) or kept as floats
    (upstream's AR K>1 path, docs/method.md §4.1 step 6; x100 only rescales, which no ranking or min-max
    fusion sees); then max over the valid slots. Returns host tensors (ids [B, M] with -1 padding,
    weights [B, M]) sorted by weight descending, then id ascending; zero weights are dropped.

    The batch is computed on the logits' device (`sparse_rows`) and copied to the host once, at the end.
    """
    return trim_rows(*to_host(*sparse_rows(logits, valid, allowed, top_k, quantise)))


def sparse_rows(logits: torch.Tensor, valid: torch.Tensor, allowed: list[torch.Tensor] | torch.Tensor,
                top_k: int = TOP_K, quantise: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """`sparse_from_logits` on the logits' device, before the host copy: (ids [B, A], weights [B, A]),
    every row sorted, ids -1 where the weight is 0."""
    dev = logits.device
    ids = pad_allowed(allowed, dev) if isinstance(allowed, list) else allowed.to(dev)
    b, k = logits.shape[0], logits.shape[1]
    if ids.shape[1] == 0:
        return torch.full((b, 0), -1, dtype=torch.long, device=dev), torch.zeros((b, 0), device=dev)
    real = ids >= 0
    cols = ids.clamp_min(0).unsqueeze(1).expand(b, k, ids.shape[1])
    # Non-finite logits count as 0 (docs/method.md §3.6); cleaned here, on the allowed columns only.
    w = torch.nan_to_num(logits.gather(2, cols).float(), nan=0.0, posinf=0.0, neginf=0.0)
    w = torch.log1p(torch.relu(w))  # [B, K, A]
    w = torch.where(real.unsqueeze(1), w, torch.zeros_like(w))
    # Upstream's order (diffretriever `_save_tok_sparse`, encode.py): each slot's top-k of the FLOAT weights,
    # then x100 and truncation. Truncating first ties ids that differ below 0.01 and changes which ids
    # survive the cut (issue 24: 1-6 ids per passage at the boundary).
    if ids.shape[1] > top_k:  # keep each slot's top-k, zero the rest; a stable sort keeps ties in id order
        keep = torch.zeros_like(w, dtype=torch.bool)
        keep.scatter_(2, torch.sort(w, dim=2, descending=True, stable=True).indices[..., :top_k], True)
        w = torch.where(keep, w, torch.zeros_like(w))
    w = w * SCALE
    if quantise:
        w = torch.trunc(w)
    w = torch.where(valid.to(dev).bool().unsqueeze(2), w, torch.zeros_like(w))
    pooled = w.max(dim=1).values  # [B, A]; padding columns stay 0 and sort last
    # ids ascend within a row, so a stable sort by weight leaves equal weights in id order
    order = torch.sort(pooled, dim=1, descending=True, stable=True).indices
    w_sorted = pooled.gather(1, order)
    ids_sorted = torch.where(w_sorted > 0, ids.gather(1, order), torch.full_like(order, -1))
    return ids_sorted, w_sorted


def trim_rows(ids: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`sparse_rows`' host copies cut to the widest row's count of non-zero weights."""
    width = int((ids >= 0).sum(1).max()) if ids.shape[0] else 0
    return ids[:, :width].contiguous(), weights[:, :width].contiguous()

