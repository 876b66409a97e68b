"""The paper's single-pass baselines: DiffEmbed (mean pool) and RepLLaMA (last token), docs/method.md §5."""

from __future__ import annotations

import torch

from repbench.backbones.forward import hidden_at
from repbench.backbones.loading import Backbone


def forward_meanpool(bb: Backbone, ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of last-layer states over real tokens (fp32 accumulation; no mask: every token) -> [B, H]."""
    h = bb.model.model(input_ids=ids, attention_mask=attention_mask).last_hidden_state.float()
    if attention_mask is None:  # the masked mean's own arithmetic with every weight 1
        return h.sum(1) / h.shape[1]
    m = attention_mask.unsqueeze(-1).float()
    return (h * m).sum(1) / m.sum(1).clamp_min(1.0)


def forward_lasttoken(bb: Backbone, ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Last-position state of a left-padded batch (the appended EOS) -> [B, H]."""
    last = ids.shape[1] - 1
    return hidden_at(bb.model, ids, attention_mask, range(last, last + 1))[:, 0].float()


def special_prefix(tokenizer) -> list[int]:
    """The ids the tokenizer adds in front of a text by default (e.g. BOS), found on an empty string."""
    return list(tokenizer("", add_special_tokens=True)["input_ids"])
