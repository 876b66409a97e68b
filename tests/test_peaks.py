"""The peaks probe (telemetry.peaks) and the vendor peak table (analysis.hardware)."""

from __future__ import annotations

import math

import pytest
import torch

from repbench.analysis.hardware import VENDOR_PEAKS, gpu_by_key, match_gpu
from repbench.errors import RepbenchError
from repbench.telemetry.peaks import bandwidth_buffer, matmul_operands, measure_peaks


def test_cpu_probe_measures_positive_plausible_peaks_quickly():
    p = measure_peaks("cpu", budget_s=0.3)
    assert p["device"] == "cpu" and p["threads"] == torch.get_num_threads()
    assert set(p["matmul_flops"]) >= {"float32", "bfloat16"}
    for rate in p["matmul_flops"].values():
        # any CPU this runs on: more than 100 MFLOP/s, less than 100 TFLOP/s
        assert math.isfinite(rate) and 1e8 < rate < 1e14
    assert 1e8 < p["read_bandwidth"] < 1e13  # 0.1 GB/s .. 10 TB/s
    assert p["bandwidth_buffer_bytes"] >= 256 * 2**20  # past any CPU cache
    assert p["seconds"] < 30


def test_probe_builds_its_tensors_on_the_device_it_measures():
    # meta tensors would fail loudly if a CPU tensor were mixed in: the CUDA path uses the same builders
    a, b = matmul_operands(64, torch.bfloat16, torch.device("meta"))
    assert a.device.type == b.device.type == "meta" and a.dtype == torch.bfloat16
    assert torch.mm(a, b).device.type == "meta"
    buf = bandwidth_buffer(4096, torch.device("meta"))
    assert buf.device.type == "meta" and buf.numel() == 1024 and buf.sum().device.type == "meta"


@pytest.mark.parametrize("name,key", [
    ("NVIDIA H100 80GB HBM3", "h100-sxm"), ("NVIDIA H100 PCIe", "h100-pcie"), ("NVIDIA H200", "h200"),
    ("NVIDIA A100-SXM4-40GB", "a100-40gb"), ("NVIDIA A100-PCIE-40GB", "a100-40gb"),
    ("NVIDIA A100-SXM4-80GB", "a100-80gb"), ("NVIDIA A100 80GB PCIe", "a100-80gb-pcie"), ("NVIDIA L40S", "l40s"),
    ("NVIDIA B200", "b200"), ("NVIDIA GeForce RTX 4090", "rtx-4090"),
])
def test_gpu_names_as_torch_reports_them_match_their_row(name, key):
    assert match_gpu(name).key == key


@pytest.mark.parametrize("name", ["NVIDIA H100 NVL", "NVIDIA H200 NVL", "Tesla T4", "NVIDIA L40", "", None])
def test_other_gpus_are_unknown_not_guessed(name):
    assert match_gpu(name) is None


def test_every_row_has_a_source_and_dense_peaks():
    # dense BF16 TFLOP/s: the datasheets' figures "with sparsity", halved (L40S prints its dense 362.05)
    dense_bf16 = {"h100-sxm": 1979 / 2, "h100-pcie": 1513 / 2, "h200": 1979 / 2, "a100-40gb": 312, "a100-80gb": 312,
                  "a100-80gb-pcie": 312, "l40s": 362.05, "b200": 4500 / 2, "rtx-4090": 330.4 / 2}
    bandwidth = {"h100-sxm": 3.35, "h100-pcie": 2.0, "h200": 4.8, "a100-40gb": 1.555, "a100-80gb": 2.039,
                 "a100-80gb-pcie": 1.935, "l40s": 0.864, "b200": 7.7, "rtx-4090": 1.008}
    assert {r.key for r in VENDOR_PEAKS} == set(dense_bf16)
    for row in VENDOR_PEAKS:
        assert "datasheet" in row.source or "whitepaper" in row.source or "specifications" in row.source
        assert "nvidia.com" in row.source or "whitepaper" in row.source
        assert row.flops["bfloat16"] / 1e12 == pytest.approx(dense_bf16[row.key], rel=0.001)
        assert row.bandwidth / 1e12 == pytest.approx(bandwidth[row.key], rel=1e-6)
        assert row.flops["float32"] < row.flops["bfloat16"]


def test_gpu_lookup_by_key_or_name_and_unknown_ones_refused():
    assert gpu_by_key("h100-sxm") is gpu_by_key("NVIDIA H100 80GB HBM3")
    with pytest.raises(RepbenchError, match="unknown GPU 'tpu-v5'.*h100-sxm"):
        gpu_by_key("tpu-v5")
    with pytest.raises(RepbenchError, match="no float64 peak"):
        gpu_by_key("h100-sxm").peaks("float64")


def test_a_failed_measurement_is_named_not_guessed(monkeypatch):
    import repbench.telemetry.peaks as peaks

    def oom(n, dtype, device):
        if dtype == torch.bfloat16:
            raise RuntimeError("CUDA out of memory. Tried to allocate 128.00 MiB")
        return torch.ones(n, n, dtype=dtype, device=device), torch.ones(n, n, dtype=dtype, device=device)

    monkeypatch.setattr(peaks, "matmul_operands", oom)
    p = peaks.measure_peaks("cpu", budget_s=0.1)
    assert "bfloat16" not in p["matmul_flops"] and p["matmul_flops"]["float32"] > 0
    assert any(e.startswith("bfloat16 512x512 matmul: CUDA out of memory") for e in p["errors"])
