"""The one output type of every encoder, and its on-disk form (safetensors + ids JSON)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save

from repbench.io import atomic_write_bytes, atomic_write_json


@dataclass
class Representations:
    """K representatives per item.

    dense          float32 [N, K, H]  last-layer hidden states at the K readout positions, NOT normalised;
                                      invalid slots are all-zero
    valid          bool    [N, K]     slot validity (stop-token truncation, method-spec §3.6)
    sparse_ids     int64   [N, M]     vocabulary ids of the max-pooled sparse vector, -1 = padding
    sparse_weights float32 [N, M]     their weights (log1p(relu(logit)), top-128 per slot, x100 truncated)
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
        """Slot vectors L2-normalised (zero slots stay zero), as the evaluator does (method-spec §6.1)."""
        return torch.nn.functional.normalize(self.dense, dim=-1, eps=1e-12)

    def sparse_dense_matrix(self, vocab_size: int) -> torch.Tensor:
        """Sparse vectors as a dense [N, V] float32 matrix (for small collections and tests)."""
        out = torch.zeros(len(self), vocab_size, dtype=torch.float32)
        mask = self.sparse_ids >= 0
        rows = torch.arange(len(self)).unsqueeze(1).expand_as(self.sparse_ids)[mask]
        out[rows, self.sparse_ids[mask]] = self.sparse_weights[mask]
        return out

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

    # ---- on disk: <stem>.safetensors (tensors) + <stem>.json (ids + meta) -------------------------
    def save(self, stem: str | Path) -> None:
        """Write atomically; the .json is written last, so its presence marks a complete shard."""
        stem = Path(stem)
        tensors = {
            "dense": self.dense.contiguous(), "valid": self.valid.to(torch.uint8).contiguous(),
            "sparse_ids": self.sparse_ids.contiguous(), "sparse_weights": self.sparse_weights.contiguous(),
            "token_ids": self.token_ids.contiguous(), "input_tokens": self.input_tokens.contiguous(),
        }
        atomic_write_bytes(stem.with_suffix(".safetensors"), save(tensors))
        atomic_write_json(stem.with_suffix(".json"), {"ids": self.ids, "meta": self.meta})

    @staticmethod
    def load(stem: str | Path) -> Representations:
        stem = Path(stem)
        t = load_file(str(stem.with_suffix(".safetensors")))
        side = json.loads(stem.with_suffix(".json").read_text())
        return Representations(
            ids=side["ids"], dense=t["dense"], valid=t["valid"].bool(), sparse_ids=t["sparse_ids"],
            sparse_weights=t["sparse_weights"], token_ids=t["token_ids"], input_tokens=t["input_tokens"],
            meta=side.get("meta", {}),
        )
