"""The consistency checks of a store's JSON files: config.json holds what a store needs, and the manifest
describes exactly the store config.json does (a partial or edited manifest is refused, never searched)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repbench.encoders.types import StoreError, check_store_file
from repbench.errors import RepbenchError


def num_shards(n_items: int, shard_size: int) -> int:
    return max(1, -(-n_items // shard_size))


def shard_rows(n_items: int, shard_size: int, index: int) -> tuple[int, int]:
    """Row range [lo, hi) of shard `index`."""
    return index * shard_size, min(n_items, (index + 1) * shard_size)



def read_store_config(out: Path) -> dict[str, Any]:
    """config.json of a store, checked to hold what a store needs (StoreError naming it otherwise)."""
    from repbench.io import read_json

    path = Path(out) / "config.json"
    if not path.exists():
        raise StoreError(f"{path}: missing; not a representations directory written by `repbench encode`")
    check_store_file(path)
    try:
        cfg = read_json(path, "a store config (JSON object)")
    except RepbenchError as exc:
        raise StoreError(f"{exc}; delete it to start this store again") from None
    ok = isinstance(cfg, dict) and all(isinstance(cfg.get(k), int) and not isinstance(cfg.get(k), bool)
                                       for k in ("n_items", "shard_size")) and isinstance(cfg.get("options_hash"), str)
    if not ok or cfg["n_items"] < 0 or cfg["shard_size"] < 1:
        raise StoreError(f"{path}: expected a store config with whole n_items >= 0, shard_size >= 1 and an "
                         "options_hash (edited by hand?); delete it to start this store again")
    return cfg


def _read_store_json(path: Path, what: str, out: Path) -> dict[str, Any]:
    from repbench.io import read_json

    check_store_file(path)
    try:
        obj = read_json(path, what)
    except RepbenchError as exc:
        raise StoreError(f"{exc}; run `repbench merge {out}`") from None
    if not isinstance(obj, dict):
        raise StoreError(f"{path}: expected {what}, got {type(obj).__name__}; run `repbench merge {out}`")
    return obj


def check_manifest(out: Path, manifest: dict[str, Any], cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """The manifest's shard entries, after checking it describes the store config.json does: the
    same options, item count, shard size and dtype, every shard present once, in order, with its rows.
    A partial or edited manifest is refused (StoreError), never searched as a smaller store."""
    path = out / "manifest.json"
    entries = manifest.get("shards")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise StoreError(f"{path}: expected a list of shard entries under 'shards'; run `repbench merge {out}`")
    try:
        n_items, size = int(cfg["n_items"]), int(cfg["shard_size"])
    except (KeyError, TypeError, ValueError):
        raise StoreError(f"{out / 'config.json'}: expected n_items and shard_size; not a store written by "
                         "`repbench encode`") from None
    problems = [f"{key} {manifest.get(key)!r} (config.json: {cfg.get(key)!r})"
                for key in ("n_items", "shard_size", "options_hash", "store_dtype") if manifest.get(key) != cfg.get(key)]
    expected = num_shards(n_items, size)
    if manifest.get("n_shards") != len(entries) or len(entries) != expected:
        problems.append(f"{len(entries)} shard entries, n_shards {manifest.get('n_shards')!r} (config.json "
                        f"implies {expected})")
    for i, entry in enumerate(entries):
        lo, hi = shard_rows(n_items, size, i)
        if entry.get("index", i) != i or entry.get("rows") != hi - lo or entry.get("options_hash") != cfg.get("options_hash"):
            problems.append(f"shard entry {i}: index {entry.get('index')!r}, rows {entry.get('rows')!r} "
                            f"(expected {i}, {hi - lo}) or other options")
            break
    if problems:
        raise StoreError(f"{path} does not describe the store in {out / 'config.json'} (partial or edited: "
                         + "; ".join(problems) + f"); run `repbench merge {out}`")
    return entries
