"""Copies of an encoder's device results to the host, with one wait for the device per batch."""

from __future__ import annotations

import torch


def to_host(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """Host copies of `tensors`: every device-to-host copy is queued first, then each device is waited
    for once, so a batch's results cost one synchronisation, not one per tensor or per row."""
    if all(t.device.type == "cpu" for t in tensors):
        return list(tensors)
    out = [t.to("cpu", non_blocking=True) for t in tensors]
    for dev in {t.device for t in tensors if t.device.type == "cuda"}:
        torch.cuda.current_stream(dev).synchronize()
    return out
