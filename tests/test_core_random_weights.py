"""`:random` and tiny backbones: weights are a function of the seed alone, whatever the device or dtype,
except full-size `:random` weights on a GPU, drawn there with that device's seeded generator."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from repbench.backbones import load_backbone
from repbench.backbones.loading import _architecture
from repbench.backbones.registry import BackboneSpec
from repbench.errors import RepbenchError


def _reference_state(model: torch.nn.Module, seed: int, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The documented rule, written out: one CPU generator, float32 draws in parameter order, cast last."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    out = {}
    for name, p in model.named_parameters():
        noise = torch.randn(tuple(p.shape), generator=gen, dtype=torch.float32)
        if "norm" in name:
            value = 1.0 + 0.1 * noise
        elif name.endswith("bias"):
            value = 0.02 * noise
        else:
            value = noise / (p.shape[-1] ** 0.5)
        out[name] = value.to(dtype)
    return out


def _state(bb) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu() for n, p in bb.model.named_parameters()}


def test_same_seed_same_weights_other_seed_other_weights():
    a, b = _state(load_backbone("tiny-ar", seed=5)), _state(load_backbone("tiny-ar", seed=5))
    c = _state(load_backbone("tiny-ar", seed=6))
    assert a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)
    assert not any(torch.equal(a[n], c[n]) for n in a)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_weights_equal_an_explicit_cpu_generator(dtype):
    bb = load_backbone("dream-7b-instruct:random:tiny", dtype=dtype, seed=11)
    ref = _reference_state(bb.model, 11, dtype)
    got = _state(bb)
    assert got.keys() == ref.keys()
    for name in ref:
        assert got[name].dtype == dtype
        assert torch.equal(got[name], ref[name]), name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_weights_equal_cpu_weights():
    cpu = _state(load_backbone("llada-8b-instruct:random:tiny", device="cpu", dtype="bfloat16", seed=2))
    gpu = _state(load_backbone("llada-8b-instruct:random:tiny", device="cuda", dtype="bfloat16", seed=2))
    assert all(torch.equal(cpu[n], gpu[n]) for n in cpu)


def test_unknown_architecture_is_refused_not_built_as_llama():
    with pytest.raises(RepbenchError, match="unknown architecture 'mistral'"):
        BackboneSpec(name="m", family="ar", source="config", architecture="mistral", description="")
    with pytest.raises(RepbenchError, match="m: unknown architecture 'mistral'.*qwen2, llama"):
        _architecture(SimpleNamespace(name="m", architecture="mistral"))


def test_full_size_weights_are_drawn_on_their_gpu_and_tiny_ones_on_the_cpu():
    """The draw policy (bench JSON: cold_start.weights): a 7B draw on the CPU costs minutes of gpu-check's
    budget, so full-size `:random` weights are drawn on their device; tiny ones stay device-independent."""
    from repbench.backbones.loading import weight_draw
    from repbench.backbones.registry import get_spec

    cuda, cpu, meta = torch.device("cuda:0"), torch.device("cpu"), torch.device("meta")
    full, tiny = get_spec("dream-7b-instruct:random"), get_spec("dream-7b-instruct:random:tiny")
    assert weight_draw(full, cuda, 3)["generator"] == "cuda" and "other values than the CPU draw" in weight_draw(full, cuda, 3)["note"]
    assert weight_draw(full, cpu, 3)["generator"] == "cpu" and weight_draw(tiny, cuda, 3)["generator"] == "cpu"
    assert weight_draw(get_spec("tiny-ar"), cuda, 3)["generator"] == "cpu"
    assert weight_draw(full, meta, 3)["generator"] is None
    assert weight_draw(get_spec("qwen2.5-7b-instruct"), cuda, 3) is None  # real weights are not drawn


def test_on_device_draw_is_the_devices_seeded_generator_in_parameter_order():
    """randomise_(on_device=True), written out independently: one generator of the parameters' device,
    float32 draws in parameter order, the same transforms, cast last (run here on the CPU)."""
    from repbench.backbones.loading import randomise_

    bb = load_backbone("llama3-8b-instruct:random:tiny", dtype="bfloat16")
    randomise_(bb.model, 21, on_device=True)
    gen = torch.Generator(device="cpu").manual_seed(21)
    for name, p in bb.model.named_parameters():
        noise = torch.randn(tuple(p.shape), generator=gen, dtype=torch.float32, device=p.device)
        ref = 1.0 + 0.1 * noise if "norm" in name else (0.02 * noise if name.endswith("bias")
                                                         else noise / (p.shape[-1] ** 0.5))
        assert torch.equal(p.detach(), ref.to(torch.bfloat16)), name


def test_meta_parameters_are_left_without_a_draw():
    bb = load_backbone("qwen2.5-7b-instruct:random", device="meta", dtype="bfloat16")
    assert bb.weights["generator"] is None and next(bb.model.parameters()).device.type == "meta"
    assert sum(p.numel() for p in bb.model.parameters()) > 7e9  # the full architecture, nothing allocated
