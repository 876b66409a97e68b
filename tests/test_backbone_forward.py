"""backbones.forward: the last layer computed at the read columns only, and the LM head as W @ h^T.

References: transformers' own full forward (`model.model(...)`, `F.linear` with the head weight) and
the from-spec forward in tests/reference_forward.py, on both architectures (Qwen2: tiny-ar /
tiny-diffusion; Llama: the tiny LLaDA config and the real SmolLM2), causal and bidirectional, with and
without left padding, on the sdpa and eager backends, and through a KV cache.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from reference_forward import reference_forward
from transformers import DynamicCache

from repbench.backbones import load_backbone
from repbench.backbones.forward import head_logits, hidden_at, rows_supported

TOL = {"atol": 2e-5, "rtol": 1e-5}
NAMES = ["tiny-ar", "tiny-diffusion", "llada-8b-instruct:random:tiny", "llama3-8b-instruct:random:tiny"]


@pytest.fixture(scope="module")
def models():
    cache: dict[tuple[str, str], object] = {}

    def get(name: str, attn: str = "sdpa"):
        if (name, attn) not in cache:
            cache[(name, attn)] = load_backbone(name, attn=attn)
        return cache[(name, attn)]
    return get


def _batch(vocab: int, length: int = 14, pad: int = 0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, min(vocab, 900), (2, length), generator=g)
    mask = torch.ones_like(ids)
    mask[1, :pad] = 0
    return ids, mask


def _full(bb, ids, mask):
    with torch.inference_mode():
        return bb.model.model(input_ids=ids, attention_mask=mask).last_hidden_state


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("pad", [0, 4])
@pytest.mark.parametrize("cols", [[9, 10, 11, 12], [13], [6]], ids=["block", "last", "inner"])
def test_hidden_at_equals_the_full_forward_at_the_read_columns(models, name, attn, pad, cols):
    bb = models(name, attn)
    assert rows_supported(bb.model.model)
    ids, mask = _batch(bb.vocab_size, pad=pad)
    c = torch.tensor(cols)
    with torch.inference_mode():
        got = hidden_at(bb.model, ids, mask, c)
    assert got.shape == (2, len(cols), bb.hidden_size)
    torch.testing.assert_close(got, _full(bb, ids, mask)[:, c], **TOL)
    causal = bb.spec.family != "diffusion"
    ref, _ = reference_forward(bb.model, ids, mask, causal=causal)
    torch.testing.assert_close(got, ref[:, c], atol=1e-4, rtol=1e-4)


def test_an_inner_column_of_a_causal_model_does_not_see_later_tokens(models):
    """The mask built for a causal query block: column 6 must not change when token 10 does."""
    bb = models("tiny-ar")
    ids, mask = _batch(bb.vocab_size)
    changed = ids.clone()
    changed[:, 10] = (changed[:, 10] + 1) % 900
    with torch.inference_mode():
        a = hidden_at(bb.model, ids, mask, torch.tensor([6]))
        b = hidden_at(bb.model, changed, mask, torch.tensor([6]))
        c = hidden_at(bb.model, changed, mask, torch.tensor([12]))
    assert torch.equal(a, b)
    assert not torch.allclose(c, hidden_at(bb.model, ids, mask, torch.tensor([12])), atol=1e-7)


def test_smollm2_real_weights(smollm2_pair):
    for bb in smollm2_pair:
        ids, mask = _batch(bb.vocab_size, length=40, pad=5)
        cols = torch.arange(30, 37)
        with torch.inference_mode():
            torch.testing.assert_close(hidden_at(bb.model, ids, mask, cols), _full(bb, ids, mask)[:, cols], **TOL)


@pytest.fixture(scope="module")
def smollm2_pair(smollm2):
    return [smollm2, load_backbone("smollm2-135m-instruct:bidirectional")]


@pytest.mark.parametrize("name", ["tiny-ar", "llama3-8b-instruct:random:tiny"])
@pytest.mark.parametrize("pad", [0, 3])
def test_prefill_and_decode_through_the_cache_equal_transformers_stepping(models, name, pad):
    bb = models(name)
    ids, mask = _batch(bb.vocab_size, pad=pad)
    ours, theirs = DynamicCache(config=bb.model.config), DynamicCache(config=bb.model.config)
    last = torch.tensor([ids.shape[1] - 1])
    with torch.inference_mode():
        h = hidden_at(bb.model, ids, mask, last, cache=ours)
        ref = bb.model.model(input_ids=ids, attention_mask=mask, past_key_values=theirs, use_cache=True)
        torch.testing.assert_close(h, ref.last_hidden_state[:, -1:], **TOL)
        for step in range(3):
            nxt = torch.tensor([[11 + step], [40 + step]])
            mask = torch.cat([mask, torch.ones(2, 1, dtype=mask.dtype)], 1)
            h = hidden_at(bb.model, nxt, mask, torch.tensor([0]), cache=ours)
            ref = bb.model.model(input_ids=nxt, attention_mask=mask, past_key_values=theirs, use_cache=True)
            torch.testing.assert_close(h, ref.last_hidden_state, **TOL)
    assert ours.get_seq_length() == theirs.get_seq_length() == ids.shape[1] + 3
    for a, b in zip(ours.layers, theirs.layers, strict=True):  # the same k/v projections of the same inputs
        assert torch.equal(a.keys, b.keys) and torch.equal(a.values, b.values)


@pytest.mark.parametrize("rows", [1, 2, 3, 16])
def test_head_logits_equal_the_linear_head(smollm2_pair, rows):
    bb = smollm2_pair[1]
    h = torch.randn(1, rows, bb.hidden_size, generator=torch.Generator().manual_seed(rows)) * 3
    with torch.inference_mode():
        got = head_logits(bb.model, h)
        ref = F.linear(h, bb.model.lm_head.weight)
    assert got.shape == ref.shape == (1, rows, bb.vocab_size)
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-5)
    assert torch.equal(got.argmax(-1), ref.argmax(-1))


def test_sliding_window_and_flash_layouts_are_not_taken_for_known_ones():
    from transformers import Qwen2Config, Qwen2Model

    kw = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
          "num_key_value_heads": 2, "vocab_size": 64}
    assert rows_supported(Qwen2Model(Qwen2Config(**kw)))
    sliding = Qwen2Config(**kw, use_sliding_window=True, sliding_window=8, max_window_layers=0)
    assert not rows_supported(Qwen2Model(sliding))
    flash = Qwen2Model(Qwen2Config(**kw))
    flash.config._attn_implementation = "flash_attention_2"
    assert not rows_supported(flash)


def test_unknown_layouts_take_the_full_forward(models, monkeypatch):
    """A model class the last-layer shortcut does not know is sliced from model.model."""
    bb = models("tiny-ar")
    monkeypatch.setattr("repbench.backbones.adapters.ADAPTERS", {})
    assert not rows_supported(bb.model.model)
    ids, mask = _batch(bb.vocab_size, pad=2)
    cols = torch.tensor([3, 8])
    with torch.inference_mode():
        assert torch.equal(hidden_at(bb.model, ids, mask, cols), _full(bb, ids, mask)[:, cols])


def test_forward_path_names_the_adapter_and_the_installed_transformers(models):
    import transformers

    from repbench.backbones.adapters import forward_path

    for name, cls in (("tiny-ar", "Qwen2Model"), ("llama3-8b-instruct:random:tiny", "LlamaModel")):
        path = forward_path(models(name).model.model)
        assert path.describe() == f"read-columns ({cls} adapter, transformers {transformers.__version__})"


def test_an_adapter_that_disagrees_with_the_installed_transformers_is_not_used(models, monkeypatch):
    """The adapter's probe (a tiny model of its architecture against transformers' own forward) catches
    an adapter whose computation is wrong, and one whose names the installed transformers lacks; either
    way the full forward runs, and the reason is what the bench records."""
    from dataclasses import dataclass

    from repbench.backbones import adapters

    @dataclass(frozen=True)
    class RotaryBackwards(adapters.Adapter):
        def functions(self):
            attend, rotate = super().functions()
            return attend, (lambda x: -rotate(x))

    bb = models("tiny-ar")
    ids, mask = _batch(bb.vocab_size, pad=2)
    cols = torch.tensor([3, 8])
    for broken, why in ((RotaryBackwards(*_fields("Qwen2Model")), "differs from transformers"),
                        (adapters.Adapter("Qwen2Model", "Qwen2Config", "Qwen2ForCausalLM",
                                          "transformers.models.bert.modeling_bert"), "lacks what the")):
        monkeypatch.setattr(adapters, "ADAPTERS", {"Qwen2Model": broken})
        path = adapters.forward_path(bb.model.model)
        assert path.adapter is None and why in path.reason, path.reason
        assert path.describe().startswith("full forward (")
        with torch.inference_mode():
            assert torch.equal(hidden_at(bb.model, ids, mask, cols), _full(bb, ids, mask)[:, cols])


def _fields(name: str) -> tuple[str, str, str, str]:
    from repbench.backbones.adapters import ADAPTERS

    a = ADAPTERS[name]
    return a.model_class, a.config_class, a.lm_class, a.modeling
