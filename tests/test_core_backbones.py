"""Backbones: native forwards against an independent reference, checkpoint formats, param counts."""

from __future__ import annotations

import json

import pytest
import torch
from reference_forward import reference_forward
from safetensors.torch import save_file

from repbench.backbones import get_spec, load_backbone, param_count
from repbench.backbones.loading import randomise_, smollm2_tokenizer
from repbench.backbones.registry import LLADA_KEY_MAPPING
from repbench.errors import RepbenchError

ATOL = 1e-5


@pytest.fixture(scope="module")
def tiny_pair():
    return load_backbone("tiny-ar"), load_backbone("tiny-diffusion")


def _ids(n: int = 2, length: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.randint(4, 900, (n, length), generator=torch.Generator().manual_seed(seed))


def _native(bb, ids, mask=None):
    with torch.inference_mode():
        out = bb.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    return out.hidden_states[-1], out.logits


def test_tiny_pair_shares_weights(tiny_pair):
    ar, diff = tiny_pair
    for (n1, p1), (n2, p2) in zip(ar.model.named_parameters(), diff.model.named_parameters(), strict=True):
        assert n1 == n2 and torch.equal(p1, p2)


@pytest.mark.parametrize("which,causal", [(0, True), (1, False)])
def test_tiny_forward_matches_reference(tiny_pair, which, causal):
    bb = tiny_pair[which]
    ids = _ids()
    h, logits = _native(bb, ids)
    h_ref, logits_ref = reference_forward(bb.model, ids, causal=causal)
    torch.testing.assert_close(h, h_ref, atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(logits, logits_ref, atol=ATOL, rtol=1e-4)


@pytest.mark.parametrize("which,causal", [(0, True), (1, False)])
def test_tiny_forward_with_left_padding_matches_reference(tiny_pair, which, causal):
    bb = tiny_pair[which]
    ids = _ids()
    mask = torch.ones_like(ids)
    mask[1, :4] = 0
    h, _ = _native(bb, ids, mask)
    h_ref, _ = reference_forward(bb.model, ids, mask, causal=causal)
    real = mask.bool()
    torch.testing.assert_close(h[real], h_ref[real], atol=ATOL, rtol=1e-4)


def test_bidirectionality_probe(tiny_pair):
    """Changing the last token changes position 0 only with bidirectional attention."""
    ids = _ids(1)
    changed = ids.clone()
    changed[0, -1] = (changed[0, -1] + 1) % 900
    for bb, should_change in ((tiny_pair[0], False), (tiny_pair[1], True)):
        h0, _ = _native(bb, ids)
        h1, _ = _native(bb, changed)
        assert (not torch.allclose(h0[0, 0], h1[0, 0], atol=1e-7)) == should_change, bb.spec.name


@pytest.mark.parametrize("name,published", [
    ("dream-7b-instruct:random", 7.62e9), ("qwen2.5-7b-instruct:random", 7.62e9),
    ("llada-8b-instruct:random", 8.02e9), ("llama3-8b-instruct:random", 8.03e9),
])
def test_config_only_param_counts_within_1_percent(name, published):
    assert abs(param_count(get_spec(name)) - published) / published < 0.01


def test_config_only_tiny_keeps_vocab_and_mask_id():
    bb = load_backbone("llada-8b-instruct:random", scale="tiny")
    assert bb.spec.name == "llada-8b-instruct:random:tiny"
    assert bb.vocab_size == 126464 and bb.mask_token_id == 126336
    assert bb.model.config.num_key_value_heads == bb.model.config.num_attention_heads  # MHA kept
    assert bb.model.config.is_causal is False


def test_scale_applies_only_to_config_only_backbones():
    with pytest.raises(RepbenchError, match="config-only"):
        load_backbone("tiny-ar", scale="tiny")
    with pytest.raises(RepbenchError, match="'full' or 'tiny'"):
        load_backbone("dream-7b-instruct:random", scale="small")


def test_unknown_backbone_lists_known_ones():
    with pytest.raises(RepbenchError, match="unknown backbone 'nope'; known backbones:") as info:
        get_spec("nope")
    assert "tiny-ar" in str(info.value) and "dream-7b-instruct:random" in str(info.value)


def test_missing_real_checkpoint_says_how_to_pass_a_path(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(RepbenchError, match=r"Dream-org/Dream-v0-Instruct-7B.*--model-path.*REPBENCH_MODEL_PATH_DREAM_7B_INSTRUCT"):
        load_backbone("dream-7b-instruct")


# ---- tiny checkpoints in Dream's and LLaDA's on-disk formats ---------------------------------------
def _write_tokenizer(path, tokenizer_class):
    tok = smollm2_tokenizer()
    tok.save_pretrained(path)
    cfg_path = path / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["tokenizer_class"] = tokenizer_class
    cfg_path.write_text(json.dumps(cfg))


def test_dream_format_checkpoint_loads_natively(tmp_path):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    raw = {
        "model_type": "Dream", "architectures": ["DreamModel"],
        "auto_map": {"AutoConfig": "configuration_dream.DreamConfig", "AutoModel": "modeling_dream.DreamModel"},
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "max_position_embeddings": 256, "rms_norm_eps": 1e-6,
        "rope_theta": 1e6, "vocab_size": 49152, "tie_word_embeddings": False, "hidden_act": "silu",
        "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2, "mask_token_id": 151666,
        "torch_dtype": "float32",
    }
    src = Qwen2ForCausalLM(Qwen2Config(**{k: v for k, v in raw.items()
                                         if k not in ("model_type", "architectures", "auto_map", "torch_dtype")}))
    randomise_(src, seed=3)
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(tmp_path / "model.safetensors"),
              metadata={"format": "pt"})
    (tmp_path / "config.json").write_text(json.dumps(raw))
    _write_tokenizer(tmp_path, "Qwen2Tokenizer")
    bb = load_backbone("dream-7b-instruct", path=tmp_path)
    for name, p in src.state_dict().items():
        assert torch.equal(bb.model.state_dict()[name], p), name
    ids = _ids()
    h, logits = _native(bb, ids)
    h_ref, logits_ref = reference_forward(src, ids, causal=False)
    torch.testing.assert_close(logits, logits_ref, atol=ATOL, rtol=1e-4)


def test_llada_format_checkpoint_loads_natively(tmp_path):
    import re

    from transformers import LlamaConfig, LlamaForCausalLM

    ref = LlamaForCausalLM(LlamaConfig(
        hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
        max_position_embeddings=256, rms_norm_eps=1e-5, rope_theta=5e5, vocab_size=49152,
        tie_word_embeddings=False, attention_bias=False, mlp_bias=False,
    ))
    randomise_(ref, seed=4)
    # inverse of the LLaDA -> Llama mapping, applied to every tensor name
    inverse = {}
    for name, t in ref.state_dict().items():
        matches = []
        for pat, repl in LLADA_KEY_MAPPING.items():
            # build the LLaDA name by trying each rule's inverse on a template
            m = re.match(r"^model\.layers\.(\d+)\.(.*)$", name)
            target = repl.replace(r"\1", m.group(1)) if m else repl
            if name.startswith(target):
                llada = pat.strip("^").replace("\\.", ".").replace(r"(\d+)", m.group(1) if m else "")
                matches.append(llada + name[len(target):])
        assert len(matches) == 1, (name, matches)
        inverse[matches[0]] = t.contiguous()
    assert any(k.startswith("model.transformer.blocks.0.attn_out") for k in inverse)
    save_file(inverse, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "llada", "architectures": ["LLaDAModelLM"], "auto_map": {"AutoConfig": "x.LLaDAConfig"},
        "d_model": 64, "n_heads": 4, "n_kv_heads": 4, "n_layers": 2, "mlp_hidden_size": 96,
        "rms_norm_eps": 1e-5, "rope_theta": 5e5, "max_sequence_length": 256, "vocab_size": 49152,
        "embedding_size": 49152, "weight_tying": False, "eos_token_id": 2, "pad_token_id": 2,
        "mask_token_id": 126336,
    }))
    _write_tokenizer(tmp_path, "PreTrainedTokenizerFast")
    bb = load_backbone("llada-8b-instruct", path=tmp_path)
    for name, p in ref.state_dict().items():
        assert torch.equal(bb.model.state_dict()[name], p), name
    ids = _ids()
    _, logits = _native(bb, ids)
    _, logits_ref = reference_forward(ref, ids, causal=False)
    torch.testing.assert_close(logits, logits_ref, atol=ATOL, rtol=1e-4)


def test_smollm2_loads_from_cached_copy_quickly():
    bb = load_backbone("smollm2-135m-instruct")  # first call may build the cache
    bb = load_backbone("smollm2-135m-instruct")
    assert bb.spec.family == "ar" and bb.hidden_size == 576 and bb.vocab_size == 49152
    assert bb.load_s < 5.0  # generous: the issue asks < 1 s; CI machines are shared
    ablation = load_backbone("smollm2-135m-instruct:bidirectional")
    assert ablation.model.config.is_causal is False
    assert "NOT a trained diffusion LM" in ablation.spec.note
