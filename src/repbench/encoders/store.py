"""A sharded, resumable representations directory: config.json, shard_NNNNN.{safetensors,json}, manifest.json."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from repbench.encoders.types import Representations
from repbench.errors import RepbenchError
from repbench.io import atomic_write_json


def shard_stem(out: Path, index: int) -> Path:
    return out / f"shard_{index:05d}"


def encode_sharded(
    out: str | Path,
    ids: Sequence[str],
    texts: Sequence[str],
    config: dict[str, Any],
    encode_fn: Callable[[list[str], list[str]], Representations],
    shard_size: int = 1000,
    header: dict[str, Any] | None = None,
    progress: bool = True,
) -> Path:
    """Encode in shards of `shard_size`, skipping shards already on disk.

    Each shard is written atomically and marked complete by its .json; a failure in a later shard
    leaves every earlier shard intact, and a rerun with the same config resumes. A directory written
    with a different config is refused rather than mixed.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg_path = out / "config.json"
    cfg = {**config, "n_items": len(ids), "shard_size": shard_size}
    if cfg_path.exists():
        existing = json.loads(cfg_path.read_text())
        if existing != cfg:
            diff = {k: (existing.get(k), cfg.get(k)) for k in set(existing) | set(cfg) if existing.get(k) != cfg.get(k)}
            raise RepbenchError(f"{out} holds representations made with a different config {diff}; "
                                "use another --out directory")
    else:
        atomic_write_json(cfg_path, cfg)
    n_shards = max(1, -(-len(ids) // shard_size))
    todo = [i for i in range(n_shards) if not shard_stem(out, i).with_suffix(".json").exists()]
    iterator = todo
    if progress and todo:
        from tqdm.auto import tqdm

        iterator = tqdm(todo, desc=f"shards -> {out}", unit="shard")
    for i in iterator:
        lo, hi = i * shard_size, min(len(ids), (i + 1) * shard_size)
        encode_fn(list(ids[lo:hi]), list(texts[lo:hi])).save(shard_stem(out, i))
    atomic_write_json(out / "manifest.json", {**(header or {}), "n_shards": n_shards, "n_items": len(ids)})
    return out


def load_sharded(out: str | Path) -> Representations:
    out = Path(out)
    if not (out / "manifest.json").exists():
        raise RepbenchError(f"{out} is not a complete representations directory (no manifest.json)")
    n = json.loads((out / "manifest.json").read_text())["n_shards"]
    return Representations.concat([Representations.load(shard_stem(out, i)) for i in range(n)])
