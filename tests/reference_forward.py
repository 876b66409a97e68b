"""An independent, from-spec pure-torch forward for Qwen2/Llama-style decoders (tests only).

Pre-norm RMSNorm (fp32 variance), GQA with optional q/k/v bias, rotate-half RoPE, SwiGLU, final norm.
Written from the architecture description, not from transformers' code, so tests compare two
implementations rather than one with itself.
"""

from __future__ import annotations

import math

import torch


def _rms(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    var = x.float().pow(2).mean(-1, keepdim=True)
    return w * (x.float() * torch.rsqrt(var + eps)).to(x.dtype)


def _rope(x: torch.Tensor, pos: torch.Tensor, theta: float) -> torch.Tensor:
    d = x.shape[-1]
    inv = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    ang = pos.float()[..., None] * inv  # [B, L, d/2]
    cos = torch.cat([ang.cos(), ang.cos()], -1)[:, None]
    sin = torch.cat([ang.sin(), ang.sin()], -1)[:, None]
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    rot = torch.cat([-x2, x1], -1)
    return x * cos + rot * sin


def reference_forward(model, ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                      causal: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(last normed hidden state [B,L,H], logits [B,L,V]); positions are 0..L-1 (no position ids)."""
    cfg = model.config
    sd = {k: v.float() for k, v in model.state_dict().items()}
    b, length = ids.shape
    n_h, n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
    hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_h
    theta = cfg.rope_parameters["rope_theta"] if getattr(cfg, "rope_parameters", None) else cfg.rope_theta
    eps = cfg.rms_norm_eps
    pos = torch.arange(length).expand(b, length)
    allowed = torch.ones(length, length, dtype=torch.bool)
    if causal:
        allowed = torch.tril(allowed)
    allowed = allowed.expand(b, length, length).clone()
    if attention_mask is not None:
        allowed &= attention_mask.bool()[:, None, :]  # padded keys are never attended
    x = sd["model.embed_tokens.weight"][ids]
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        h = _rms(x, sd[p + "input_layernorm.weight"], eps)

        def proj(name: str, h=h, p=p) -> torch.Tensor:
            y = h @ sd[p + f"self_attn.{name}.weight"].T
            bias = sd.get(p + f"self_attn.{name}.bias")
            return y + bias if bias is not None else y

        q = proj("q_proj").view(b, length, n_h, hd).transpose(1, 2)
        k = proj("k_proj").view(b, length, n_kv, hd).transpose(1, 2)
        v = proj("v_proj").view(b, length, n_kv, hd).transpose(1, 2)
        q, k = _rope(q, pos, theta), _rope(k, pos, theta)
        k = k.repeat_interleave(n_h // n_kv, dim=1)
        v = v.repeat_interleave(n_h // n_kv, dim=1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        scores = scores.masked_fill(~allowed[:, None], float("-inf"))
        # rows with no allowed key (padded queries under causal masking) -> zeros instead of NaN
        att = torch.nan_to_num(torch.softmax(scores, -1), nan=0.0)
        o = (att @ v).transpose(1, 2).reshape(b, length, n_h * hd) @ sd[p + "self_attn.o_proj.weight"].T
        x = x + o
        h = _rms(x, sd[p + "post_attention_layernorm.weight"], eps)
        gate = h @ sd[p + "mlp.gate_proj.weight"].T
        up = h @ sd[p + "mlp.up_proj.weight"].T
        x = x + (torch.nn.functional.silu(gate) * up) @ sd[p + "mlp.down_proj.weight"].T
    x = _rms(x, sd["model.norm.weight"], eps)
    head = sd.get("lm_head.weight", sd["model.embed_tokens.weight"])
    return x, x @ head.T
