"""Per-query signals from what an encoder already computed (no extra forward pass).

Names and meanings: repbench.schema.signals (SLOT_SIGNALS, TEXT_SIGNALS). Everything here is read off
the logits, hidden states and sparse weights of one batch, before they are discarded.
"""

from __future__ import annotations

import numpy as np
import torch


def batch_signals(logits: torch.Tensor | None, tokens: torch.Tensor, valid: torch.Tensor, hidden: torch.Tensor,
                  sparse_weights: torch.Tensor, text_tokens: list[int], input_tokens: list[int]
                  ) -> dict[str, np.ndarray]:
    """Per-text arrays [B] and per-slot arrays [B, K] for one batch.

    `hidden` holds the slot vectors with invalid slots zeroed; `logits` [B, K, V] are those read at the
    slots (None for single-vector encoders, which then get text-level signals only).
    """
    valid = valid.bool()
    b, k = valid.shape
    out: dict[str, np.ndarray] = {
        "text_tokens": np.asarray(text_tokens, dtype=np.float64),
        "input_tokens": np.asarray(input_tokens, dtype=np.float64),
        "valid_slots": valid.sum(1).double().cpu().numpy(),
        "sparse_mass": sparse_weights.double().sum(1).cpu().numpy() if sparse_weights.numel()
        else np.zeros(b),
    }
    unit = torch.nn.functional.normalize(hidden.float(), dim=-1, eps=1e-12)
    gram = unit @ unit.transpose(1, 2)  # [B, K, K]
    pair = valid.unsqueeze(2) & valid.unsqueeze(1) & torch.triu(torch.ones(k, k, dtype=torch.bool, device=valid.device), 1)
    n_pairs = pair.sum((1, 2)).double()
    cos = (gram.double() * pair).sum((1, 2)) / n_pairs.clamp_min(1)
    out["mean_pairwise_cosine"] = torch.where(n_pairs > 0, cos, torch.full_like(cos, float("nan"))).cpu().numpy()
    if logits is None:
        return out
    logp = torch.log_softmax(logits.float(), dim=-1)
    p = logp.exp()
    out["entropy"] = (-(p * logp).sum(-1)).double().cpu().numpy()
    out["top1_prob"] = p.max(-1).values.double().cpu().numpy()
    out["token_id"] = tokens.double().cpu().numpy()
    out["valid"] = valid.double().cpu().numpy()
    distinct = [len(set(t[v].tolist())) for t, v in zip(tokens.cpu(), valid.cpu(), strict=True)]
    out["distinct_tokens"] = np.asarray(distinct, dtype=np.float64)
    return out


def concat_signals(parts: list[dict[str, np.ndarray]], order: np.ndarray) -> dict[str, np.ndarray]:
    """Concatenate per-batch arrays and put rows back in input order (`order` = input index of each row)."""
    if not parts:
        return {}
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[np.asarray(order)] = np.arange(len(order))
    return {name: np.concatenate([p[name] for p in parts])[inverse] for name in parts[0]}
