"""One bench cell's whole extra_info, typed: an encode result, a search result, or a skipped cell.

`to_json()` gives the dict handed to pytest-benchmark's `extra_info` unchanged (docs/contracts.md,
"Latency"); `from_json()` reads a stored cell back (keys added after the run, such as `roofline` and
`goal_checks`, are not part of the measurement and are left to their own readers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from repbench.benchmarking.cells import EncodeCell, SearchCell
from repbench.benchmarking.results import FlatRecord, Measurement


@dataclass
class Setup(FlatRecord):
    """How the session ran every cell."""

    device: str
    dtype: str
    attn: str


@dataclass
class CellMemory(FlatRecord):
    """An encode cell's own peak memory, apart from other backbones resident in the process (memory.py)."""

    model_weights_bytes: int
    cell_peak_memory_isolated: bool
    cell_peak_memory_bytes: int | None
    cell_peak_memory_method: str


@dataclass
class EncodeResult:
    cell: EncodeCell
    setup: Setup
    measurement: Measurement
    model_input_tokens: int
    cold_start: dict[str, Any]  # the backbone's load and first call (harness.cold_start), shared by its cells
    forward_path: str | None = None  # files written before it was recorded lack it
    cell_memory: CellMemory | None = None  # likewise

    def to_json(self) -> dict[str, Any]:
        out = {**self.cell.to_json(), **self.setup.to_json(), **self.measurement.to_json(),
               "model_input_tokens": self.model_input_tokens, "cold_start": self.cold_start}
        if self.forward_path is not None:
            out["forward_path"] = self.forward_path
        if self.cell_memory is not None:
            out.update(self.cell_memory.to_json())
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EncodeResult:
        memory = CellMemory.from_json(data) if "model_weights_bytes" in data else None
        return cls(EncodeCell.from_json(data), Setup.from_json(data), Measurement.from_json(data),
                   data["model_input_tokens"], data["cold_start"], data.get("forward_path"), memory)


@dataclass
class SearchIndex(FlatRecord):
    """Where the search ran, and the sparse index's shape (sparse cells only)."""

    OPTIONAL = ("sparse_terms", "vocab_size")
    search_device: str
    sparse_terms: int | None = None
    vocab_size: int | None = None


@dataclass
class SearchResult:
    cell: SearchCell
    depth: int
    setup: Setup
    index: SearchIndex
    measurement: Measurement

    @property
    def ms_per_query(self) -> float:
        return self.measurement.median_s / self.cell.query_batch * 1e3

    def to_json(self) -> dict[str, Any]:
        return {**self.cell.to_json(self.depth), **self.setup.to_json(), **self.index.to_json(),
                **self.measurement.to_json(), "ms_per_query": self.ms_per_query}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchResult:
        cell, depth = SearchCell.from_json(data)
        return cls(cell, depth, Setup.from_json(data), SearchIndex.from_json(data), Measurement.from_json(data))


@dataclass
class SkipRecord(FlatRecord):
    """Why a cell has no measurement; the measured fields readers look for are present and empty."""

    reason: str
    telemetry_note: str | None

    def to_json(self) -> dict[str, Any]:
        return {"status": "skipped", "reason": self.reason, "samples_s": [], "peak_memory_bytes": None,
                "tokens_per_s": None, "queries_per_s": None, "energy_j_per_query": None,
                "telemetry_note": self.telemetry_note}
