"""The roofline counts (repbench.analysis.roofline) against independent references: torch's FlopCounterMode on
the real encoders, the models' own parameter lists, and the worked Qwen2.5-7B / H100 numbers of issue 21."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from repbench.analysis.hardware import gpu_by_key
from repbench.analysis.roofline import (
    Architecture,
    Forward,
    call_work,
    dtype_size,
    encoder_forwards,
    forward_work,
    ridge_tokens,
    roofline,
)
from repbench.backbones import load_backbone
from repbench.backbones.loading import architecture_config, build_config
from repbench.backbones.registry import SPECS, get_spec
from repbench.benchmarking.workloads import ordinary_token_ids, synthetic_text_ids
from repbench.encoders import EncodeOptions, encode_ids

# (backbone, encoder): the controlled pair (Qwen2 layout, q/k/v biases) and a Llama layout (no biases).
CASES = [("tiny-ar", "sequential"), ("tiny-diffusion", "parallel"), ("llada-8b-instruct:random:tiny", "parallel"),
         ("tiny-ar", "lasttoken"), ("tiny-diffusion", "meanpool")]
SHAPES = [(32, 1, 1), (128, 4, 1), (64, 16, 2), (200, 8, 1)]  # (text tokens L, K, batch)


def _counted(name: str, attn: str, encoder: str, length: int, k: int, batch: int) -> tuple[float, float, Architecture]:
    """FlopCounterMode's total over one real encode call, and the roofline's FLOPs for the same call."""
    bb = load_backbone(name, attn=attn)
    arch = Architecture.from_config(bb.model.config)
    ids = synthetic_text_ids(ordinary_token_ids(bb.tokenizer), batch, length, seed=1)
    k = k if encoder in ("sequential", "parallel") else 1
    opts = EncodeOptions(k=k, side="query", batch_size=batch, max_length=length + 512)
    # The first encode of a process checks the read-columns adapter against transformers' own forward once;
    # that one-off check is not part of the call the roofline describes, so it runs before counting.
    encode_ids(bb, ids[:1], encoder=encoder, options=opts)
    with FlopCounterMode(display=False) as counter:
        rep = encode_ids(bb, ids, encoder=encoder, options=opts)
    seq = int(rep.input_tokens.max())  # the padded width every row runs at (lasttoken re-tokenises the text)
    return float(counter.get_total_flops()), call_work(arch, encoder, seq, k, batch, "float32"), arch


@pytest.mark.parametrize("name,encoder", CASES)
@pytest.mark.parametrize("length,k,batch", SHAPES)
def test_flops_equal_flop_counter_with_eager_attention(name, encoder, length, k, batch):
    # Eager attention runs QK^T and PV as matmuls, so the counter sees every FLOP the model does.
    counted, work, _ = _counted(name, "eager", encoder, length, k, batch)
    assert counted > 0
    assert work.flops == pytest.approx(counted, rel=0.02)


@pytest.mark.parametrize("name,encoder", CASES[:3])
def test_flops_with_sdpa_differ_by_exactly_the_attention_the_cpu_counter_cannot_see(name, encoder):
    # torch 2.13's FlopCounterMode has no formula for the CPU sdpa kernel: it counts the projections only.
    counted, work, _ = _counted(name, "sdpa", encoder, 128, 4, 1)
    assert work.attention_flops > 0.05 * work.flops
    assert work.flops - work.attention_flops == pytest.approx(counted, rel=0.02)


def _meta_model(name: str):
    spec = get_spec(name)
    from repbench.backbones.loading import _model_class

    with torch.device("meta"):
        return _model_class(spec)(architecture_config(spec)), spec


@pytest.mark.parametrize("name", sorted(n for n in SPECS if SPECS[n].source != "gguf") + ["smollm2-135m-instruct"])
def test_weight_bytes_are_the_parameter_count_times_the_dtype_size(name):
    model, spec = _meta_model(name)
    params = dict(model.named_parameters())  # shared (tied) tensors appear once
    total = sum(p.numel() for p in params.values())
    arch = Architecture.from_config(architecture_config(spec), spec.architecture)
    assert arch.params == total
    embed = model.model.embed_tokens.weight
    tied = model.lm_head.weight is embed
    assert arch.tied_head == tied
    # A pass with the head reads every parameter but the untied input table (read only at its rows).
    read = total - (0 if tied else embed.numel())
    for dtype, size in (("float32", 4), ("bfloat16", 2), ("float16", 2)):
        assert dtype_size(dtype) == size == getattr(torch, dtype).itemsize
        w = forward_work(arch, Forward(1, 100, read=4, head_rows=4), size)
        assert w.weight_bytes == read * size
        no_head = forward_work(arch, Forward(1, 100), size)
        assert no_head.weight_bytes == (read - embed.numel()) * size
    if spec.scale == "full" and spec.published_params:  # and the count is the published size
        assert total / 1e9 == pytest.approx(spec.published_params, rel=0.02)


def test_kv_cache_reads_of_the_decode_steps_by_hand():
    arch = Architecture.from_config(build_config(get_spec("qwen2.5-7b-instruct")))
    seq, k = 188, 4
    works = [forward_work(arch, f, 2) for f in encoder_forwards("sequential", seq, k, 1)]
    per_token = 2 * 28 * 4 * 128 * 2  # K and V, 28 layers, 4 KV heads x 128, bf16 bytes
    assert works[0].kv_bytes == seq * per_token  # the prefill writes the cache
    for j, w in enumerate(works[1:]):  # each step reads the whole cache and appends one token
        assert w.kv_bytes == (seq + j) * per_token + per_token
    parallel = forward_work(arch, encoder_forwards("parallel", seq, k, 1)[0], 2)
    assert parallel.kv_bytes == 0 and parallel.activation_bytes > 0


# ---- the worked numbers of issue 21: Qwen2.5-7B in bf16 on one H100 SXM (989 TFLOP/s, 3.35 TB/s) -------------
PROMPT = 60  # prompt tokens around a text (the bench measures ~55-64 with the SmolLM2 tokenizer)


@pytest.fixture(scope="module")
def qwen():
    arch = Architecture.from_config(get_spec("qwen2.5-7b-instruct").config_dict(), "qwen2")
    return arch, gpu_by_key("h100-sxm").peaks("bfloat16")


def _floor_ms(arch, peaks, encoder: str, length: int, k: int) -> float:
    seq = length + PROMPT + (k + 3 if encoder == "parallel" else 0)
    return roofline(arch, encoder_forwards(encoder, seq, k, 1), "bfloat16", peaks).floor_s * 1e3


def test_h100_sxm_row_is_the_datasheet(qwen):
    _, peaks = qwen
    assert peaks.flops == pytest.approx(989e12, rel=0.001)
    assert peaks.bandwidth == pytest.approx(3.35e12, rel=1e-9)


def test_qwen_weights_and_the_parallel_floor_flat_in_k(qwen):
    arch, peaks = qwen
    assert arch.weight_params_read(True) * 2 / 1e9 == pytest.approx(14.1, abs=0.05)
    for k in (1, 4, 16):
        assert _floor_ms(arch, peaks, "parallel", 128, k) == pytest.approx(4.22, rel=0.02)
        assert roofline(arch, encoder_forwards("parallel", 128 + PROMPT + k + 3, k, 1), "bfloat16",
                        peaks).bound == "memory"


def test_qwen_sequential_floor_is_prefill_plus_decode_steps(qwen):
    arch, peaks = qwen
    for k, expected in ((1, 4.2), (4, 16.9), (16, 67.6)):
        assert _floor_ms(arch, peaks, "sequential", 128, k) == pytest.approx(expected, rel=0.02)


def test_qwen_memory_bound_below_about_320_tokens(qwen):
    arch, peaks = qwen
    assert ridge_tokens(arch, "bfloat16", peaks) == pytest.approx(320, rel=0.06)


def test_the_papers_headline_ratios_are_what_the_floor_predicts(qwen):
    arch, peaks = qwen
    at_416 = _floor_ms(arch, peaks, "sequential", 416, 4) / _floor_ms(arch, peaks, "parallel", 416, 4)
    assert at_416 == pytest.approx(3.0, rel=0.1)
    at_k20 = _floor_ms(arch, peaks, "sequential", 32, 20) / _floor_ms(arch, peaks, "parallel", 32, 20)
    assert 18.5 <= at_k20 <= 20.5


def test_the_papers_h100_readings_sit_3_4_to_3_7_times_above_the_floor(qwen):
    arch, peaks = qwen
    dream = Architecture.from_config(get_spec("dream-7b-instruct").config_dict(), "qwen2")
    readings = [(arch, "sequential", 1, 15.5), (arch, "sequential", 4, 57.9), (dream, "parallel", 1, 14.9)]
    for a, encoder, k, ms in readings:  # the paper's readings at 40 input tokens
        assert 3.3 <= ms / _floor_ms(a, peaks, encoder, 40, k) <= 3.8


def test_bad_shapes_and_unknown_names_are_refused():
    with pytest.raises(ValueError, match="positive"):
        encoder_forwards("parallel", 0, 4)
    with pytest.raises(ValueError, match="unknown encoder"):
        encoder_forwards("colbert", 10, 4)
    with pytest.raises(ValueError, match="qwen2 and llama"):
        Architecture.from_config({"model_type": "gpt2"})
