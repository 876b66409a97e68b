"""torch's `meta` device made as strict as a GPU, for device-placement tests on a CPU-only machine.

Tensors on `meta` have shapes and no values, so GPU code runs on them without a GPU. Two gaps are filled:
- meta alone lets some ops take CPU operands a GPU refuses (gather or isin with a CPU index, for
  instance), so `OffDevice` refuses any op that mixes a meta tensor with a CPU tensor of one or more
  dimensions, as CUDA does. It allows what CUDA allows: explicit copies, 0-dim CPU scalars, and CPU
  indices of `t[idx]` / `t[idx] = v`.
- meta cannot give values back, so the host copies (`.cpu()`, `.to("cpu")`, `.tolist()`) return zeros
  of the right shape and dtype, and host reads (`bool()`, `.item()`, `int()`) return 0. Each one is
  recorded with the first frame outside torch that asked for it, so a test can say where the code
  under test waits for the device, and how often.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

aten = torch.ops.aten
_COPIES = {aten._to_copy.default, aten.to.dtype_layout, aten.to.device}
_TRANSFERS = _COPIES | {aten.copy_.default}
_INDEXING = {aten.index.Tensor, aten.index_put_.default, aten.index_put.default, aten._index_put_impl_.default}
_READS = {aten._local_scalar_dense.default, aten.is_nonzero.default, aten.item.default}
_TORCH = str(Path(torch.__file__).parent)
_HERE = str(Path(__file__))


def _target(args: tuple, kwargs: dict) -> str | None:
    """The device type a copy op writes to (None: unchanged)."""
    dev = kwargs.get("device") or next((a for a in args[1:] if isinstance(a, torch.device | str)), None)
    if isinstance(dev, str) and dev not in ("cpu", "meta", "cuda") and ":" not in dev:
        dev = None
    return torch.device(dev).type if dev is not None else None


def _asker() -> str:
    """`path:function` of the innermost frame outside torch and this module (who asked for the value)."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if not name.startswith(_TORCH) and name != _HERE and "/contextlib.py" not in name:
            parts = Path(name).parts
            short = "/".join(parts[parts.index("site-packages") + 1:] if "site-packages" in parts
                             else parts[-3:])
            return f"{short}:{frame.f_code.co_name}"
        frame = frame.f_back
    return "?"


@dataclass
class OffDevice(TorchDispatchMode):
    """`with OffDevice() as dev:` runs code whose tensors live on `meta` as if `meta` were a GPU."""

    copies: Counter = field(default_factory=Counter)  # host copies of meta tensors, by asker
    reads: Counter = field(default_factory=Counter)  # host reads of meta values, by asker

    def __post_init__(self) -> None:
        super().__init__()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        on_meta = any(t.device.type == "meta" for t in tensors)
        if on_meta and func in _READS:
            self.reads[_asker()] += 1
            return False if tensors[0].dtype == torch.bool or func is aten.is_nonzero.default else 0
        if func in _COPIES and tensors[0].device.type == "meta" and _target(args, kwargs) == "cpu":
            self.copies[_asker()] += 1
            return torch.zeros(tensors[0].shape, dtype=kwargs.get("dtype") or tensors[0].dtype)
        if on_meta and func not in _TRANSFERS:
            operands = tensors
            if func in _INDEXING:  # CUDA moves CPU indices itself; the indexed tensor and values must match
                indices = {id(i) for i in tree_flatten(args[1])[0] if isinstance(i, torch.Tensor)}
                operands = [t for t in tensors if id(t) not in indices]
            cpu = [tuple(t.shape) for t in operands if t.device.type == "cpu" and t.dim() > 0]
            if cpu:
                raise RuntimeError(f"{func}: CPU tensor(s) of shape {cpu} mixed with device tensors "
                                   f"(asked by {_asker()})")
        return func(*args, **kwargs)

    def total(self) -> int:
        return sum(self.copies.values()) + sum(self.reads.values())
