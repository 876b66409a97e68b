"""Bounds on what one input file may make a reader hold: the longest line and the largest (decompressed)
file, each with a default and an environment variable to raise it. A gzip bomb or a file of one endless
line is refused after at most one limit's worth, naming file, line and limit."""

from __future__ import annotations

import os
from typing import IO

from repbench.errors import InputError, RepbenchError

_LIMITS = {  # environment variable -> default, in bytes
    "REPBENCH_MAX_LINE_BYTES": 64 * 2**20,
    "REPBENCH_MAX_INPUT_BYTES": 64 * 2**30,
    "REPBENCH_MAX_DOCUMENT_BYTES": 2**30,
}
_CHUNK = 1 << 20


def _limit(name: str) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return _LIMITS[name]
    try:
        value = int(text)
    except ValueError:
        raise RepbenchError(f"{name}={text!r}: expected a positive whole number of bytes") from None
    if value < 1:
        raise RepbenchError(f"{name}={text!r}: expected a positive whole number of bytes")
    return value


def max_line_bytes() -> int:
    """Longest line any reader accepts (bytes, after decompression): REPBENCH_MAX_LINE_BYTES, default 64 MiB."""
    return _limit("REPBENCH_MAX_LINE_BYTES")


def max_input_bytes(whole: bool = False) -> int:
    """Largest (decompressed) file a streamed reader accepts (REPBENCH_MAX_INPUT_BYTES, default 64 GiB),
    or, `whole`, one read into memory at once (REPBENCH_MAX_DOCUMENT_BYTES, default 1 GiB)."""
    return _limit("REPBENCH_MAX_DOCUMENT_BYTES" if whole else "REPBENCH_MAX_INPUT_BYTES")


def size_limit_error(path: str | os.PathLike, lineno: int | None, limit: int, env: str) -> InputError:
    return InputError(path, lineno, f"the file (decompressed) is larger than the limit of {limit} bytes; expected "
                                    f"a smaller file (raise the limit with {env}=BYTES if it is genuine)")


def line_limit_error(path: str | os.PathLike, lineno: int, limit: int) -> InputError:
    return InputError(path, lineno, f"a line longer than the limit of {limit} bytes; expected text lines "
                                    "(raise the limit with REPBENCH_MAX_LINE_BYTES=BYTES if it is genuine)")


def read_bounded(fh: IO[bytes], path: str | os.PathLike, whole: bool = True) -> bytes:
    """All of `fh`, read in chunks and refused (naming the line reached) once it passes the size limit or
    holds a line longer than the line limit, so a gzip bomb is stopped after at most one limit's worth."""
    max_line, max_total = max_line_bytes(), max_input_bytes(whole)
    env = "REPBENCH_MAX_DOCUMENT_BYTES" if whole else "REPBENCH_MAX_INPUT_BYTES"
    parts: list[bytes] = []
    total, newlines, line_len = 0, 0, 0
    while True:
        chunk = fh.read(_CHUNK)
        if not chunk:
            return b"".join(parts)
        total += len(chunk)
        last = chunk.rfind(b"\n")
        if last < 0:
            line_len += len(chunk)
        else:
            first = chunk.find(b"\n")
            longest = max(line_len + first, len(chunk) - last - 1,
                          max((len(x) for x in chunk[first + 1:last].split(b"\n")), default=0))
            if longest > max_line:
                raise line_limit_error(path, newlines + 1 + chunk.count(b"\n", 0, first), max_line)
            newlines += chunk.count(b"\n")
            line_len = len(chunk) - last - 1
        if line_len > max_line:
            raise line_limit_error(path, newlines + 1, max_line)
        if total > max_total:
            raise size_limit_error(path, newlines + 1, max_total, env)
        parts.append(chunk)
