"""Search inputs moved to the scoring device; a streamed chunk's copy overlapping the previous one's scoring.

Only what the device scorers read moves: the dense slot vectors and their validity (single_dense and
MaxSim run where these are), and a chunk's tie keys (the top-k runs where the scores are). The sparse
rows stay on the host, where scipy's products run.

On CUDA the copy of chunk i+1 is issued before chunk i is handed to the scorer: the rows are pinned
(page-locked, so the copy can be asynchronous), copied with `non_blocking=True` on a side stream, and an
event marks the copy's end. The scoring stream waits for that event only when it needs the chunk, so
while it scores chunk i the copy engine moves chunk i+1. Memory allocated on the side stream and used
on the scoring stream is recorded there (`record_stream`), so the caching allocator does not hand it
out again while the scoring still reads it. Other devices get a plain synchronous `.to(device)`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any, Protocol, TypeVar

import torch

from repbench.encoders.types import Representations

DEVICE_FIELDS = ("dense", "valid")  # what the scorers read on the device; the sparse rows stay on the host

T = TypeVar("T")
Tensors = tuple[torch.Tensor, ...]


def to_device(reps: Representations, device: torch.device | str | None) -> Representations:
    """`reps` with its dense rows and validity on `device` (itself when already there, or device None)."""
    if device is None or all(getattr(reps, f).device == torch.device(device) for f in DEVICE_FIELDS):
        return reps
    return dataclasses.replace(reps, **{f: getattr(reps, f).to(device) for f in DEVICE_FIELDS})


class Copier(Protocol):
    """Moves a tuple of host tensors to a device in two steps: `start` issues the copy, `finish` returns
    the device tensors, ready for the scoring stream to use."""

    def start(self, tensors: Tensors) -> Any: ...

    def finish(self, pending: Any) -> Tensors: ...


class PlainCopy:
    """Synchronous `.to(device)` (the CPU, `meta`, or a device without streams)."""

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)

    def start(self, tensors: Tensors) -> Tensors:
        return tuple(t.to(self.device) for t in tensors)

    def finish(self, pending: Tensors) -> Tensors:
        return pending


class CudaCopy:
    """Asynchronous host->device copies on a side stream (see the module docstring). `cuda` is the
    `torch.cuda` namespace (Stream, Event, current_stream, stream), replaceable in tests."""

    def __init__(self, device: torch.device | str, cuda: Any = torch.cuda):
        self.device = torch.device(device)
        self.cuda = cuda
        self.side = cuda.Stream(self.device)

    def start(self, tensors: Tensors) -> tuple[Tensors, Any]:
        pinned = [t if t.is_pinned() else t.pin_memory() for t in tensors]
        with self.cuda.stream(self.side):
            moved = tuple(p.to(self.device, non_blocking=True) for p in pinned)
            done = self.cuda.Event()
            done.record(self.side)
        return moved, done

    def finish(self, pending: tuple[Tensors, Any]) -> Tensors:
        moved, done = pending
        scoring = self.cuda.current_stream(self.device)
        scoring.wait_event(done)  # the scoring stream, not the host, waits for the copy
        for t in moved:
            t.record_stream(scoring)
        return moved


def copier_for(device: torch.device | str) -> Copier:
    """CudaCopy on a CUDA device, PlainCopy elsewhere."""
    device = torch.device(device)
    return CudaCopy(device) if device.type == "cuda" else PlainCopy(device)


def prefetched(items: Iterable[T], split: Any, join: Any, copier: Copier) -> Iterator[T]:
    """`items` moved by `copier`, one ahead: item i+1's copy is started before item i is yielded, so it
    runs while the caller scores item i. `split(item)` gives the tensors to move, `join(item, moved)`
    the item rebuilt around them. A caller that drops its item before asking for the next keeps at most
    two on the device (the one it scores, the one in flight)."""
    pending: tuple[T, Any] | None = None
    for item in items:
        started = (item, copier.start(split(item)))
        if pending is not None:
            yield join(pending[0], copier.finish(pending[1]))
        pending = started
    if pending is not None:
        yield join(pending[0], copier.finish(pending[1]))
