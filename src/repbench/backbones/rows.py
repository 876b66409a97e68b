"""The read-columns forward: every decoder layer but the last in full, the last one at the read columns only.

`backbones.forward.hidden_at` calls it for models whose architecture adapter (`backbones.adapters`)
checks out against the installed transformers; the adapter supplies the architecture's own
`eager_attention_forward` and `rotate_half`. What it computes and why: `backbones/forward.py`.
"""

from __future__ import annotations

from typing import Any

import torch


def rows_forward(adapter: Any, trunk: Any, ids: torch.Tensor, attention_mask: torch.Tensor | None, idx: torch.Tensor,
                 lowest: int, cache: Any | None) -> torch.Tensor:
    """`hidden_at` through `adapter`: every layer but the last in full, the last at columns `idx` only."""
    from transformers.masking_utils import create_causal_mask

    x = trunk.embed_tokens(ids)
    past = cache.get_seq_length() if cache is not None else 0
    position_ids = (torch.arange(ids.shape[1], device=ids.device) + past).unsqueeze(0)
    # No position_ids: with them and no mask transformers looks for packed sequences by reading the ids
    # back (a wait for the device); these positions are one contiguous range per row, never packed.
    mask = create_causal_mask(config=trunk.config, inputs_embeds=x, attention_mask=attention_mask,
                              past_key_values=cache)
    pos_emb = trunk.rotary_emb(x, position_ids)
    causal = bool(getattr(trunk.config, "is_causal", True))
    layers = trunk.layers[: trunk.config.num_hidden_layers]
    for layer in layers[:-1]:
        x = layer(x, attention_mask=mask, position_embeddings=pos_emb, position_ids=position_ids,
                  past_key_values=cache, use_cache=cache is not None, is_causal=causal)
    x = _last_layer_at(adapter, layers[-1], x, idx, lowest, mask, pos_emb, cache, causal, past)
    return trunk.norm(x)


def _last_layer_at(adapter: Any, layer: Any, x: torch.Tensor, cols: torch.Tensor, lowest: int,
                   mask: torch.Tensor | None, pos_emb: tuple[torch.Tensor, torch.Tensor], cache: Any | None,
                   causal: bool, past: int) -> torch.Tensor:
    """One decoder layer (LlamaDecoderLayer / Qwen2DecoderLayer) whose output is needed at `cols` only."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    eager_attention_forward, rotate_half = adapter.functions()
    attn = layer.self_attn
    b, length, _ = x.shape
    r = cols.numel()
    h = layer.input_layernorm(x)
    q = attn.q_proj(h[:, cols]).view(b, r, -1, attn.head_dim).transpose(1, 2)
    k = attn.k_proj(h).view(b, length, -1, attn.head_dim).transpose(1, 2)
    v = attn.v_proj(h).view(b, length, -1, attn.head_dim).transpose(1, 2)
    cos, sin = (t.unsqueeze(1) for t in pos_emb)  # [1, 1, L, D]: the positions of this call
    q = q * cos[:, :, cols] + rotate_half(q) * sin[:, :, cols]
    k = k * cos + rotate_half(k) * sin
    if cache is not None:
        k, v = cache.update(k, v, attn.layer_idx)
    backend = attn.config._attn_implementation
    sub = _query_mask(mask, cols, lowest, k.shape[2], past, causal, backend, x.dtype)
    attend = ALL_ATTENTION_FUNCTIONS.get_interface(backend, eager_attention_forward)
    out, _ = attend(attn, q, k, v, sub, dropout=0.0, scaling=attn.scaling, is_causal=False)
    x = x[:, cols] + attn.o_proj(out.reshape(b, r, -1).contiguous())
    return x + layer.mlp(layer.post_attention_layernorm(x))


def _query_mask(mask: torch.Tensor | None, cols: torch.Tensor, lowest: int, kv_len: int, past: int, causal: bool,
                backend: str, dtype: torch.dtype) -> torch.Tensor | None:
    """The attention mask of the full forward, restricted to the query rows `cols`.

    transformers returns None when the pattern is implied (no padding): bidirectional then needs no
    mask, causal one built here, since sdpa's `is_causal` aligns a short query block to the top-left.
    Whether any key is hidden is decided from `lowest` (a host int), not by reading the mask back.
    """
    if mask is not None:
        return mask[:, :, cols]
    if not causal or lowest + past >= kv_len - 1:  # every read column sees every key
        return None
    keep = torch.arange(kv_len, device=cols.device)[None, :] <= (cols + past)[:, None]
    if backend == "eager":  # eager adds its mask to the scores
        return torch.zeros(keep.shape, dtype=dtype, device=cols.device).masked_fill(~keep, torch.finfo(dtype).min)[None, None]
    return keep[None, None]
