"""What every bench cell of a session shares: device, plan, telemetry, the skipped cells and the summary rows.

The encode-cell runner (encode_runner.py) and the search-cell runner (search_runner.py) each hold one;
bench/conftest.py builds it once per pytest session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from repbench.benchmarking.cell_results import Setup, SkipRecord
from repbench.benchmarking.harness import CellMeasurement, CellPlan, RoundsRunner
from repbench.benchmarking.results import Measurement
from repbench.telemetry.nvml import NvmlDevice

SKIPPED_GROUP = "skipped"
_NAN_STATS = ("min", "max", "mean", "stddev", "median", "iqr", "q1", "q3", "ld15iqr", "hd15iqr", "ops")


@dataclass
class Skipped:
    """A cell that could not run (out of memory, over the memory cap, failed load) and why."""

    name: str
    extra_info: dict[str, Any]

    def as_benchmark(self) -> dict[str, Any]:
        """The cell as a `benchmarks[]` entry that `pytest-benchmark compare` loads and tabulates.

        pytest-benchmark needs every stats field as a number; a skipped cell has no timing, so its times
        are NaN (shown as "nan", never ranked best) over 0 rounds, in its own group so it never sets
        the scale of measured cells. repbench readers recognise it by `extra_info.status == "skipped"`.
        """
        stats: dict[str, Any] = dict.fromkeys(_NAN_STATS, float("nan"))
        stats.update(rounds=0, iterations=1, total=0.0, iqr_outliers=0, stddev_outliers=0, outliers="0;0")
        return {"group": SKIPPED_GROUP, "name": self.name, "fullname": self.name, "params": None, "param": None,
                "extra_info": self.extra_info, "options": {}, "stats": stats}


@dataclass
class BenchSession:
    """Session state shared by the cell runners; `results` feeds the end-of-run K table."""

    device: torch.device
    dtype: str
    attn: str
    plan: CellPlan
    nvml: NvmlDevice | None = None
    telemetry_note: str | None = None
    seed: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def setup(self) -> Setup:
        return Setup(device=str(self.device), dtype=self.dtype, attn=self.attn)

    def base_info(self) -> dict[str, Any]:
        return self.setup.to_json()

    def skip(self, name: str, info: dict[str, Any], reason: str) -> dict[str, Any]:
        """Record a cell that could not run; returns its extra_info (identity keys, then why)."""
        extra = {**info, **SkipRecord(reason, self.telemetry_note).to_json()}
        self.skipped.append(Skipped(name, extra))
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        return extra

    def measure(self, fn: Callable[[Any], Any], runner: RoundsRunner, batch_size: int,
                tokens_per_query: int | None, plan: CellPlan | None = None) -> tuple[Measurement, Any]:
        """One measured cell, and the result of its first (warm-up) call."""
        m = CellMeasurement(fn, self.device, plan or self.plan, nvml=self.nvml, telemetry_note=self.telemetry_note)
        m.run(runner)
        return m.measurement(batch_size=batch_size, tokens_per_query=tokens_per_query), m.first_result


def oom_reason(exc: BaseException) -> str:
    """The skip reason of an out-of-memory failure: its first line, kept short (a bare MemoryError has none)."""
    first = (str(exc).splitlines() or [type(exc).__name__])[0]
    return f"out of memory: {first[:300]}"
