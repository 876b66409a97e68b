"""The encoders repbench knows: one row each, read by the argument checks, the bench grid and the report.

Adding an encoder means a batch function (see `repbench.encoders.batch`) and one row here. The forward
function is named as "module:function" and imported on first use, so this module stays free of torch
and the report can read names, families and colours without loading a model stack.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from repbench.encoders.options import EncodeOptions
from repbench.errors import RepbenchError, did_you_mean

MAX_K = 64
# Options every encoder reads; the rows below list the ones each reads on top of these.
COMMON_OPTIONS = frozenset({"k", "side", "batch_size", "max_length"})
_PROMPTED = frozenset({"prompt_variant", "truncate", "sparse_top_k"})


@dataclass(frozen=True)
class EncoderSpec:
    name: str
    family: str  # backbone family it is built for: "ar" (causal) or "diffusion" (bidirectional, masks)
    forward: str  # "module:function" of its batch function
    max_k: int
    options: frozenset[str]  # EncodeOptions fields it reads beyond COMMON_OPTIONS
    prompted: bool = False  # reads K slots through a prompt (dense slots + a sparse vector), not one pooled vector
    is_default: bool = False  # the family's encoder when none is named
    needs_mask: bool = False  # reads K mask slots, so the backbone needs a mask token
    reads_columns: bool = True  # reads a few last-layer columns (backbones.forward.hidden_at), not every position
    palette_index: int = 7  # fixed colour slot, so an encoder keeps its colour in every figure

    def forward_fn(self) -> Callable[..., Any]:
        module, _, name = self.forward.partition(":")
        return getattr(importlib.import_module(module), name)


_BATCH = "repbench.encoders.batch"
REGISTRY: dict[str, EncoderSpec] = {
    spec.name: spec
    for spec in (
        EncoderSpec("sequential", "ar", f"{_BATCH}:sequential_batch", MAX_K, _PROMPTED | {"early_stop", "adapt_prompt"},
                    prompted=True, is_default=True, palette_index=0),
        EncoderSpec("parallel", "diffusion", f"{_BATCH}:parallel_batch", MAX_K,
                    _PROMPTED | {"readout", "denoise_steps", "confidence"}, prompted=True, is_default=True, needs_mask=True,
                    palette_index=1),
        EncoderSpec("meanpool", "diffusion", f"{_BATCH}:meanpool_batch", 1, frozenset(), palette_index=2,
                    reads_columns=False),
        EncoderSpec("lasttoken", "ar", f"{_BATCH}:lasttoken_batch", 1, frozenset(), palette_index=4),
    )
}
ENCODERS: tuple[str, ...] = tuple(REGISTRY)


def get_encoder(name: str) -> EncoderSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise RepbenchError(f"unknown encoder {name!r}{did_you_mean(name, ENCODERS)}; known encoders: "
                            f"{', '.join(ENCODERS)}") from None


def encoder_name(name: str) -> str:
    """argparse `type` of --encoder. An unknown name raises RepbenchError, which argparse does not catch
    (it catches only ValueError/TypeError), so the CLI prints one line with a suggestion and exits 2."""
    return get_encoder(name).name


def default_encoder(family: str) -> str:
    for spec in REGISTRY.values():
        if spec.is_default and spec.family == family:
            return spec.name
    raise RepbenchError(f"no default encoder for backbone family {family!r}")


def encoders_for_family(family: str) -> tuple[str, ...]:
    return tuple(spec.name for spec in REGISTRY.values() if spec.family == family)


def check(name: str, opts: EncodeOptions, mask_token_id: int | None, backbone_name: str) -> EncoderSpec:
    """Refuse before any forward pass: unknown encoder, K out of range, a backbone it cannot read,
    bad option values, and options set that this encoder would silently ignore."""
    spec = get_encoder(name)
    k = opts.k
    if not isinstance(k, int) or isinstance(k, bool) or k < 1 or k > MAX_K:
        raise RepbenchError(f"K must be an integer between 1 and {MAX_K}, got {k!r}")
    if k > spec.max_k == 1:
        raise RepbenchError(f"the {name} encoder produces one vector per text: K must be 1, got {k}")
    if k > spec.max_k:
        raise RepbenchError(f"the {name} encoder reads at most K={spec.max_k}, got {k}")
    if spec.needs_mask and mask_token_id is None:
        raise RepbenchError(
            f"the {name} encoder needs a mask token; {backbone_name} has none "
            f"(use a diffusion backbone or its ':bidirectional' ablation)"
        )
    opts.validate()
    if opts.denoise_steps > MAX_K:  # was a hang: 2**31 - 1 forward passes
        raise RepbenchError(f"denoise_steps must be at most {MAX_K}, got {opts.denoise_steps} (each pass unmasks at "
                            f"least one of at most {MAX_K} slots: more passes would only repeat the forward)")
    ignored = [o for o in opts.non_default() if o not in COMMON_OPTIONS | spec.options]
    if ignored:
        raise RepbenchError(f"the {name} encoder does not use {', '.join(ignored)}; it reads "
                            f"{', '.join(sorted(COMMON_OPTIONS | spec.options))}")
    return spec
