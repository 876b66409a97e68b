"""Load a backbone on transformers' own classes: HF checkpoints, the packaged SmolLM2 GGUF, config-only.

Never downloads and never uses `trust_remote_code`. Diffusion backbones get `config.is_causal = False`
(transformers >= 5.2 then builds a bidirectional mask and passes is_causal=False to every attention
backend), so all backbones share one attention implementation.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from repbench.backbones.registry import BackboneSpec, get_spec
from repbench.backbones.smollm2 import (
    SMOLLM2_WHEEL,
    _smollm2_config,
    smollm2_dir,
    smollm2_tokenizer,
    tokenizer_available,
)
from repbench.errors import RepbenchError

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
          "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}


@dataclass
class Backbone:
    spec: BackboneSpec
    model: Any  # a transformers *ForCausalLM
    tokenizer: Any
    device: torch.device
    dtype: torch.dtype
    attn: str
    load_s: float
    source_path: str | None = None
    weights: dict[str, Any] | None = None  # random-weight backbones: how they were drawn (weight_draw)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def vocab_size(self) -> int:
        return int(self.model.lm_head.weight.shape[0])

    @property
    def mask_token_id(self) -> int | None:
        return self.spec.mask_token_id


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPES[dtype]
    except KeyError:
        raise RepbenchError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}") from None


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RepbenchError(f"device {device!r} requested but CUDA is not available")
    return torch.device(device)


# ---- configs and parameter counts ------------------------------------------------------------------
def _architecture(spec: BackboneSpec) -> tuple[Any, Any]:
    """(config class, model class) for the spec's architecture; an unknown one is an error, never Llama."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    classes = {"qwen2": (Qwen2Config, Qwen2ForCausalLM), "llama": (LlamaConfig, LlamaForCausalLM)}
    try:
        return classes[spec.architecture]
    except KeyError:
        raise RepbenchError(f"{spec.name}: unknown architecture {spec.architecture!r}; repbench builds "
                            f"{', '.join(classes)}") from None


def build_config(spec: BackboneSpec) -> Any:
    return _architecture(spec)[0](**spec.config_dict())


# LLaDA's OLMo-style config names -> LlamaConfig names (docs/backbones.md §2.2)
_LLADA_CONFIG = {
    "d_model": "hidden_size", "n_heads": "num_attention_heads", "n_kv_heads": "num_key_value_heads",
    "n_layers": "num_hidden_layers", "mlp_hidden_size": "intermediate_size", "rms_norm_eps": "rms_norm_eps",
    "rope_theta": "rope_theta", "max_sequence_length": "max_position_embeddings",
    "embedding_size": "vocab_size", "bos_token_id": "bos_token_id", "eos_token_id": "eos_token_id",
    "pad_token_id": "pad_token_id", "mask_token_id": "mask_token_id",
}
_REMOTE_CODE_KEYS = ("model_type", "auto_map", "architectures", "torch_dtype", "dtype", "transformers_version")


def native_config(spec: BackboneSpec, raw: dict[str, Any]) -> Any:
    """A Qwen2Config / LlamaConfig from a Dream- or LLaDA-format config.json (which name remote code)."""
    from transformers import LlamaConfig, Qwen2Config

    _architecture(spec)  # refuses an unknown architecture before guessing from key names
    if spec.architecture == "qwen2":
        return Qwen2Config(**{k: v for k, v in raw.items() if k not in _REMOTE_CODE_KEYS})
    if "d_model" not in raw:  # already Llama-shaped
        return LlamaConfig(**{k: v for k, v in raw.items() if k not in _REMOTE_CODE_KEYS})
    kwargs = {new: raw[old] for old, new in _LLADA_CONFIG.items() if raw.get(old) is not None}
    kwargs.setdefault("vocab_size", raw.get("vocab_size"))
    kwargs.setdefault("num_key_value_heads", kwargs["num_attention_heads"])
    kwargs["head_dim"] = kwargs["hidden_size"] // kwargs["num_attention_heads"]
    kwargs.update(tie_word_embeddings=bool(raw.get("weight_tying", False)), attention_bias=False,
                  mlp_bias=False, hidden_act="silu")
    return LlamaConfig(**kwargs)


def architecture_config(spec: BackboneSpec) -> Any:
    """The transformers config of a backbone's architecture, without its weights (SmolLM2: its cached copy)."""
    return _smollm2_config() if spec.source == "gguf" else build_config(spec)


def param_count(spec: BackboneSpec) -> int:
    """Parameters of the architecture, computed on the meta device (nothing is allocated)."""
    cfg = architecture_config(spec)
    cls = _model_class(spec)
    with torch.device("meta"):
        model = cls(cfg)
    return sum(p.numel() for p in model.parameters())


def _model_class(spec: BackboneSpec) -> Any:
    return _architecture(spec)[1]


# ---- availability of real checkpoints --------------------------------------------------------------
def _env_path_var(spec: BackboneSpec) -> str:
    return "REPBENCH_MODEL_PATH_" + "".join(c if c.isalnum() else "_" for c in spec.base_name).upper()


def checkpoint_path(spec: BackboneSpec, path: str | os.PathLike | None = None) -> Path:
    """A local checkpoint directory: explicit path, $REPBENCH_MODEL_PATH_<NAME>, or the local HF cache."""
    env_var = _env_path_var(spec)
    candidate = path or os.environ.get(env_var)
    if candidate:
        p = Path(candidate)
        if not (p / "config.json").is_file():
            raise RepbenchError(f"{spec.name}: {p} is not a checkpoint directory (no config.json)")
        return p
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(spec.hf_id, local_files_only=True))
    except Exception:  # not cached (or hub library refuses offline): say how to supply it
        raise RepbenchError(
            f"{spec.name}: weights for {spec.hf_id} are not in the local Hugging Face cache and repbench "
            f"never downloads. Pass a local directory (--model-path DIR, or load_backbone(..., path=DIR), "
            f"or set {env_var}=DIR), or use the config-only variant {spec.name}:random for latency."
        ) from None


def spec_row(spec: BackboneSpec) -> dict[str, Any]:
    """One registry entry as a flat row for `repbench backbones` (parameter count and availability included)."""
    try:
        params = param_count(spec)
    except RepbenchError:
        params = None
    return {
        "name": spec.name, "family": spec.family, "source": spec.source,
        "params": params, "published_params_b": spec.published_params,
        "available": is_available(spec), "hf_id": spec.hf_id, "mask_token_id": spec.mask_token_id,
        "logits_shifted": spec.logits_shifted, "scale": spec.scale, "description": spec.description,
        "note": spec.note,
    }


def is_available(spec: BackboneSpec) -> bool:
    if spec.source == "tiny":
        return True
    if spec.source == "gguf":
        return importlib.util.find_spec(SMOLLM2_WHEEL) is not None
    if spec.source == "config":  # config-only backbones tokenise with SmolLM2's tokenizer
        return tokenizer_available()
    try:
        checkpoint_path(spec)
        return True
    except RepbenchError:
        return False


# ---- random weights --------------------------------------------------------------------------------
def randomise_(model: torch.nn.Module, seed: int, on_device: bool = False) -> None:
    """Seeded re-randomisation of every parameter, biases and norm weights included.

    Default init zeroes biases and sets norms to 1, which would hide bias and norm bugs in tests.
    By default values are drawn from a CPU generator in float32 and cast on the CPU, one parameter at a
    time, then copied to wherever the parameter lives: the same seed gives the same weights on every
    device (device RNGs differ), and host memory holds one parameter at a time, not the model. With
    `on_device` each parameter is drawn where it lives, from a generator of that device seeded with
    `seed`: seconds for a 7B model on a GPU where the CPU draw takes minutes, and other values than the
    CPU draw (a seeded draw per device type). Parameters on `meta` hold no values and are left as they are.
    """
    params = [(name, p) for name, p in model.named_parameters() if p.device.type != "meta"]
    if not params:
        return
    where = params[0][1].device if on_device else torch.device("cpu")
    gen = torch.Generator(device=where).manual_seed(seed)
    with torch.no_grad():
        for name, p in params:
            value = torch.randn(p.shape, generator=gen, dtype=torch.float32, device=where)
            if "norm" in name:
                value.mul_(0.1).add_(1.0)
            elif name.endswith("bias"):
                value.mul_(0.02)
            else:
                value.div_(p.shape[-1] ** 0.5)
            p.copy_(value.to(p.dtype))
            del value


def weight_draw(spec: BackboneSpec, device: torch.device, seed: int) -> dict[str, Any] | None:
    """How a random-weight backbone's weights are drawn on `device` (None for real weights).

    Full-size `:random` backbones off the CPU are drawn on their device (a 7B draw on the CPU costs
    minutes of gpu-check's budget); tiny ones and CPU runs use the CPU generator, the same on every device.
    """
    if spec.source not in ("config", "tiny"):
        return None
    if device.type == "meta":
        return {"seed": seed, "generator": None, "note": "meta device: shapes only, no values"}
    if spec.scale == "full" and device.type != "cpu":
        return {"seed": seed, "generator": device.type,
                "note": f"drawn on {device.type} with a seeded {device.type} generator: other values than the CPU "
                        "draw of the same seed (latency does not depend on the values)"}
    return {"seed": seed, "generator": "cpu", "note": "CPU generator: the same weights on every device"}


def _init_random(spec: BackboneSpec, cfg: Any, dtype: torch.dtype, device: torch.device, attn: str,
                 seed: int, on_device: bool) -> Any:
    cls = _model_class(spec)
    cfg._attn_implementation = attn
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype if dtype.is_floating_point else torch.float32)
    try:
        with torch.device(device):
            model = cls(cfg)
    finally:
        torch.set_default_dtype(default)
    randomise_(model, seed, on_device=on_device)
    return model


# ---- the one entry point ---------------------------------------------------------------------------
ATTN_BACKENDS = ("sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention")


def load_backbone(
    name: str,
    device: str = "cpu",
    dtype: str | torch.dtype = "float32",
    attn: str = "sdpa",
    path: str | os.PathLike | None = None,
    seed: int = 0,
    scale: str | None = None,
) -> Backbone:
    """Load a registered backbone, ready for inference (eval mode, no grad needed).

    `scale` ("full" | "tiny") picks the size of a config-only backbone: `load_backbone("dream-7b-instruct:random",
    scale="tiny")` is the same as the name `dream-7b-instruct:random:tiny`.
    """
    if scale is not None:
        if scale not in ("full", "tiny"):
            raise RepbenchError(f"scale must be 'full' or 'tiny', got {scale!r}")
        base = name.removesuffix(":tiny")
        if not base.endswith(":random"):
            raise RepbenchError(f"scale applies to config-only backbones (name ending in ':random'), not {name!r}")
        name = base + (":tiny" if scale == "tiny" else "")
    spec = get_spec(name)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    if attn not in ATTN_BACKENDS:  # transformers would raise a bare ValueError deep inside from_pretrained
        raise RepbenchError(f"unknown attention backend {attn!r}; use one of {', '.join(ATTN_BACKENDS)}")
    t0 = time.perf_counter()
    source_path: str | None = None
    draw = None
    if spec.source == "hf":
        ckpt = checkpoint_path(spec, path)
        source_path = str(ckpt)
        model, tokenizer = _load_hf(spec, ckpt, dt, attn)
        model = model.to(dev)
    elif spec.source == "gguf":
        ckpt = smollm2_dir()
        source_path = str(ckpt)
        from transformers import AutoConfig, LlamaForCausalLM

        cfg = AutoConfig.from_pretrained(ckpt)
        _set_bidirectional(cfg, spec)
        model = LlamaForCausalLM.from_pretrained(ckpt, config=cfg, dtype=dt, attn_implementation=attn)
        model = model.to(dev)
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(ckpt)
    else:  # config-only and tiny: bundled architecture, seeded random weights
        cfg = build_config(spec)
        _set_bidirectional(cfg, spec)
        draw = weight_draw(spec, dev, seed)
        model = _init_random(spec, cfg, dt, dev, attn, seed, on_device=draw["generator"] not in ("cpu", None))
        if spec.source == "tiny":
            from repbench.backbones.tiny_tokenizer import tiny_tokenizer

            tokenizer = tiny_tokenizer()
        else:
            tokenizer = smollm2_tokenizer()
    model.eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return Backbone(spec=spec, model=model, tokenizer=tokenizer, device=dev, dtype=dt, attn=attn,
                    load_s=time.perf_counter() - t0, source_path=source_path, weights=draw)


def _set_bidirectional(cfg: Any, spec: BackboneSpec) -> None:
    cfg.is_causal = spec.family != "diffusion"
    if spec.mask_token_id is not None:
        cfg.mask_token_id = spec.mask_token_id


def _load_hf(spec: BackboneSpec, ckpt: Path, dtype: torch.dtype, attn: str) -> tuple[Any, Any]:
    import transformers
    from transformers import AutoConfig, AutoTokenizer

    cls = _model_class(spec)
    if spec.family == "diffusion":
        cfg = native_config(spec, json.loads((ckpt / "config.json").read_text()))
    else:
        cfg = AutoConfig.from_pretrained(ckpt, trust_remote_code=False)
    _set_bidirectional(cfg, spec)
    kwargs: dict[str, Any] = {"config": cfg, "dtype": dtype, "attn_implementation": attn}
    if spec.key_mapping:
        kwargs["key_mapping"] = spec.key_mapping
    model = cls.from_pretrained(ckpt, **kwargs)
    if spec.tokenizer_class:
        tokenizer = getattr(transformers, spec.tokenizer_class).from_pretrained(ckpt)
    else:
        # AutoTokenizer reads config.json for the model type unless handed a config. LLaDA's names remote
        # code (auto_map), and reading it asks "run the custom code? [y/N]" on a terminal, waiting 15 s
        # (issue 24): it gets the native config instead, and remote code stays refused without asking.
        tokenizer = AutoTokenizer.from_pretrained(ckpt, config=cfg, trust_remote_code=False)
    return model, tokenizer
