"""Atomic file writes and line-checked JSONL reading, shared by every stage."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from repbench.errors import InputError

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` via a temp file in the same directory and a rename.

    A crash leaves either the old file or the new one, never a truncated file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results should read like any other file
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def atomic_write_csv(path: str | os.PathLike, frame: Any) -> Path:
    """Write a pandas DataFrame as CSV atomically (no index)."""
    return atomic_write_text(path, frame.to_csv(index=False))


def open_text(path: str | os.PathLike):
    """Open a text file, transparently gunzipping `.gz`."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """Yield (line_number, object) for each non-blank line; malformed lines raise InputError."""
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(path, lineno, f"expected a JSON object, got invalid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise InputError(path, lineno, f"expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj


def read_texts_jsonl(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Read a BEIR-style JSONL of items (`_id`, optional `title`, `text`).

    Returns (ids, texts) with the title prepended as "title. text" when present (method-spec §7.1).
    Duplicate ids are refused.
    """
    ids: list[str] = []
    texts: list[str] = []
    seen: dict[str, int] = {}
    for lineno, obj in iter_jsonl(path):
        if "_id" not in obj:
            raise InputError(path, lineno, 'expected an "_id" field')
        if "text" not in obj:
            raise InputError(path, lineno, 'expected a "text" field')
        if not isinstance(obj["text"], str):
            raise InputError(path, lineno, '"text" must be a string')
        _id = str(obj["_id"])
        if _id in seen:
            raise InputError(path, lineno, f'duplicate "_id" {_id!r} (first on line {seen[_id]})')
        seen[_id] = lineno
        title = obj.get("title") or ""
        text = obj["text"]
        ids.append(_id)
        texts.append(f"{title}. {text}" if title else text)
    return ids, texts
