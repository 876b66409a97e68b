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
tests/test_backbone_forward.py holds it against the full forward. The computation is in
`repbench.backbones.rows`; which architectures take it is decided per model by
`repbench.backbones.adapters` (an adapter per architecture, checked against the installed
transformers); any other model takes the full forward and slices it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from repbench.backbones.adapters import forward_path
from repbench.backbones.rows import rows_forward

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
