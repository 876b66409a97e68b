"""The backbone forward an encoder needs: final hidden states at the columns it reads, and their logits.

Every encoder reads a few columns of the last layer (K slots, or the last prompt position), yet
`model.model(...)` computes the last decoder layer, the final norm and, through `lm_head`, the logits
at every position. `hidden_at` runs transformers' own embedding, mask, rotary and decoder-layer modules
for all layers but the last, then the last layer only where it is read: its keys and values at every
column (attention needs them, and the KV cache keeps them), its queries, output projection and MLP at
the read columns. On the SmolLM2 parallel encoder (K=16, 32 text tokens) that is 3% of the forward.

Numerically it is the same computation on fewer rows: the layers before the last are the very calls
`model.model` makes, with the same inputs; in the last layer a matmul over a different number of rows
may sum in another order (on MKL: equal bits for several rows, ~1e-6 relative for a single row).
tests/test_backbone_forward.py holds it against the full forward. Which architectures take this path
is decided per model by `repbench.backbones.adapters` (an adapter per architecture, checked against
the installed transformers); any other model takes the full forward and slices it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from repbench.backbones.adapters import Adapter, forward_path

_CPU_VOCAB_BLOCK = 2048  # vocabulary rows per matmul in head_logits on CPU

Columns = range | Sequence[int] | torch.Tensor


def rows_supported(trunk: Any) -> bool:
    """Whether `hidden_at` computes the last layer at the read columns only for this `model.model`."""
    return forward_path(trunk).adapter is not None


def _columns(cols: Columns, device: torch.device) -> tuple[torch.Tensor, int]:
    """The read columns as an index tensor on `device`, and the smallest of them as a host int.

    A `range` becomes a device `arange` (no host-to-device copy, so no wait for the device); a list or
    a CPU tensor is copied once. A tensor already on the device costs one read of its values.
    """
    if isinstance(cols, range):
        if len(cols) == 0:
            raise ValueError("no columns to read")
        return torch.arange(cols.start, cols.stop, cols.step, device=device), min(cols[0], cols[-1])
    if isinstance(cols, torch.Tensor):
        host = cols.tolist() if cols.device.type == "cpu" else None
        idx = cols.to(device=device, dtype=torch.long)
        return idx, int(min(host) if host is not None else idx.min())
    host = [int(c) for c in cols]
    return torch.tensor(host, dtype=torch.long, device=device), min(host)


def hidden_at(model: Any, ids: torch.Tensor, attention_mask: torch.Tensor | None, cols: Columns,
              cache: Any | None = None) -> torch.Tensor:
    """Final-norm hidden states [B, len(cols), H] at columns `cols` of `ids` [B, L].

    `model` is a transformers *ForCausalLM. With `cache` (a transformers Cache, possibly already
    holding a prefix) the call extends it by L positions, as `model.model(..., past_key_values=cache,
    use_cache=True)` does; `attention_mask` then covers the cached and the new positions (None: no
    padding anywhere, which spares transformers a read-back of the mask). Pass `cols`
    as a `range` (what the encoders do) to keep host-device syncs out of the call.
    """
    trunk = model.model
    idx, lowest = _columns(cols, ids.device)
    adapter = forward_path(trunk).adapter
    if adapter is None:
        out = trunk(input_ids=ids, attention_mask=attention_mask, past_key_values=cache, use_cache=cache is not None)
        return out.last_hidden_state[:, idx]
    return rows_forward(adapter, trunk, ids, attention_mask, idx, lowest, cache)


def rows_forward(adapter: Adapter, trunk: Any, ids: torch.Tensor, attention_mask: torch.Tensor | None, idx: torch.Tensor,
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


def _last_layer_at(adapter: Adapter, layer: Any, x: torch.Tensor, cols: torch.Tensor, lowest: int,
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


def head_logits(model: Any, h: torch.Tensor, blocked: bool | None = None) -> torch.Tensor:
    """`model.lm_head(h)` for h [..., H], computed as W @ h^T with the [V, H] weight on the left.

    For the few rows an encoder reads, MKL's x @ W^T (what nn.Linear runs) streams the vocabulary
    weight slowly: on SmolLM2's 49152x576 head, 2 cores, best of 15, nn.Linear takes 20 ms for 16 rows
    and 27 ms for 2; W @ h^T in blocks of 2,048 vocabulary rows takes 12-14 ms and 3-5 ms (one
    thread: 25 vs 22 ms at 16 rows). A single row goes through MKL's sgemv, itself 2.5x slower than
    the same product with two columns, so one row is computed as two. The blocks only split the
    vocabulary: every logit is the same 576-term dot product. `blocked` picks the path (default: the
    blocks on CPU, one matmul elsewhere); tests run the GPU path on CPU with blocked=False.
    """
    head = model.lm_head
    if not isinstance(head, torch.nn.Linear) or head.bias is not None:
        return head(h)
    flat = h.reshape(-1, h.shape[-1])
    n = flat.shape[0]
    if n == 1:
        flat = flat.repeat(2, 1)
    cols = flat.T
    if blocked is None:
        blocked = flat.device.type == "cpu"
    if blocked:
        out = torch.cat([w @ cols for w in head.weight.split(_CPU_VOCAB_BLOCK)])
    else:
        out = head.weight @ cols
    return out.T[:n].reshape(*h.shape[:-1], out.shape[0])
