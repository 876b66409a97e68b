"""signals.csv: per-text and per-slot signals recorded at encode time (no extra forward pass).

One row per (dataset, backbone, encoder, side, k, id, slot, signal). Per-slot signals have slot 0..K-1;
per-text signals have an empty slot. Values are numbers; an undefined value (the mean pairwise cosine
of a text with fewer than two valid slots) is empty. docs/contracts.md describes the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from repbench.errors import InputError, RepbenchError
from repbench.io import atomic_write_parts, open_binary, read_csv_lines

SIGNAL_COLUMNS: tuple[str, ...] = ("dataset", "backbone", "encoder", "side", "k", "id", "slot", "signal", "value")
# per slot: entropy (nats) and top-1 probability of the softmax of the logits read at the slot, the decoded
# token id, and whether the slot is valid (kept after stop-token truncation)
SLOT_SIGNALS: tuple[str, ...] = ("entropy", "top1_prob", "token_id", "valid")
# per text: text tokens fed (after truncation), all tokens fed (prompt included), valid slots, mean pairwise
# cosine between the valid slot vectors, total weight of the sparse vector, distinct decoded tokens
TEXT_SIGNALS: tuple[str, ...] = ("text_tokens", "input_tokens", "valid_slots", "mean_pairwise_cosine",
                                 "sparse_mass", "distinct_tokens")


def signals_frame(ids: Sequence[str], arrays: Mapping[str, np.ndarray], *, dataset: str, backbone: str,
                  encoder: str, side: str, k: int) -> pd.DataFrame:
    """Tidy rows from per-text arrays [N] and per-slot arrays [N, K] named as in TEXT_/SLOT_SIGNALS."""
    n = len(ids)
    ids_arr = np.asarray([str(i) for i in ids], dtype=object)
    frames = []
    for name in TEXT_SIGNALS:
        if name in arrays:
            v = np.asarray(arrays[name], dtype=np.float64).reshape(n)
            frames.append(pd.DataFrame({"id": ids_arr, "slot": pd.array([pd.NA] * n, dtype="Int64"),
                                        "signal": name, "value": v}))
    for name in SLOT_SIGNALS:
        if name in arrays:
            v = np.asarray(arrays[name], dtype=np.float64).reshape(n, -1)
            kk = v.shape[1]
            frames.append(pd.DataFrame({"id": np.repeat(ids_arr, kk),
                                        "slot": pd.array(np.tile(np.arange(kk), n), dtype="Int64"),
                                        "signal": name, "value": v.ravel()}))
    out = (pd.concat(frames, ignore_index=True) if frames
           else pd.DataFrame(columns=["id", "slot", "signal", "value"]))
    for col, value in reversed([("dataset", dataset), ("backbone", backbone), ("encoder", encoder),
                                ("side", side), ("k", int(k))]):
        out.insert(0, col, value)
    return out[list(SIGNAL_COLUMNS)]


def write_signals(path: str | os.PathLike, frame: pd.DataFrame) -> os.PathLike:
    """Write a signals table atomically, in SIGNAL_COLUMNS order (refusing one that lacks a column)."""
    return write_signals_blocks(path, [frame])


def write_signals_blocks(path: str | os.PathLike, frames: Iterable[pd.DataFrame]) -> os.PathLike:
    """`write_signals` of the frames' concatenation, one frame at a time (the same bytes: each value is
    written on its own), so a corpus-sized table never exists whole in memory."""

    def blocks() -> Iterator[bytes]:
        first = True
        for frame in frames:
            missing = [c for c in SIGNAL_COLUMNS if c not in frame.columns]
            if missing:
                raise RepbenchError(f"a signals table needs columns {', '.join(SIGNAL_COLUMNS)}; missing "
                                    f"{', '.join(missing)}")
            out = frame[list(SIGNAL_COLUMNS)].copy()
            if np.isinf(out["value"].to_numpy(dtype=np.float64)).any():
                raise RepbenchError("a signals table holds an infinite value")
            out["slot"] = out["slot"].astype("Int64")
            if first or len(out):
                yield out.to_csv(index=False, header=first).encode("utf-8")
                first = False
        if first:  # no frame at all: the header alone, as an empty table is written
            yield pd.DataFrame(columns=list(SIGNAL_COLUMNS)).to_csv(index=False).encode("utf-8")

    return atomic_write_parts(path, blocks())


def copy_signals(path: str | os.PathLike, sources: Sequence[str | os.PathLike], dataset: str,
                 rows: int = 200_000) -> os.PathLike:
    """`sources` (signals tables this program wrote and sealed) concatenated into `path` with their dataset
    column set to `dataset`, `rows` lines at a time: the bytes `write_signals` gives their concatenation,
    without holding any table whole."""

    def frames() -> Iterator[pd.DataFrame]:
        for source in sources:
            with open_binary(source) as fh:
                for block in pd.read_csv(fh, dtype=str, keep_default_na=False, chunksize=rows):
                    block["dataset"] = dataset
                    block["value"] = pd.to_numeric(block["value"].replace("", np.nan))
                    block["slot"] = pd.to_numeric(block["slot"].replace("", np.nan)).astype("Int64")
                    yield block

    return write_signals_blocks(path, frames())


def read_signals(path: str | os.PathLike) -> pd.DataFrame:
    """Read a signals.csv, checking columns, K, slots and numeric values (errors name file and line)."""
    # repbench.io's rules: gzip by content, BOM dropped, strict UTF-8, every row as wide as the header.
    raw, row_lines = read_csv_lines(path, "a CSV signals table", require_rows=False, dtype=str,
                                    keep_default_na=False)
    missing = [c for c in SIGNAL_COLUMNS if c not in raw.columns]
    if missing:
        raise InputError(path, 1, f"expected columns {', '.join(SIGNAL_COLUMNS)}; missing {', '.join(missing)}")
    df = raw[list(SIGNAL_COLUMNS)].copy()
    lines = np.asarray(row_lines)

    def fail(mask: np.ndarray, what: str, col: str) -> None:
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            raise InputError(path, int(lines[i]), f"expected {what}, got {df[col].iat[i]!r}")

    k = pd.to_numeric(df["k"], errors="coerce")
    fail((k.isna() | (k < 1) | (k != np.round(k))).to_numpy(), "a positive integer k", "k")
    df["k"] = k.astype(np.int64)
    slot = pd.to_numeric(df["slot"].replace("", np.nan), errors="coerce")
    bad_slot = (df["slot"] != "") & (slot.isna() | (slot < 0) | (slot >= df["k"]) | (slot != np.round(slot)))
    fail(bad_slot.to_numpy(), "an empty slot (per-text signal) or an integer slot in [0, k)", "slot")
    df["slot"] = slot.astype("Int64")
    value = pd.to_numeric(df["value"].replace("", np.nan), errors="coerce")
    bad_value = ((df["value"] != "") & value.isna()).to_numpy() | np.isinf(value.to_numpy(dtype=np.float64))
    fail(bad_value, "a number (or empty for undefined)", "value")
    df["value"] = value.astype(np.float64)
    return df
