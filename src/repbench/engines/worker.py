"""One backbone worker: loads the backbone once, then encodes rows or whole shards, and scores cells.

The local engine runs one in this process; the Ray engine runs one per actor (this class wrapped by
`ray.remote`), so both engines execute the same code on the same inputs: that is what makes their
outputs byte-identical.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repbench.encoders.options import EncodeOptions


@dataclass(frozen=True)
class BackboneRequest:
    """What to load, as given on the command line; resolved ("auto" device, default dtype) on the worker."""

    name: str
    device: str = "auto"
    dtype: str | None = None
    attn: str = "sdpa"
    path: str | None = None

    def load(self):
        from repbench.backbones import load_backbone
        from repbench.backbones.loading import resolve_device

        device = str(resolve_device(self.device))
        dtype = self.dtype if self.dtype not in (None, "auto") else ("bfloat16" if device.startswith("cuda") else "float32")
        return load_backbone(self.name, device=device, dtype=dtype, attn=self.attn, path=self.path)


@dataclass(frozen=True)
class BackboneInfo:
    """What the driver needs of a loaded backbone without loading it (the sweep reads these attributes)."""

    spec: Any  # repbench.backbones.BackboneSpec
    vocab_size: int
    hidden_size: int
    dtype: str
    device: str
    attn: str
    # The driver's checks (an encoder that needs a mask token, e.g. the parallel encoder of a diffusion
    # backbone) read it here: without it every diffusion backbone was refused on Ray before starting.
    mask_token_id: int | None = None

    @classmethod
    def of(cls, bb: Any) -> BackboneInfo:
        mask = getattr(bb, "mask_token_id", None)
        return cls(spec=bb.spec, vocab_size=int(bb.vocab_size), hidden_size=int(bb.hidden_size),
                   dtype=str(bb.dtype).removeprefix("torch."), device=str(bb.device).split(":")[0], attn=bb.attn,
                   mask_token_id=None if mask is None else int(mask))

    @property
    def family(self) -> str:
        return str(self.spec.family)

    def identity(self) -> tuple:
        """Everything that changes the encoded bits; workers of one run must agree on it."""
        return self.spec.name, self.dtype, self.device, self.attn


class ShardWorker:
    """A loaded backbone plus the three units of work an engine hands out."""

    def __init__(self, request: BackboneRequest, threads: int | None = None):
        # A Ray worker does not inherit the driver's environment: no download may start on it either.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if threads is not None:
            import torch

            # The thread count can change float reductions: fix it so every worker computes the same bits.
            torch.set_num_threads(threads)
        self.backbone = request.load()

    def info(self) -> BackboneInfo:
        return BackboneInfo.of(self.backbone)

    def encode_rows(self, ids: list[str], texts: list[str], encoder: str, options: EncodeOptions,
                    signals: bool = False, progress: Any = False) -> Any:
        """The rows' Representations; with `signals`, (Representations, the encode-time signal arrays).
        `progress` is `encode_ids`' (True: a bar; a callable: texts done per batch)."""
        from repbench.encoders import encode

        got: list = []
        reps = encode(self.backbone, texts, ids=ids, encoder=encoder, options=options, progress=progress,
                      on_signals=(lambda _, arrays: got.append(arrays)) if signals else None)
        return (reps, got[0] if got else {}) if signals else reps

    def encode_shard(self, out: str, index: int, ids: list[str], texts: list[str], encoder: str,
                     options: EncodeOptions, options_digest: str, store_dtype: str) -> bool:
        """Encode and write shard `index` through the store's per-shard seam, unless it is already
        complete and verified; True if written.

        The check makes a retried job idempotent: a worker lost after writing its shard but before
        reporting back does not cause a second write.
        """
        from repbench.encoders.store import encode_shard, verify_shard
        from repbench.encoders.types import StoreError

        try:
            verify_shard(Path(out), index, ids, texts, options_digest)
            return False
        except StoreError:
            pass
        encode_shard(Path(out), index, ids, texts, lambda i, t: self.encode_rows(i, t, encoder, options),
                     options_digest, store_dtype)
        return True

    def score_cell(self, fn: Any, *args: Any) -> Any:
        # *args, not a tuple: Ray resolves object refs only when they are top-level arguments.
        return fn(*args)

    def ready(self) -> bool:
        return True
