"""Which models `hidden_at` may run through the read-columns forward, checked against the installed transformers.

The read-columns forward (backbones/forward.py) calls transformers' internals: the decoder layer's keyword
arguments, the attention module's projections, `create_causal_mask`, the attention interface and each
architecture's `rotate_half` / `eager_attention_forward`. Those change between transformers releases, so
each architecture has an explicit adapter, and an adapter is used only after two checks against the
transformers that is installed: the names and signatures it calls exist (per model), and, once per
process and (architecture, attention backend, causal or not), a tiny random model of that architecture
gives the same hidden states through the read-columns forward as through transformers' own full forward,
with and without a KV cache. Anything else takes the full forward; `forward_path` says which and why,
and the bench JSON records it per cell.
"""

from __future__ import annotations

import importlib
import inspect
import weakref
from dataclasses import dataclass
from functools import cache
from typing import Any

KNOWN_BACKENDS = frozenset({"sdpa", "eager"})
_LAYER_KWARGS = ("attention_mask", "position_ids", "past_key_values", "use_cache", "position_embeddings")
_PROBE_TOL = 1e-4


@dataclass(frozen=True)
class Adapter:
    """One architecture whose attention is q/k/v/o projections + rotary + transformers' attention interface."""

    model_class: str  # type(model.model).__name__
    config_class: str  # transformers class of its config (the probe builds a tiny one)
    lm_class: str  # transformers *ForCausalLM class (the probe's model)
    modeling: str  # module holding the architecture's rotate_half and eager_attention_forward

    def functions(self) -> tuple[Any, Any]:
        """(eager_attention_forward, rotate_half) of this architecture in the installed transformers."""
        module = importlib.import_module(self.modeling)
        return module.eager_attention_forward, module.rotate_half


# Qwen2 adds q/k/v biases, which nn.Linear carries; otherwise the two layers are the same computation.
ADAPTERS: dict[str, Adapter] = {a.model_class: a for a in (
    Adapter("LlamaModel", "LlamaConfig", "LlamaForCausalLM", "transformers.models.llama.modeling_llama"),
    Adapter("Qwen2Model", "Qwen2Config", "Qwen2ForCausalLM", "transformers.models.qwen2.modeling_qwen2"),
)}


@dataclass(frozen=True)
class ForwardPath:
    adapter: Adapter | None  # None: the full forward, sliced
    reason: str

    def describe(self) -> str:
        return f"read-columns ({self.reason})" if self.adapter is not None else f"full forward ({self.reason})"


def transformers_version() -> str:
    import transformers

    return str(transformers.__version__)


_PATHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def forward_path(trunk: Any) -> ForwardPath:
    """The forward `hidden_at` takes for this `model.model`, and why.

    Decided once per model (the checks cost ~0.1 ms, and `hidden_at` runs at every decode step), again
    when its attention backend or causality, or the adapter table, changes.
    """
    cfg = trunk.config
    key = (id(ADAPTERS), cfg._attn_implementation, getattr(cfg, "is_causal", True))
    hit = _PATHS.get(trunk)
    if hit is not None and hit[0] == key:
        return hit[1]
    path = _decide(trunk)
    _PATHS[trunk] = (key, path)
    return path


def _decide(trunk: Any) -> ForwardPath:
    name = type(trunk).__name__
    adapter = ADAPTERS.get(name)
    if adapter is None:
        return ForwardPath(None, f"no read-columns adapter for {name}")
    cfg = trunk.config
    backend = cfg._attn_implementation
    if backend not in KNOWN_BACKENDS:
        return ForwardPath(None, f"attention backend {backend!r} (the adapter knows {', '.join(sorted(KNOWN_BACKENDS))})")
    if getattr(trunk, "has_sliding_layers", False) or any(
            t != "full_attention" for t in getattr(cfg, "layer_types", None) or ["full_attention"]):
        return ForwardPath(None, "sliding-window layers")
    missing = _missing_modules(trunk)
    if missing:
        return ForwardPath(None, f"{name} lacks {missing} in transformers {transformers_version()}")
    problem = check_adapter(adapter, backend, bool(getattr(cfg, "is_causal", True)))
    if problem:
        return ForwardPath(None, problem)
    return ForwardPath(adapter, f"{name} adapter, transformers {transformers_version()}")


def _missing_modules(trunk: Any) -> str | None:
    """The first attribute the read-columns forward reads that this model does not have."""
    for attr in ("embed_tokens", "rotary_emb", "layers", "norm"):
        if not hasattr(trunk, attr):
            return attr
    layer = trunk.layers[-1]
    for attr in ("self_attn", "input_layernorm", "post_attention_layernorm", "mlp"):
        if not hasattr(layer, attr):
            return f"layers[-1].{attr}"
    for attr in ("q_proj", "k_proj", "v_proj", "o_proj", "head_dim", "scaling", "layer_idx", "config"):
        if not hasattr(layer.self_attn, attr):
            return f"self_attn.{attr}"
    return None


@cache
def check_adapter(adapter: Adapter, backend: str, causal: bool) -> str | None:
    """None when `adapter` agrees with the installed transformers, else what disagrees (cached per process)."""
    try:
        import transformers
        from transformers.masking_utils import create_causal_mask  # noqa: F401
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

        adapter.functions()
        getattr(ALL_ATTENTION_FUNCTIONS, "get_interface")  # noqa: B009
        cfg_cls, lm_cls = getattr(transformers, adapter.config_class), getattr(transformers, adapter.lm_class)
    except (ImportError, AttributeError) as exc:
        return f"transformers {transformers_version()} lacks what the {adapter.model_class} adapter calls ({exc})"
    model = _tiny(cfg_cls, lm_cls, backend, causal)
    layer_cls = type(model.model.layers[0])
    params = inspect.signature(layer_cls.forward).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    absent = [k for k in _LAYER_KWARGS if k not in params]
    if absent and not takes_any:
        return f"{layer_cls.__name__}.forward in transformers {transformers_version()} takes no {', '.join(absent)}"
    try:
        diff = _probe(adapter, model, causal)
    except Exception as exc:  # any failure of the shortcut on this transformers means: do not use it
        return f"the {adapter.model_class} adapter fails on transformers {transformers_version()}: {type(exc).__name__}: {exc}"
    if diff > _PROBE_TOL:
        return (f"the {adapter.model_class} adapter differs from transformers {transformers_version()}'s full "
                f"forward by {diff:.2g} on a probe model")
    return None


def _tiny(cfg_cls: Any, lm_cls: Any, backend: str, causal: bool) -> Any:
    """A seeded 2-layer model of the architecture (GQA, random norms and biases), float32 on the CPU."""
    import torch

    cfg = cfg_cls(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=8, vocab_size=96, max_position_embeddings=64)
    cfg._attn_implementation = backend
    cfg.is_causal = causal
    gen = torch.Generator().manual_seed(0)
    with torch.device("cpu"):
        model = lm_cls(cfg).float().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3 + (1.0 if p.ndim == 1 else 0.0))
    return model


def _probe(adapter: Adapter, model: Any, causal: bool) -> float:
    """Largest |read-columns - full forward| over a batch with and without padding, and (causal models,
    which decode) a prefill and a decode step through a KV cache."""
    import torch
    from transformers import DynamicCache

    from repbench.backbones.rows import rows_forward

    trunk = model.model
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 96, (2, 9), generator=gen)
    padded = torch.ones_like(ids)
    padded[1, :3] = 0
    cols, last = torch.tensor([2, 5, 8]), torch.tensor([ids.shape[1] - 1])
    diffs = []
    with torch.inference_mode():
        for mask in (None, padded):  # None: no padding, no mask (what the encoders pass then)
            full = trunk(input_ids=ids, attention_mask=mask).last_hidden_state[:, cols]
            diffs.append((rows_forward(adapter, trunk, ids, mask, cols, 2, None) - full).abs().max())
            if not causal:
                continue
            ours, theirs = DynamicCache(config=model.config), DynamicCache(config=model.config)
            got = rows_forward(adapter, trunk, ids, mask, last, ids.shape[1] - 1, ours)
            ref = trunk(input_ids=ids, attention_mask=mask, past_key_values=theirs, use_cache=True).last_hidden_state
            diffs.append((got - ref[:, -1:]).abs().max())
            step = torch.tensor([[7], [11]])
            if mask is not None:
                mask = torch.cat([mask, torch.ones(2, 1, dtype=mask.dtype)], 1)
            got = rows_forward(adapter, trunk, step, mask, torch.tensor([0]), 0, ours)
            ref = trunk(input_ids=step, attention_mask=mask, past_key_values=theirs, use_cache=True).last_hidden_state
            diffs.append((got - ref).abs().max())
    return float(max(diffs))
