"""DiffRetriever: K mask tokens + 3 fixed tail tokens, read in one bidirectional pass (docs/method.md §3)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from repbench.backbones.forward import head_logits, hidden_at
from repbench.backbones.loading import Backbone
from repbench.encoders.options import CONFIDENCE
from repbench.encoders.prompts import N_TAIL, PromptIds


def layout(prompt: PromptIds, text_ids: list[int], k: int, mask_id: int) -> list[int]:
    """[prefix] [text] [suffix] [MASK x K] [TAIL x 3]"""
    return prompt.prefix + text_ids + prompt.suffix + [mask_id] * k + prompt.tail


def readout_positions(length: int, k: int, readout: str, logits_shifted: bool) -> range:
    """Columns read for the K slots of a left-padded batch of width `length`.

    The mask block starts at g_start = L - K - 3 in every row. `paper` reads the mask positions as
    DiffRetriever does; `aligned` reads one column to the left when the backbone's logits keep the AR
    shift (Dream), so that slot k is the output that predicts mask k.
    """
    g_start = length - k - N_TAIL
    shift = 1 if (readout == "aligned" and logits_shifted) else 0
    return range(g_start - shift, g_start - shift + k)


def _confidence(logits: torch.Tensor, kind: str) -> torch.Tensor:
    probs = torch.softmax(logits.float(), dim=-1)
    if kind == "entropy":
        return (probs * torch.log(probs.clamp_min(1e-30))).sum(-1)  # negative entropy
    top2 = probs.topk(2, dim=-1).values
    if kind == "maskgit_plus":
        return top2[..., 0]
    if kind == "topk_margin":
        return top2[..., 0] - top2[..., 1]
    raise ValueError(f"confidence must be one of {CONFIDENCE}, got {kind!r}")


def forward_parallel(
    bb: Backbone,
    ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    k: int,
    readout: str = "paper",
    denoise_steps: int = 1,
    confidence: str = "entropy",
    step_callback: Callable[[str, int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hidden states [B,K,H], logits [B,K,V] (float32) and decoded ids [B,K] at the K slots.

    With S = `denoise_steps` > 1, slots are unmasked over S passes by confidence (docs/method.md §3.5)
    and each slot keeps the hidden state and logits of the pass that unmasked it.
    """
    b, length = ids.shape
    pos = readout_positions(length, k, readout, bb.spec.logits_shifted)
    if step_callback is not None:
        step_callback("start", 0)
    if denoise_steps == 1:  # the paper's setting: every slot is unmasked by the single pass
        h = hidden_at(bb.model, ids, attention_mask, pos)
        lg = head_logits(bb.model, h)
        if step_callback is not None:
            step_callback("forward", 0)
        return h.float(), lg.float(), lg.argmax(-1)
    paper = readout_positions(length, k, "paper", False)
    mask_cols = slice(paper.start, paper.stop)
    ids = ids.clone()
    hidden = logits = tokens = None
    saved = torch.zeros(b, k, dtype=torch.bool, device=ids.device)
    timesteps = torch.linspace(1.0, 1e-3, denoise_steps + 1).tolist()
    n_masked = k  # the same count in every row, so kept on the host (no read-back from the device)
    for step in range(denoise_steps):
        h = hidden_at(bb.model, ids, attention_mask, pos)
        lg = head_logits(bb.model, h)
        if step_callback is not None:
            step_callback("denoise", step)
        h, lg = h.float(), lg.float()
        if hidden is None:
            hidden, logits = h.clone(), lg.clone()
            tokens = lg.argmax(-1)
        still = ~saved
        if step == denoise_steps - 1:
            unmask = still
        else:
            t, s = timesteps[step], timesteps[step + 1]
            n = max(1, int(n_masked * (1 - s / t)))
            n_masked = max(0, n_masked - n)
            conf = _confidence(lg, confidence).masked_fill(~still, float("-inf"))
            unmask = torch.zeros_like(still)
            unmask.scatter_(1, conf.topk(n, dim=1).indices, True)
            unmask &= still
        sel = unmask.unsqueeze(-1)
        hidden = torch.where(sel, h, hidden)
        logits = torch.where(sel, lg, logits)
        tokens = torch.where(unmask, lg.argmax(-1), tokens)
        saved |= unmask
        ids[:, mask_cols] = torch.where(unmask, tokens, ids[:, mask_cols])
    return hidden, logits, tokens
