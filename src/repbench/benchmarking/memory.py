"""A benchmark cell's own peak memory, separated from what other cells left resident in the process."""

from __future__ import annotations

from typing import Any

import torch

from repbench.benchmarking.cell_results import CellMemory
from repbench.benchmarking.results import Memory


def cell_memory(model: Any, memory: Memory, device: torch.device) -> CellMemory:
    """This cell's own peak memory: its model's weights plus what the memory pass added on top.

    The process-wide peak (peak RSS; torch max allocated) also holds every other backbone loaded earlier
    in the session, so read alone it credits a tiny model with a large one's memory. The transient part is
    the growth over the pass (VmHWM or torch peak, reset just before it, minus what was resident when it
    started); memory an allocator kept from earlier cells is reused, not counted again. A cell whose
    growth cannot be read is marked not isolated (None), never given another cell's peak.
    """
    weights = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    if device.type == "cuda":
        peak, before = memory.torch_peak_allocated_bytes, torch.cuda.memory_allocated(device)
        method = "weights + torch peak allocated over the pass above what was allocated after it"
    else:
        peak, before = memory.peak_rss_bytes, memory.rss_before_bytes
        method = f"weights + peak RSS growth over the pass ({memory.rss_method})"
    isolated = peak is not None and before is not None
    return CellMemory(model_weights_bytes=int(weights), cell_peak_memory_isolated=isolated,
                      cell_peak_memory_bytes=int(weights + max(0, peak - before)) if isolated else None,
                      cell_peak_memory_method=method if isolated else "not isolated: no per-pass reading")
