"""PromptReps-style sparse vectors from slot logits (method-spec §3.7).

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


def sparse_from_logits(
    logits: torch.Tensor, valid: torch.Tensor, allowed: list[torch.Tensor], top_k: int = TOP_K,
    quantise: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Max-pooled sparse vectors from slot logits.

    logits [B, K, V] float32, valid [B, K] bool, allowed: per item the vocabulary ids it may activate.
    Per slot: weights log1p(relu(logit)) on allowed ids only, top-`top_k`, x100, truncated to an integer
    when `quantise` (the diffusion path and AR K=1 upstream) or kept as floats (upstream's AR K>1 path,
    method-spec §4.1 step 6; x100 only rescales, which no ranking or min-max fusion sees); then max over
    the valid slots. Returns (ids [B, M] with -1 padding, weights [B, M]) sorted by weight descending,
    then id ascending; zero weights are dropped.
    """
    rows_ids: list[torch.Tensor] = []
    rows_w: list[torch.Tensor] = []
    for b in range(logits.shape[0]):
        ids = allowed[b].to(logits.device)
        if ids.numel() == 0 or not bool(valid[b].any()):
            rows_ids.append(torch.empty(0, dtype=torch.long))
            rows_w.append(torch.empty(0))
            continue
        # Non-finite logits count as 0 (§3.6); cleaned here, on the allowed columns only.
        w = torch.nan_to_num(logits[b][:, ids].float(), nan=0.0, posinf=0.0, neginf=0.0)
        w = torch.log1p(torch.relu(w)) * SCALE  # [K, A]
        if quantise:
            w = torch.trunc(w)
        if ids.numel() > top_k:  # keep each slot's top-k, zero the rest
            keep = torch.zeros_like(w, dtype=torch.bool)
            keep.scatter_(1, w.topk(top_k, dim=1).indices, True)
            w = torch.where(keep, w, torch.zeros_like(w))
        w = torch.where(valid[b].to(w.device).unsqueeze(1), w, torch.zeros_like(w))
        pooled = w.max(dim=0).values
        nz = pooled > 0
        ids_nz, w_nz = ids[nz].cpu(), pooled[nz].cpu()
        # `ids` ascend, so a stable sort by weight leaves equal weights in id order
        order = torch.sort(w_nz, descending=True, stable=True).indices
        rows_ids.append(ids_nz[order])
        rows_w.append(w_nz[order])
    width = max((len(r) for r in rows_ids), default=0)
    out_ids = torch.full((len(rows_ids), width), -1, dtype=torch.long)
    out_w = torch.zeros((len(rows_ids), width), dtype=torch.float32)
    for b, (i, w) in enumerate(zip(rows_ids, rows_w, strict=True)):
        out_ids[b, : len(i)] = i
        out_w[b, : len(w)] = w
    return out_ids, out_w
