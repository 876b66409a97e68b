"""The local engine: one backbone worker in this process; exactly today's single-process path."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from repbench.encoders.options import EncodeOptions
from repbench.encoders.types import Representations
from repbench.engines.worker import BackboneInfo, BackboneRequest, ShardWorker


def shard_bounds(n_items: int, shard_size: int | None) -> list[tuple[int, int]]:
    """[lo, hi) of each shard; one shard of everything when `shard_size` is None."""
    if not shard_size or shard_size >= n_items:
        return [(0, n_items)]
    return [(lo, min(n_items, lo + shard_size)) for lo in range(0, n_items, shard_size)]


def join_parts(parts: list[Any], ids: Sequence[str], on_signals: Callable | None) -> Representations:
    """Shards' results in order -> one Representations; with `on_signals`, parts are (reps, signal arrays)
    and the arrays (one row per item) are joined and handed on once, as `encode` does."""
    if on_signals is None:
        return parts[0] if len(parts) == 1 else Representations.concat(parts)
    import numpy as np

    reps = [p[0] for p in parts]
    arrays = [p[1] for p in parts]
    if all(arrays):
        on_signals(list(ids), {name: np.concatenate([a[name] for a in arrays]) for name in arrays[0]})
    return reps[0] if len(reps) == 1 else Representations.concat(reps)


class LocalPool:
    in_process = True  # the real backbone is here: fit checks and the sweep's encoding run in this process

    def __init__(self, request: BackboneRequest):
        self.worker = ShardWorker(request)
        self.backbone = self.worker.backbone
        self.info: BackboneInfo = self.worker.info()
        self.stats: dict[str, int] = {}

    def rows_encoder(self, encoder: str, options: EncodeOptions) -> Callable[[list[str], list[str]], Representations]:
        return lambda ids, texts, progress=False: self.worker.encode_rows(ids, texts, encoder, options,
                                                                          progress=progress)

    def shard_runner(self, *_: Any, **__: Any) -> None:
        return None  # encode_sharded's own loop is the local engine

    def sweep_encode_fn(self, shard_size: int | None) -> Callable[..., Representations] | None:
        """The sweep's encode_fn: None (today's whole-side encode) or the same rows in shards, concatenated."""
        if not shard_size:
            return None

        def encode_fn(bb: Any, texts: Sequence[str], ids: Sequence[str], encoder: str, progress: bool = False,
                      on_signals: Callable | None = None, **fields: Any) -> Representations:
            opts = EncodeOptions.build(**fields)
            return join_parts([self.worker.encode_rows(list(ids[lo:hi]), list(texts[lo:hi]), encoder, opts,
                                                       signals=on_signals is not None)
                               for lo, hi in shard_bounds(len(ids), shard_size)], ids, on_signals)

        encode_fn.in_process = True  # the backbone is here: the sweep can check fits before it writes
        return encode_fn

    def cell_runner(self) -> None:
        return None  # the sweep scores its cells in-process

    def close(self) -> None:
        pass


class LocalEngine:
    name = "local"

    def workers(self, request: BackboneRequest) -> LocalPool:
        return LocalPool(request)


def from_args(args: Any) -> LocalEngine:
    return LocalEngine()

