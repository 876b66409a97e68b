"""Content hashes that key representations: input rows, options, files (sha256, hex)."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Mapping, Sequence
from typing import Any

_BLOCK = 1 << 20


def _field(h: Any, text: str) -> None:
    # Length-prefixed, so ("a\tb", "c") and ("a", "b\tc") hash differently.
    data = text.encode("utf-8")
    h.update(struct.pack("<Q", len(data)))
    h.update(data)


def rows_hash(ids: Sequence[str], texts: Sequence[str]) -> str:
    """sha256 of the (id, text) rows in order: what a shard or cache entry encodes."""
    if len(ids) != len(texts):
        raise ValueError(f"{len(ids)} ids for {len(texts)} texts")
    h = hashlib.sha256(b"repbench-rows-v1")
    for i, t in zip(ids, texts, strict=True):
        _field(h, str(i))
        _field(h, str(t))
    return h.hexdigest()


def ids_hash(ids: Sequence[str]) -> str:
    """sha256 of an id list (detects a damaged or swapped ids sidecar)."""
    h = hashlib.sha256(b"repbench-ids-v1")
    for i in ids:
        _field(h, str(i))
    return h.hexdigest()


def options_hash(options: Mapping[str, Any]) -> str:
    """sha256 of the options that change the output, as canonical JSON (key order does not matter)."""
    text = json.dumps(dict(options), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 of a file read in 1 MiB blocks (memory stays flat for any file size)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            h.update(block)
    return h.hexdigest()
