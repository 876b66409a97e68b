"""The bench grids: encode and search cells, their ids, and the drift-cancelling order they run in."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from repbench.benchmarking.results import FlatRecord
from repbench.errors import RepbenchError

SEARCH_KINDS = ("dense", "maxsim", "sparse")
SEARCH_MODES = {"dense": "single_dense", "maxsim": "multi_dense", "sparse": "sparse_max"}


def parse_int_list(text: str, name: str) -> list[int]:
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise RepbenchError(f"--{name}: expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values) or max(values) > 2**31 - 1:
        raise RepbenchError(f"--{name}: expected positive integers up to 2**31 - 1, got {text!r}")
    return values


def parse_str_list(text: str) -> list[str]:
    return [v.strip() for v in str(text).split(",") if v.strip()]


@dataclass(frozen=True)
class EncodeCell(FlatRecord):
    """One encoding cell; its fields are its identity keys in extra_info, in this order."""

    backbone: str
    family: str
    encoder: str
    k: int
    input_tokens: int
    batch_size: int

    @property
    def id(self) -> str:
        return f"{self.backbone}-{self.encoder}-k{self.k}-L{self.input_tokens}-b{self.batch_size}"


@dataclass(frozen=True)
class SearchCell:
    kind: str  # dense | maxsim | sparse
    index_size: int
    k_p: int
    k_q: int
    query_batch: int
    dim: int

    @property
    def encoder(self) -> str:
        return f"search:{self.kind}"

    @property
    def id(self) -> str:
        return f"{self.kind}-N{self.index_size}-kp{self.k_p}-q{self.query_batch}-H{self.dim}"

    def to_json(self, depth: int) -> dict[str, Any]:
        """The cell's identity keys in extra_info: the encode cells' keys (no backbone, K = K_p, batch = the
        query batch) so one reader takes both, then the search's own."""
        return {"backbone": None, "family": None, "encoder": self.encoder, "mode": SEARCH_MODES[self.kind],
                "k": self.k_p, "k_p": self.k_p, "k_q": self.k_q, "index_size": self.index_size,
                "query_batch": self.query_batch, "batch_size": self.query_batch, "input_tokens": None,
                "dim": self.dim, "depth": depth}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> tuple[SearchCell, int]:
        """The cell and its search depth, from a search cell's extra_info."""
        kind = str(data["encoder"]).removeprefix("search:")
        if kind not in SEARCH_KINDS:
            raise RepbenchError(f"not a search cell: encoder {data['encoder']!r}")
        return cls(kind, data["index_size"], data["k_p"], data["k_q"], data["query_batch"], data["dim"]), data["depth"]


def encode_cells(
    backbones: Sequence[tuple[str, str]],
    encoders_for: Callable[[str], Sequence[str]],
    ks: Sequence[int],
    lengths: Sequence[int],
    batches: Sequence[int],
    order: str = "interleave",
    seed: int = 0,
) -> list[EncodeCell]:
    """Every (backbone, encoder, K, length, batch) cell, in a drift-cancelling order (docs/methodology.md rule 14).

    `interleave`: for each shape, the backbones in turn (ABAB...), so AR and diffusion cells alternate.
    `shuffle`: a seeded random permutation of all cells. A single-pass encoder (registry max K of 1)
    gives one vector whatever K is asked for, so it is measured at K=1 only.
    """
    from repbench.encoders.registry import get_encoder

    cells = []
    for length in lengths:
        for b in batches:
            for k in ks:
                for name, family in backbones:
                    for enc in encoders_for(family):
                        if get_encoder(enc).max_k == 1 and k > 1:
                            continue
                        cells.append(EncodeCell(name, family, enc, k, length, b))
    if order == "shuffle":
        random.Random(seed).shuffle(cells)
    elif order != "interleave":
        raise RepbenchError(f"--order: expected 'interleave' or 'shuffle', got {order!r}")
    return cells


def search_cells(
    sizes: Sequence[int], k_ps: Sequence[int], k_q: int, batches: Sequence[int], dims: Sequence[int],
    kinds: Sequence[str] = SEARCH_KINDS,
) -> list[SearchCell]:
    """The search grid. K_p only varies MaxSim; single-vector and sparse cells carry k_p = 1."""
    out = []
    for dim in dims:
        for n in sizes:
            for qb in batches:
                for kind in kinds:
                    if kind not in SEARCH_KINDS:
                        raise RepbenchError(f"unknown search kind {kind!r}; use {', '.join(SEARCH_KINDS)}")
                    for kp in (k_ps if kind == "maxsim" else [1]):
                        out.append(SearchCell(kind, n, kp, k_q if kind == "maxsim" else 1, qb, dim))
    return out


def search_index_bytes(cell: SearchCell, sparse_terms: int) -> int:
    """Bytes the synthetic index for a cell needs (a conservative estimate used for the memory cap)."""
    if cell.kind == "dense":
        return cell.index_size * cell.dim * 4 * 4  # the rows, their unit and mean vectors, faiss's own copy
    if cell.kind == "maxsim":
        return cell.index_size * cell.k_p * cell.dim * 4 * 2  # the rows and their unit vectors
    return cell.index_size * sparse_terms * (8 + 4) * 4  # ids + weights, CSR copies inside search
