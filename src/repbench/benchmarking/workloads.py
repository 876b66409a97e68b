"""Synthetic, seeded benchmark inputs: token ids of an exact length, unit vectors, sparse rows."""

from __future__ import annotations

from typing import Any

import numpy as np


def ordinary_token_ids(tokenizer: Any, limit: int = 20_000) -> np.ndarray:
    """Ids of plain word pieces (letters only, no special or added tokens) from a tokenizer's vocab.

    Using real word pieces, not arbitrary ids, keeps the synthetic text in the distribution the
    model's embeddings were trained on; special ids would change the prompt's structure.
    """
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    added = set((getattr(tokenizer, "get_added_vocab", lambda: {})() or {}).values())
    vocab = tokenizer.get_vocab()
    out = []
    for tok, idx in sorted(vocab.items(), key=lambda kv: kv[1]):
        if idx in special or idx in added:
            continue
        word = tok.lstrip("Ġ▁ ")
        if len(word) >= 2 and word.isascii() and word.isalpha():
            out.append(idx)
        if len(out) >= limit:
            break
    if not out:
        raise ValueError("tokenizer vocabulary has no plain word-piece tokens to build synthetic text from")
    return np.asarray(out, dtype=np.int64)


def synthetic_text_ids(pool: np.ndarray, n_items: int, length: int, seed: int = 0) -> list[list[int]]:
    """`n_items` texts of exactly `length` token ids, sampled (seeded) from `pool`."""
    if length < 1 or n_items < 1:
        raise ValueError(f"need length >= 1 and n_items >= 1, got {length}, {n_items}")
    rng = np.random.default_rng(seed)
    return rng.choice(pool, size=(n_items, length), replace=True).tolist()


def unit_vectors(n: int, k: int, dim: int, seed: int = 0) -> np.ndarray:
    """float32 [n, k, dim] random unit vectors (Gaussian direction), generated in chunks to cap memory."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, k, dim), dtype=np.float32)
    step = max(1, (1 << 22) // max(1, k * dim))
    for s in range(0, n, step):
        block = rng.standard_normal((min(step, n - s), k, dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=-1, keepdims=True)
        out[s:s + block.shape[0]] = block
    return out


def sparse_rows(n: int, m: int, vocab_size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n rows of m distinct-ish vocabulary ids (Zipf-like, so queries and documents share common terms)
    with positive weights; int64 ids and float32 weights, both [n, m]."""
    rng = np.random.default_rng(seed)
    rank = np.arange(vocab_size, dtype=np.float64)
    p = 1.0 / (rank + 10.0)
    p /= p.sum()
    perm = rng.permutation(vocab_size)  # frequent terms scattered over the id space
    ids = perm[rng.choice(vocab_size, size=(n, m), p=p)].astype(np.int64)
    weights = rng.uniform(0.1, 3.0, size=(n, m)).astype(np.float32)
    return ids, weights
