"""The one output type of every encoder, and its on-disk form (safetensors + a JSON sidecar with ids and sha256)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load, save

from repbench.encoders.digest import ids_hash, sha256_bytes
from repbench.errors import RepbenchError
from repbench.io import atomic_write_bytes, atomic_write_json


@dataclass
class Representations:
    """K representatives per item.

    dense          float32 [N, K, H]  last-layer hidden states at the K readout positions, NOT normalised;
                                      invalid slots are all-zero
    valid          bool    [N, K]     slot validity (stop-token truncation, docs/method.md §3.6)
    sparse_ids     int64   [N, M]     vocabulary ids of the max-pooled sparse vector, -1 = padding
    sparse_weights float32 [N, M]     their weights (log1p(relu(logit)) x100, top-`sparse_top_k` per slot;
                                      truncated to integers except on the sequential path at K > 1)
    token_ids      int64   [N, K]     the decoded (argmax / generated) token at each slot
    input_tokens   int64   [N]        tokens fed to the model per item (prompt + text + masks + tail)
    """

    ids: list[str]
    dense: torch.Tensor
    valid: torch.Tensor
    sparse_ids: torch.Tensor
    sparse_weights: torch.Tensor
    token_ids: torch.Tensor
    input_tokens: torch.Tensor
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.ids)
        for name in ("dense", "valid", "sparse_ids", "sparse_weights", "token_ids", "input_tokens"):
            t = getattr(self, name)
            if t.shape[0] != n:
                raise ValueError(f"Representations.{name} has {t.shape[0]} rows for {n} ids")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def k(self) -> int:
        return int(self.dense.shape[1])

    @property
    def hidden_size(self) -> int:
        return int(self.dense.shape[2])

    def unit_dense(self) -> torch.Tensor:
        """Slot vectors L2-normalised (zero slots stay zero), as the evaluator does (docs/method.md §6.1)."""
        return torch.nn.functional.normalize(self.dense, dim=-1, eps=1e-12)

    def select(self, index: list[int] | torch.Tensor) -> Representations:
        idx = torch.as_tensor(index, dtype=torch.long)
        return Representations(
            ids=[self.ids[i] for i in idx.tolist()],
            dense=self.dense[idx], valid=self.valid[idx], sparse_ids=self.sparse_ids[idx],
            sparse_weights=self.sparse_weights[idx], token_ids=self.token_ids[idx],
            input_tokens=self.input_tokens[idx], meta=dict(self.meta),
        )

    @staticmethod
    def concat(parts: list[Representations]) -> Representations:
        if not parts:
            raise ValueError("nothing to concatenate")
        width = max(p.sparse_ids.shape[1] for p in parts)

        def pad(t: torch.Tensor, value: float) -> torch.Tensor:
            return torch.nn.functional.pad(t, (0, width - t.shape[1]), value=value)

        return Representations(
            ids=[i for p in parts for i in p.ids],
            dense=torch.cat([p.dense for p in parts]),
            valid=torch.cat([p.valid for p in parts]),
            sparse_ids=torch.cat([pad(p.sparse_ids, -1) for p in parts]),
            sparse_weights=torch.cat([pad(p.sparse_weights, 0.0) for p in parts]),
            token_ids=torch.cat([p.token_ids for p in parts]),
            input_tokens=torch.cat([p.input_tokens for p in parts]),
            meta=dict(parts[0].meta),
        )

    # ---- on disk: <stem>.safetensors (tensors) + <stem>.json (ids, meta, store entry) --------------
    def save(self, stem: str | Path, store_dtype: str = "float32", extra: dict[str, Any] | None = None) -> dict:
        """Write atomically and return the store entry (rows, dtype, bytes, sha256, ids_sha256, **extra).

        `store_dtype` applies to `dense` only; sparse weights are integers held exactly in float32 and
        ids stay integers. The .json (with the entry, so the file's sha256) is written last: its
        presence marks a complete pair, and `load` refuses a tensor file whose bytes differ.
        """
        stem = Path(stem)
        dtype = store_torch_dtype(store_dtype)
        if dtype == torch.float16 and self.dense.numel() and float(self.dense.abs().max()) > FLOAT16_MAX:
            raise RepbenchError(f"{stem}: hidden states exceed float16's range ({FLOAT16_MAX}); "
                                "use --store-dtype bfloat16 or float32")
        tensors = {
            "dense": self.dense.to(dtype).contiguous(), "valid": self.valid.to(torch.uint8).contiguous(),
            "sparse_ids": self.sparse_ids.to(torch.int32).contiguous(),
            "sparse_weights": self.sparse_weights.float().contiguous(),
            "token_ids": self.token_ids.contiguous(), "input_tokens": self.input_tokens.contiguous(),
        }
        data = save(tensors)
        entry = {"rows": len(self), "dtype": store_dtype, "bytes": len(data), "sha256": sha256_bytes(data),
                 "ids_sha256": ids_hash(self.ids), **(extra or {})}
        atomic_write_bytes(stem.with_suffix(".safetensors"), data)
        atomic_write_json(stem.with_suffix(".json"), {"ids": self.ids, "meta": self.meta, "store": entry})
        return entry

    @staticmethod
    def load(stem: str | Path, verify: bool = True) -> Representations:
        """Read a saved pair whole; `dense` comes back float32 whatever the stored dtype.

        With `verify` (default) the tensor file's sha256 and the ids must match the sidecar's entry,
        else StoreError: damaged bytes are never used.
        """
        stem = Path(stem)
        ids, meta, entry = read_sidecar(stem)
        path = check_store_file(stem.with_suffix(".safetensors"), entry.get("bytes") if verify else None)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise StoreError(f"{path}: cannot read ({exc.strerror})") from None
        if verify:
            check_entry(stem, ids, entry, sha256_bytes(data))
        try:
            t = load(data)
        except Exception as exc:  # safetensors raises its own error types for a damaged header
            raise StoreError(f"{path}: not a readable safetensors file ({exc})") from None
        return _from_tensors(ids, t, meta)


FLOAT16_MAX = 65504.0
STORE_DTYPES: dict[str, torch.dtype] = {"float16": torch.float16, "bfloat16": torch.bfloat16,
                                        "float32": torch.float32}


class StoreError(RepbenchError):
    """A representations file that is missing, truncated, damaged or made from other inputs/options."""


def store_torch_dtype(name: str) -> torch.dtype:
    if name not in STORE_DTYPES:
        raise RepbenchError(f"store dtype must be one of {', '.join(STORE_DTYPES)}, got {name!r}")
    return STORE_DTYPES[name]


def check_store_file(path: str | Path, size: int | None = None) -> Path:
    """`path` if it is a regular file inside its store directory (a symlink may point only within it),
    of `size` bytes when given; else StoreError. Checked before a byte is read, so a shard that is (or
    links to) /dev/zero, a FIFO or a file outside the store is refused instead of read forever or trusted."""
    import os
    import stat

    path = Path(path)
    try:
        st = path.stat()
        link = path.is_symlink()
    except FileNotFoundError:
        raise StoreError(f"{path}: missing") from None
    except OSError as exc:
        raise StoreError(f"{path}: cannot read ({exc.strerror})") from None
    if link:
        target = Path(os.path.realpath(path))
        if target.parent != Path(os.path.realpath(path.parent)):
            raise StoreError(f"{path}: a symlink to {target}, outside the store directory; expected the "
                             "store's own file")
    if not stat.S_ISREG(st.st_mode):
        raise StoreError(f"{path}: not a regular file (a device, FIFO or directory); expected a store file")
    if size is not None and st.st_size != size:
        raise StoreError(f"{path}: {st.st_size} bytes, its entry says {size} (truncated or replaced: its sha256 "
                         "cannot match)")
    return path


_SIDECAR_MAX = 2**31  # ids of one shard: far above any real shard, far below a memory exhaustion


def read_sidecar(stem: str | Path) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    """(ids, meta, store entry) of `<stem>.json`; StoreError when unreadable or incomplete."""
    path = check_store_file(Path(stem).with_suffix(".json"))
    try:
        if path.stat().st_size > _SIDECAR_MAX:
            raise StoreError(f"{path}: larger than {_SIDECAR_MAX} bytes; not a shard sidecar")
        side = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"{path}: damaged sidecar ({exc})") from None
    if not isinstance(side, dict) or not isinstance(side.get("ids"), list) or not isinstance(side.get("store"), dict):
        raise StoreError(f"{path}: expected ids and a store entry with a sha256 (written by an older repbench?)")
    return [str(i) for i in side["ids"]], dict(side.get("meta") or {}), side["store"]


def check_entry(stem: str | Path, ids: list[str], entry: dict[str, Any], file_sha256: str) -> None:
    """Raise StoreError unless the tensor file's hash and the ids agree with the entry."""
    path = Path(stem).with_suffix(".safetensors")
    if file_sha256 != entry.get("sha256"):
        raise StoreError(f"{path}: sha256 {file_sha256[:12]}... differs from its manifest entry "
                         f"{str(entry.get('sha256'))[:12]}... (damaged or truncated)")
    if entry.get("rows") != len(ids) or entry.get("ids_sha256") != ids_hash(ids):
        raise StoreError(f"{Path(stem).with_suffix('.json')}: ids do not match the entry's rows/ids_sha256")


def load_rows(stem: str | Path, lo: int, hi: int, ids: list[str], meta: dict[str, Any],
              float32: bool = True) -> Representations:
    """Rows [lo, hi) of a saved pair, read lazily (only those bytes), `dense` converted to float32
    (`float32=False`: left in the stored dtype, for a scorer that converts block by block).

    No hashing here: verify the file once (`check_entry`) before streaming its chunks.
    """
    path = check_store_file(Path(stem).with_suffix(".safetensors"))
    try:
        with safe_open(str(path), framework="pt") as fh:
            t = {name: fh.get_slice(name)[lo:hi] for name in _TENSORS if name in fh.keys()}
    except Exception as exc:
        raise StoreError(f"{path}: cannot read rows {lo}:{hi} ({exc})") from None
    return _from_tensors(ids[lo:hi], t, meta, float32)


_TENSORS = ("dense", "valid", "sparse_ids", "sparse_weights", "token_ids", "input_tokens")


def _from_tensors(ids: list[str], t: dict[str, torch.Tensor], meta: dict[str, Any],
                  float32: bool = True) -> Representations:
    missing = [name for name in _TENSORS if name not in t]
    if missing:
        raise StoreError(f"representations file lacks tensor(s) {', '.join(missing)}")
    return Representations(
        ids=ids, dense=t["dense"].float() if float32 else t["dense"], valid=t["valid"].bool(), sparse_ids=t["sparse_ids"].long(),
        sparse_weights=t["sparse_weights"].float(), token_ids=t["token_ids"], input_tokens=t["input_tokens"],
        meta=meta,
    )
