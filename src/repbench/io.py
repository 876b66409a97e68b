"""Atomic file writes and checked text reading, shared by every stage.

Every text reader goes through `iter_lines`, `read_text` or `read_json` here, so every input file gets
the same rules: gzip is recognised by its magic bytes (whatever the name), a UTF-8 byte-order mark is
dropped, invalid UTF-8 is refused naming file:line:byte, and a truncated .gz is reported as such.
Lines end at b"\\n" only (a trailing "\\r" is dropped), as trec_eval reads them.

Reads are bounded (repbench.limits), so a hostile file cannot exhaust memory: a line longer than
`max_line_bytes()` (64 MiB; REPBENCH_MAX_LINE_BYTES) and a file whose (decompressed) content exceeds
`max_input_bytes()` (64 GiB streamed, REPBENCH_MAX_INPUT_BYTES; 1 GiB for a document read whole, JSON
or CSV, REPBENCH_MAX_DOCUMENT_BYTES) are refused naming file, line and limit, before the excess is held.
Every id (queries, corpus, qrels, runs) passes one rule, `repbench.ids.check_id`.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from repbench.errors import InputError, RepbenchError
from repbench.ids import SURROGATE, check_id  # noqa: F401 - check_id re-exported: the one id rule
from repbench.limits import line_limit_error, max_input_bytes, max_line_bytes, read_bounded, size_limit_error  # noqa: F401

_UMASK = os.umask(0)
os.umask(_UMASK)

BOM = b"\xef\xbb\xbf"
GZIP_MAGIC = b"\x1f\x8b"
# Other compressions a user might hand over by mistake: named, not mis-read as text.
_OTHER_MAGIC = {b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd", b"PK\x03\x04": "zip"}
_BZIP2 = re.compile(rb"BZh[1-9]1AY&SY")  # "BZh" alone could start a text file


def write_error(path: str | os.PathLike, exc: OSError) -> RepbenchError:
    """A write failure (disk full, read-only, permission) as a message naming the file."""
    hint = " (disk full: free space and rerun; files already written are intact)" if exc.errno == 28 else ""
    return RepbenchError(f"{path}: cannot write: {exc.strerror or exc}{hint}")


_SWEPT: set[str] = set()
_TMP_NAME = re.compile(r"\..+\.(\d+)\.[^.]+\.tmp")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, another user's
        return True
    return True


def remove_stale_tmp(directory: str | os.PathLike) -> list[Path]:
    """Remove temp files `atomic_write_bytes` left in `directory` when its process was killed (their
    name holds the writer's pid; one whose pid is gone is stale). A live writer's file is kept, so two
    concurrent runs do not break each other. Done once per directory per process, on its first write."""
    directory = Path(directory)
    key = os.path.abspath(directory)
    if key in _SWEPT:
        return []
    _SWEPT.add(key)
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    for name in names:
        m = _TMP_NAME.fullmatch(name)
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            with contextlib.suppress(OSError):
                (directory / name).unlink()
                removed.append(directory / name)
    return removed


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` via a temp file in the same directory and a rename (`atomic_write_parts`)."""
    return atomic_write_parts(path, (data,))


def atomic_write_parts(path: str | os.PathLike, parts: Iterable[bytes]) -> Path:
    """Write the concatenation of `parts` to `path` via a temp file in the same directory and a rename,
    one part at a time (a large table written block by block never exists whole in memory).

    A crash or a full disk leaves either the old file or the new one, never a truncated file; a write
    failure raises RepbenchError naming `path`.
    """
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_tmp(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results should read like any other file
        with os.fdopen(fd, "wb") as fh:
            for data in parts:
                fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise write_error(path, exc) from exc
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def strict_json_value(obj: Any, where: str = "") -> Any:
    """`obj` with every NaN (a value not measured) as null, for strict JSON; an infinity is refused
    (RepbenchError naming its key path), as no reader of strict JSON could take it."""
    import math

    if isinstance(obj, float):
        if math.isnan(obj):
            return None
        if math.isinf(obj):
            raise RepbenchError(f"{where or 'a value'} is {obj}, not a number JSON allows; expected finite results")
        return obj
    if isinstance(obj, dict):
        return {k: strict_json_value(v, f"{where}.{k}" if where else str(k)) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [strict_json_value(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if hasattr(obj, "item") and not isinstance(obj, str | bytes):  # a numpy scalar
        try:
            return strict_json_value(obj.item(), where)
        except (TypeError, ValueError):
            return obj
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any, strict: bool = False) -> Path:
    """JSON written atomically; `strict`: NaN as null, an infinity refused (always valid JSON)."""
    if strict:
        text = json.dumps(strict_json_value(obj), indent=2, sort_keys=False, default=str, allow_nan=False)
        return atomic_write_text(path, text + "\n")
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def atomic_write_csv(path: str | os.PathLike, frame: Any) -> Path:
    """Write a pandas DataFrame as CSV atomically (no index)."""
    return atomic_write_text(path, frame.to_csv(index=False))


def read_error(path: str | os.PathLike, exc: OSError) -> RepbenchError:
    if isinstance(exc, FileNotFoundError):
        return RepbenchError(f"{path}: no such file")
    if isinstance(exc, IsADirectoryError):
        return RepbenchError(f"{path}: is a directory, expected a file")
    return RepbenchError(f"{path}: cannot read: {exc.strerror or exc}")


@contextlib.contextmanager
def open_binary(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """The file's bytes, gunzipped when it starts with the gzip magic bytes (whatever its suffix)."""
    try:
        fh: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise read_error(path, exc) from None
    try:
        try:
            head = fh.read(10)
            fh.seek(0)
        except OSError as exc:
            raise read_error(path, exc) from None
        if head.startswith(GZIP_MAGIC):
            with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
                yield gz
            return
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise InputError(path, None, "this is UTF-16 text (it starts with a UTF-16 byte-order mark); expected "
                                         "UTF-8 (convert it, e.g. iconv -f UTF-16 -t UTF-8)")
        kinds = {"bzip2": _BZIP2.match(head)} | {kind: head.startswith(m) for m, kind in _OTHER_MAGIC.items()}
        for kind, found in kinds.items():
            if found:
                raise InputError(path, None, f"this is {kind}-compressed; expected plain text or gzip "
                                             f"(decompress it first)")
        yield fh
    finally:
        fh.close()


def _gzip_error(path: str | os.PathLike, lineno: int | None, exc: BaseException) -> InputError:
    return InputError(path, lineno, f"the gzip data is truncated or corrupt here ({exc}); expected a "
                                    f"complete .gz file (re-download or re-compress it)")


def _utf8_error(path: str | os.PathLike, lineno: int, column: int, value: int, file_offset: int) -> InputError:
    return InputError(path, lineno, f"invalid UTF-8 (byte 0x{value:02x} at file offset {file_offset}); "
                                    "expected UTF-8 text", byte=column)


def iter_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """(1-based line number, text without its line ending) for every line of a text file.

    A line over `max_line_bytes()` or a file over `max_input_bytes()` is refused before it is held whole.
    """
    max_line, max_total = max_line_bytes(), max_input_bytes()
    with open_binary(path) as fh:
        lineno, offset = 0, 0
        while True:
            try:
                raw = fh.readline(max_line + 1)  # bounded: a newline-free gzip bomb stops here
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                raise _gzip_error(path, lineno + 1, exc) from None
            except OSError as exc:
                raise read_error(path, exc) from None
            if not raw:
                return
            lineno += 1
            if len(raw) > max_line and not raw.endswith(b"\n"):
                raise line_limit_error(path, lineno, max_line)
            start = offset
            offset += len(raw)
            if offset > max_total:
                raise size_limit_error(path, lineno, max_total, "REPBENCH_MAX_INPUT_BYTES")
            if lineno == 1 and raw.startswith(BOM):
                raw, start = raw[len(BOM):], start + len(BOM)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _utf8_error(path, lineno, exc.start + 1, raw[exc.start], start + exc.start) from None
            if text.endswith("\n"):
                text = text[:-1]
                if text.endswith("\r"):
                    text = text[:-1]
            yield lineno, text


def read_text(path: str | os.PathLike) -> str:
    """A whole text file under the same rules as `iter_lines` (BOM dropped; line endings kept as written)."""
    with open_binary(path) as fh:
        try:
            data = read_bounded(fh, path)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise _gzip_error(path, None, exc) from None
        except OSError as exc:
            raise read_error(path, exc) from None
    start = len(BOM) if data.startswith(BOM) else 0
    body = data[start:]
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        pos = exc.start
        line_start = body.rfind(b"\n", 0, pos) + 1
        raise _utf8_error(path, body.count(b"\n", 0, pos) + 1, pos - line_start + 1, body[pos],
                          start + pos) from None


class _NonFinite(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NonFinite(name)


def read_json(path: str | os.PathLike, expected: str = "a JSON document", allow_nan: bool = False) -> Any:
    """Parse a JSON file; invalid JSON or text is refused naming file:line and `expected`.

    NaN and Infinity literals (not JSON, but Python writes them) are refused unless `allow_nan` (a
    pytest-benchmark JSON holds NaN stats for skipped cells; its reader checks the numbers it uses).
    """
    text = read_text(path)
    try:
        return json.loads(text, parse_constant=None if allow_nan else _refuse_constant)
    except json.JSONDecodeError as exc:
        raise InputError(path, exc.lineno, f"expected {expected}, got invalid JSON ({exc.msg})") from None
    except _NonFinite as exc:
        pos = text.find(str(exc))
        raise InputError(path, text.count("\n", 0, pos) + 1 if pos >= 0 else None,
                         f"expected {expected}; {exc} is not a number JSON allows") from None
    except ValueError as exc:  # an integer beyond Python's digit limit
        raise InputError(path, None, f"expected {expected} ({exc})") from None
    except RecursionError:
        raise InputError(path, None, f"expected {expected}; the JSON is nested too deeply") from None


def read_csv_lines(path: str | os.PathLike, what: str = "a CSV table", require_rows: bool = True, **kwargs: Any):
    """(DataFrame, line number of each row) of a CSV file read by `read_text`.

    Every record must have as many fields as the header (pandas would silently pad a short one); a
    header-only file is refused unless `require_rows` is False. Line numbers count the header as 1.
    """
    import csv
    import io

    import pandas as pd

    text = read_text(path)
    lines: list[int] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    width = None
    try:
        for record in reader:
            if not record:
                continue  # blank line: pandas skips it too
            if width is None:
                width = len(record)
                continue
            if len(record) != width:
                raise InputError(path, reader.line_num, f"expected {width} comma-separated fields as in the "
                                                        f"header, got {len(record)}")
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise InputError(path, reader.line_num, f"expected {what} ({exc})") from None
    if width is None:
        raise InputError(path, None, f"expected {what}; the file is empty")
    if require_rows and not lines:
        raise InputError(path, None, f"expected at least one row of {what}; the file holds only its header")
    try:
        frame = pd.read_csv(io.StringIO(text), **kwargs)
    except pd.errors.EmptyDataError:
        raise InputError(path, None, f"expected {what}; the file is empty") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise InputError(path, None, f"expected {what} ({str(exc).strip()})") from None
    if len(lines) != len(frame):  # the two parsers split records differently: fall back to row order
        lines = list(range(2, len(frame) + 2))
    return frame, lines


def read_csv(path: str | os.PathLike, what: str = "a CSV table", require_rows: bool = True, **kwargs: Any):
    """The DataFrame of `read_csv_lines`."""
    return read_csv_lines(path, what, require_rows, **kwargs)[0]


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """Yield (line_number, object) for each non-blank line; malformed lines raise InputError."""
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(path, lineno, f"expected a JSON object, got invalid JSON ({exc.msg})") from None
        except RecursionError:
            raise InputError(path, lineno, "expected a JSON object; it is nested too deeply") from None
        except ValueError as exc:  # e.g. an integer beyond Python's 4300-digit conversion limit
            raise InputError(path, lineno, f"expected a JSON object ({exc})") from None
        if not isinstance(obj, dict):
            raise InputError(path, lineno, f"expected a JSON object, got {type(obj).__name__}")
        yield lineno, obj


def read_texts_jsonl(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Read a BEIR-style JSONL of items (`_id`, optional `title`, `text`).

    Returns (ids, texts) with the title prepended as "title. text" when present (docs/method.md §7.1).
    Duplicate ids, empty ids and ids with whitespace are refused, as is an empty file.
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
        for field in ("text", "title"):
            value = obj.get(field)
            if isinstance(value, str) and SURROGATE.search(value):
                raise InputError(path, lineno, f'expected "{field}" to be valid Unicode; it holds a lone surrogate '
                                               f'U+{ord(SURROGATE.search(value).group()):04X} (a JSON "\\u" '
                                               "escape of half a UTF-16 pair), which is not UTF-8")
        raw_id = obj["_id"]
        if not isinstance(raw_id, str | int) or isinstance(raw_id, bool):
            raise InputError(path, lineno, f'expected "_id" to be a string or an integer, got {type(raw_id).__name__}')
        _id = check_id(path, lineno, str(raw_id))
        if _id in seen:
            raise InputError(path, lineno, f'duplicate "_id" {_id!r} (first on line {seen[_id]})')
        seen[_id] = lineno
        title = obj.get("title")
        if title is not None and not isinstance(title, str):
            raise InputError(path, lineno, f'expected "title" to be a string, got {type(title).__name__}')
        text = obj["text"]
        ids.append(_id)
        texts.append(f"{title}. {text}" if title else text)
    if not ids:
        raise InputError(path, None, "expected at least one item (the file holds no JSON lines)")
    return ids, texts
