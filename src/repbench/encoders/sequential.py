"""PromptReps: greedy decoding of exactly K tokens with the KV cache (docs/method.md §4.1).

Slot 0 is the last prompt position (it predicts the first word); slot j is the newly fed token of
decode step j. No position ids are passed: positions continue from the padded length, which is
consistent between prefill and decoding, so RoPE distances between real tokens are unaffected.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from repbench.backbones.forward import head_logits, hidden_at
from repbench.backbones.loading import Backbone


def forward_sequential(
    bb: Backbone,
    ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    k: int,
    stop_ids: set[int] | frozenset[int] | None = None,
    early_stop: str | bool = "off",
    step_callback: Callable[[str, int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Hidden [B,K,H], logits [B,K,V] (float32), generated ids [B,K] and the number of steps run.

    `early_stop` "off": exactly K-1 decode steps run for the whole batch (the paper's fixed-N baseline).
    Otherwise a row is closed by the first generated id in `stop_ids` (the encoder's one answer-end set,
    `prompts.answer_end_ids`) and decoding stops once every row is closed. "strict" keeps the slot that
    generated the closing id; "upstream" (PromptReps' early exit) drops it too: its state and logits are
    zero (its id is kept, so the truncation sees why). A closed row's later slots are zero with id -1
    whether or not other rows keep the batch decoding, so the rule itself never ties a row to its batch
    (in bfloat16 padding can still change what a row decodes: `options.batch_rule`).
    """
    mode = ("upstream" if early_stop else "off") if isinstance(early_stop, bool) else early_stop
    stopping = mode != "off"
    b = ids.shape[0]
    hidden = torch.zeros(b, k, bb.hidden_size, dtype=torch.float32, device=ids.device)
    logits = torch.zeros(b, k, bb.vocab_size, dtype=torch.float32, device=ids.device)
    tokens = torch.full((b, k), -1, dtype=torch.long, device=ids.device)
    from transformers import DynamicCache

    cache = DynamicCache(config=bb.model.config)
    # Built before the first forward: a host-to-device copy later would wait for the queued work.
    stop = torch.tensor(sorted(stop_ids or ()), dtype=torch.long, device=ids.device) if stopping else None
    done = torch.zeros(b, dtype=torch.bool, device=ids.device)
    if step_callback is not None:
        step_callback("start", 0)
    last = ids.shape[1] - 1
    h = hidden_at(bb.model, ids, attention_mask, range(last, last + 1), cache=cache)[:, 0]
    lg = head_logits(bb.model, h)
    if step_callback is not None:
        step_callback("prefill", 0)
    steps = 1
    for j in range(k):
        nxt = lg.argmax(-1)
        closing = torch.isin(nxt, stop) & ~done if stop is not None else None
        if stopping:
            # "upstream" drops the slot whose token closes the answer; "strict" keeps it
            live = ~done & ~closing if mode == "upstream" else ~done
            hidden[:, j], logits[:, j] = h.float() * live.unsqueeze(1), lg.float() * live.unsqueeze(1)
            tokens[:, j] = torch.where(done, tokens[:, j], nxt)
        else:
            hidden[:, j], logits[:, j] = h.float(), lg.float()
            tokens[:, j] = nxt
        if j == k - 1:
            break
        if closing is not None:
            done |= closing
            if bool(done.all()):
                break
        if attention_mask is not None:  # None: no row padded, nothing to extend
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones(b, 1)], dim=1)
        h = hidden_at(bb.model, nxt[:, None], attention_mask, range(1), cache=cache)[:, 0]
        lg = head_logits(bb.model, h)
        steps += 1
        if step_callback is not None:
            step_callback("decode", j + 1)
    return hidden, logits, tokens, steps
