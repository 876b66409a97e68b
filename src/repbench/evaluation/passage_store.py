"""The sweep's passage side as a store (repbench.encoders.store): encoded one shard at a time and scored by
streaming search, so a sweep's memory is bounded by a shard and `--max-memory`, not by the corpus.

Rows are stored in encode's own batch order (longest first, `longest_first`) when the sweep encodes with
the real encoder in this process, in shards of whole batches: every forward pass then sees exactly the
batch a single whole-corpus `encode` call would give it, so the vectors, and every score, are bit-identical
to the in-memory sweep's (in float32 a batch's padding changes a row's last bits). Streaming search ranks by
doc id, never by row, so the stored order does not reach any output. With `--shard-size` the rows stay in
input order, in shards of that size, as the in-memory sweep split them; with an encoder elsewhere (Ray
actors: the driver has no tokenizer) and no `--shard-size`, one shard of every row, as one call made it.

Each shard's encode-time signals are kept beside it (signals_NNNNN.npz, written before the shard), so a
resumed store still yields the whole side's signals, put back into input order once every shard is done;
when any shard lacks them (an encoder that reports none) the side has none, as in the in-memory sweep.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from repbench.encoders.store import encode_shard, encode_sharded, num_shards, shard_rows
from repbench.encoders.types import Representations
from repbench.errors import RepbenchError
from repbench.io import atomic_write_bytes

DEFAULT_SHARD_ROWS = 1024  # about 150 MB of float32 reps per shard for the tiny pair at K_p = 16
STORE_DTYPE = "float32"  # the in-memory sweep scores float32: a float16 store would change scores

# encode(ids, texts) -> (reps, signal arrays [one row per item] or None)
ShardEncoder = Callable[[list[str], list[str]], tuple[Representations, dict[str, np.ndarray] | None]]
# encode_many([(ids, texts), ...]) -> (part index, (reps, signal arrays or None)) as each part finishes (an
# engine's workers encoding several shards at once)
ManyEncoder = Callable[[list[tuple[list[str], list[str]]]],
                       Iterator[tuple[int, tuple[Representations, dict[str, np.ndarray] | None]]]]


@dataclass(frozen=True)
class Layout:
    """How the passage rows are laid out in the store; part of the cache key, as it can change the vectors'
    last bits (which rows share a batch)."""

    shard_size: int
    by_length: bool

    def key(self) -> str:
        return f"{self.shard_size}:{'length' if self.by_length else 'input'}"


def plan_layout(batch_size: int, shard_size: int | None, by_length: bool, n_items: int) -> Layout:
    """`shard_size` given: input order in shards of that size (the in-memory sweep's `--shard-size` split).
    Otherwise, `by_length` (encode's order is known here): shards of whole batches (about DEFAULT_SHARD_ROWS
    rows), longest first; else one shard of every row, the one call the in-memory sweep made (an encoder
    whose lengths the driver cannot read, e.g. Ray actors: give --shard-size to bound its memory)."""
    if shard_size:
        return Layout(int(shard_size), False)
    if not by_length:
        return Layout(max(1, n_items), False)
    return Layout(max(1, -(-DEFAULT_SHARD_ROWS // batch_size)) * batch_size, True)


def row_order(texts: Sequence[str], tokenize: Callable[[list[str]], list[list[int]]] | None,
              block: int = 4096) -> np.ndarray:
    """Input positions in encode's batch order (longest first); tokenized in blocks, keeping only lengths."""
    from repbench.encoders.pipeline import longest_first

    if tokenize is None:
        return np.arange(len(texts), dtype=np.int64)
    lengths: list[int] = []
    for lo in range(0, len(texts), block):
        lengths.extend(len(t) for t in tokenize(list(texts[lo:lo + block])))
    return np.asarray(longest_first(lengths), dtype=np.int64)


def _signals_file(out: Path, index: int) -> Path:
    return Path(out) / f"signals_{index:05d}.npz"


def build(out: Path, ids: Sequence[str], texts: Sequence[str], layout: Layout, encode: ShardEncoder,
          order: np.ndarray, config: dict[str, Any], header: dict[str, Any], with_signals: bool,
          progress: bool, encode_many: ManyEncoder | None = None) -> tuple[int, dict[str, np.ndarray] | None]:
    """Encode the store at `out` (resuming: complete, verified shards are kept). Returns the number of rows
    encoded now (0: all reused) and, `with_signals`, the side's signal arrays in input order. With
    `encode_many` (an engine's workers) the shards to do are encoded at once, each written as it lands;
    each is still one encode call of its own rows, so its bytes are those of the one-by-one path."""
    out = Path(out)
    pids = [ids[i] for i in order.tolist()]
    ptexts = [texts[i] for i in order.tolist()]
    n_shards = num_shards(len(pids), layout.shard_size)
    encoded = [0]
    shard_of = {pids[shard_rows(len(pids), layout.shard_size, i)[0]]: i for i in range(n_shards) if pids}

    def keep(shard_ids: list[str], reps: Representations, arrays: dict[str, np.ndarray] | None) -> Representations:
        if with_signals and arrays is not None:  # before the shard: a written shard has its signals
            buf = io.BytesIO()
            np.savez(buf, **arrays)
            atomic_write_bytes(_signals_file(out, shard_of.get(shard_ids[0], 0) if shard_ids else 0),
                               buf.getvalue())
        encoded[0] += len(shard_ids)
        return reps

    def encode_rows(shard_ids: list[str], shard_texts: list[str]) -> Representations:
        return keep(shard_ids, *encode(shard_ids, shard_texts))

    def run_shards(todo: list[int], options_digest: str, store_dtype: str) -> None:
        bounds = [shard_rows(len(pids), layout.shard_size, i) for i in todo]
        parts = [(pids[lo:hi], ptexts[lo:hi]) for lo, hi in bounds]
        for j, (reps, arrays) in encode_many(parts):
            shard_ids, shard_texts = parts[j]
            kept = keep(shard_ids, reps, arrays)
            encode_shard(out, todo[j], shard_ids, shard_texts, lambda *_, r=kept: r, options_digest, store_dtype)

    encode_sharded(out, pids, ptexts, config, encode_rows, shard_size=layout.shard_size, header=header,
                   progress=progress, store_dtype=STORE_DTYPE,
                   run_shards=run_shards if encode_many is not None else None)
    files = [_signals_file(out, i) for i in range(n_shards)]
    if not with_signals or not all(f.exists() for f in files):  # an encoder that reports none (or a store
        return encoded[0], None                                    # written without): no signals, as today
    parts = []
    for i in range(n_shards):
        lo, hi = shard_rows(len(pids), layout.shard_size, i)
        try:
            with np.load(_signals_file(out, i)) as z:
                part = {name: z[name] for name in z.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise RepbenchError(f"{_signals_file(out, i)}: unreadable signals ({exc}); delete {out} and rerun") from None
        if any(len(v) != hi - lo for v in part.values()):
            raise RepbenchError(f"{_signals_file(out, i)}: signals of another shard size; delete {out}")
        parts.append(part)
    names = parts[0].keys() if parts else ()
    arrays = {}
    for name in names:
        stored = np.concatenate([p[name] for p in parts])
        arrays[name] = np.empty_like(stored)
        arrays[name][order] = stored  # stored row r holds input item order[r]
    return encoded[0], arrays
