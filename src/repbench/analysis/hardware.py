"""Vendor peaks of common GPUs: dense matmul FLOP/s per dtype and memory bandwidth, each row with its source.

Tensor-core figures are the dense ones (NVIDIA's datasheets print "with sparsity" numbers, twice these),
at FP32 accumulate (what torch's bf16/fp16 matmuls use). `float32` is the non-tensor FP32 rate: torch
runs float32 matmuls without TF32 unless `torch.backends.cuda.matmul.allow_tf32` is set, which repbench
never does. Bandwidth is the memory interface's peak in bytes/s (1 TB/s = 1e12 B/s).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from repbench.analysis.roofline import Peaks
from repbench.errors import RepbenchError

T = 1e12


@dataclass(frozen=True)
class GpuPeaks:
    key: str
    name: str
    pattern: str  # regex on torch.cuda.get_device_name / NVML's name, case-insensitive
    flops: dict[str, float]  # dtype -> dense FLOP/s
    bandwidth: float  # bytes/s
    source: str

    def peaks(self, dtype: str) -> Peaks:
        name = str(dtype).removeprefix("torch.")
        if name not in self.flops:
            raise RepbenchError(f"no {name} peak for {self.name} in the vendor table (has: {', '.join(self.flops)})")
        return Peaks(self.flops[name], self.bandwidth, f"vendor: {self.name} ({self.source})")


def _half(bf16: float, fp32: float) -> dict[str, float]:
    return {"bfloat16": bf16 * T, "float16": bf16 * T, "float32": fp32 * T}


_H100 = "NVIDIA H100 Tensor Core GPU datasheet, https://www.nvidia.com/en-us/data-center/h100/"
_A100 = "NVIDIA A100 Tensor Core GPU datasheet, https://www.nvidia.com/en-us/data-center/a100/"
VENDOR_PEAKS: tuple[GpuPeaks, ...] = (
    GpuPeaks("h100-sxm", "H100 SXM", r"h100(?!.*(pcie|nvl)).*(sxm|hbm3)|h100 sxm", _half(989.4, 66.9), 3.35 * T,
             _H100 + ": BF16 1,979 TFLOPS with sparsity (dense 989.4, Hopper whitepaper table), FP32 67 TFLOPS, "
             "3.35 TB/s HBM3"),
    GpuPeaks("h100-pcie", "H100 PCIe", r"h100.*pcie", _half(756.5, 51.2), 2.0 * T,
             _H100 + ": BF16 1,513 TFLOPS with sparsity (dense 756.5), FP32 51 TFLOPS, 2 TB/s HBM2e"),
    GpuPeaks("h200", "H200 SXM", r"h200(?!.*nvl)", _half(989.4, 66.9), 4.8 * T,
             "NVIDIA H200 Tensor Core GPU datasheet, https://www.nvidia.com/en-us/data-center/h200/: BF16 1,979 "
             "TFLOPS with sparsity (dense 989.4), FP32 67 TFLOPS, 4.8 TB/s HBM3e"),
    GpuPeaks("a100-40gb", "A100 40GB", r"a100.*40\s*gb", _half(312.0, 19.5), 1.555 * T,
             _A100 + ": BF16 312 TFLOPS dense (624 with sparsity), FP32 19.5 TFLOPS, 1,555 GB/s HBM2"),
    GpuPeaks("a100-80gb", "A100 80GB SXM", r"a100.*(sxm.*80\s*gb|80\s*gb.*sxm)|a100-sxm4-80gb", _half(312.0, 19.5),
             2.039 * T, _A100 + ": BF16 312 TFLOPS dense, FP32 19.5 TFLOPS, 2,039 GB/s HBM2e (SXM)"),
    GpuPeaks("a100-80gb-pcie", "A100 80GB PCIe", r"a100.*80\s*gb.*pcie|a100.*pcie.*80\s*gb", _half(312.0, 19.5),
             1.935 * T, _A100 + ": BF16 312 TFLOPS dense, FP32 19.5 TFLOPS, 1,935 GB/s HBM2e (PCIe)"),
    GpuPeaks("l40s", "L40S", r"l40s", _half(362.05, 91.6), 0.864 * T,
             "NVIDIA L40S GPU datasheet, https://www.nvidia.com/en-us/data-center/l40s/: BF16 362.05 TFLOPS dense "
             "(733 with sparsity), FP32 91.6 TFLOPS, 864 GB/s GDDR6"),
    GpuPeaks("b200", "B200 (HGX)", r"\bb200", _half(2250.0, 75.0), 7.7 * T,
             "NVIDIA HGX B200 specifications, https://www.nvidia.com/en-us/data-center/hgx/: per GPU FP16/BF16 "
             "4.5 PFLOPS with sparsity (dense 2.25), FP32 75 TFLOPS, 7.7 TB/s HBM3e"),
    GpuPeaks("rtx-4090", "GeForce RTX 4090", r"rtx 4090", _half(165.2, 82.6), 1.008 * T,
             "NVIDIA Ada Lovelace GPU architecture whitepaper (v2.1), RTX 4090 column: BF16/FP16 tensor with FP32 "
             "accumulate 165.2 TFLOPS dense (330.4 with sparsity), FP32 82.6 TFLOPS, 1,008 GB/s GDDR6X"),
)


def match_gpu(device_name: str | None) -> GpuPeaks | None:
    """The vendor row of a GPU by its reported name (e.g. "NVIDIA H100 80GB HBM3"), or None when unknown."""
    if not device_name:
        return None
    for row in VENDOR_PEAKS:
        if re.search(row.pattern, device_name, flags=re.IGNORECASE):
            return row
    return None


def gpu_by_key(key: str) -> GpuPeaks:
    """A vendor row by its key (h100-sxm, ...) or by a device name that matches one."""
    for row in VENDOR_PEAKS:
        if key.lower() == row.key:
            return row
    row = match_gpu(key)
    if row is None:
        raise RepbenchError(f"unknown GPU {key!r}; the vendor table has {', '.join(r.key for r in VENDOR_PEAKS)} "
                            "(or give --peak-flops and --peak-bandwidth)")
    return row
