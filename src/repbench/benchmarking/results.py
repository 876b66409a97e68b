"""Typed results of one bench cell: latency, throughput, step times, memory, energy, NVML state.

Each record writes its own keys with `to_json()` and reads them back with `from_json()`; a cell's
`extra_info` (docs/contracts.md, "Latency: pytest-benchmark JSON") is the records' keys side by side,
flat and in this order, so the JSON is the one readers already parse. The records only carry values: the
passes that fill them live in harness.py.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

from repbench.errors import RepbenchError


class FlatRecord:
    """A dataclass written as flat extra_info keys, one per field, in field order.

    Fields named in OPTIONAL are left out while None: keys that only some devices or encoders write (and
    that older files lack), so reading a cell and writing it again gives the same keys. Every other field
    is written even when None (null in the JSON: "not measured here", as the contract says).
    """

    OPTIONAL: ClassVar[tuple[str, ...]] = ()

    def to_json(self) -> dict[str, Any]:
        out = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if not (value is None and f.name in self.OPTIONAL):
                out[f.name] = value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Any:
        names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        missing = [n for n in names if n not in data and n not in cls.OPTIONAL]
        if missing:
            raise RepbenchError(f"bench cell extra_info lacks {', '.join(missing)} ({cls.__name__} keys)")
        return cls(**{n: data.get(n) for n in names})


@dataclass
class Latency(FlatRecord):
    """The timing pass: every raw sample (device timer and host clock) and their summary."""

    timer: str
    block_size: int | None  # sub-ms cells: each sample is a block of this many calls, divided back
    warmup_iterations: int
    warmup_median_s: float | None
    rounds: int
    samples_s: list[float]
    host_samples_s: list[float]
    stats: dict[str, Any]  # repbench.stats.summarize(samples_s)
    host_median_s: float
    cpu_time_s_per_iter: float | None


@dataclass
class Throughput(FlatRecord):
    queries_per_s: float | None
    tokens_per_s: float | None  # None for search cells (no input text)


@dataclass
class StepTimes(FlatRecord):
    """Per-iteration step times from the encoder's marks: prefill/decode/tail for the sequential encoder,
    the model-only time for every encoder that marks its forwards; absent where there are no marks."""

    OPTIONAL = ("prefill_s", "decode_step_s", "tail_s", "model_s", "model_median_s")
    prefill_s: list[float | None] | None = None
    decode_step_s: list[list[float]] | None = None
    tail_s: list[float | None] | None = None
    model_s: list[float] | None = None
    model_median_s: float | None = None


@dataclass
class NvmlSummary(FlatRecord):
    """What the NVML sampler saw over the memory pass (repbench.telemetry.nvml.NvmlSampler.summary)."""

    nvml_samples: int
    nvml_interval_s: float
    nvml_memory_used_peak_bytes: int | None
    nvml_process_memory_peak_bytes: int | None
    gpu_utilization_mean_pct: float | None
    gpu_utilization_max_pct: float | None
    power_mean_w: float | None
    power_max_w: float | None
    sm_clock_min_mhz: int | None
    sm_clock_max_mhz: int | None
    mem_clock_min_mhz: int | None
    mem_clock_max_mhz: int | None
    throttle_reasons: int | None
    throttle_reason_names: list[str] | None
    throttle_suspect: bool | None


@dataclass
class Memory(FlatRecord):
    """The memory pass: torch peaks on a GPU, peak RSS on the host, and the NVML sampler's summary."""

    OPTIONAL = ("nvml",)
    torch_peak_allocated_bytes: int | None
    torch_peak_reserved_bytes: int | None
    peak_rss_bytes: int | None
    rss_before_bytes: int | None
    rss_method: str | None
    peak_memory_bytes: int | None  # the process-wide reading: torch peak on a GPU, peak RSS on CPU
    peak_memory_kind: str
    nvml: NvmlSummary | None = None  # GPU with NVML only

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "nvml"}
        return {**out, **(self.nvml.to_json() if self.nvml is not None else {})}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Memory:
        record = super().from_json(data)  # "nvml" is no extra_info key (OPTIONAL: read as None), so:
        record.nvml = NvmlSummary.from_json(data) if "nvml_samples" in data else None
        return record


@dataclass
class Energy(FlatRecord):
    """The energy pass: NVML's total-energy counter over whole ticks (null on CPU; a note when it failed)."""

    OPTIONAL = ("energy_ticks", "energy_note")
    energy_window_s: float | None
    energy_iterations: int | None
    energy_ticks: int | None = None
    energy_note: str | None = None
    energy_j_per_query: float | None = None


@dataclass
class NvmlState(FlatRecord):
    """The GPU's clocks, temperature, power and throttle reasons, read just before or after the timing pass."""

    temperature_c: int | None
    sm_clock_mhz: int | None
    mem_clock_mhz: int | None
    power_w: float | None
    throttle_reasons: int | None
    throttle_reason_names: list[str] | None


def _state(data: dict[str, Any] | None) -> NvmlState | None:
    return None if data is None else NvmlState.from_json(data)


@dataclass
class Conditions:
    """The machine around the cell: NVML state before/after the timing pass, the telemetry fallback note,
    and the 1-minute load average before the warm-up and after the last pass."""

    nvml_state_before: NvmlState | None
    nvml_state_after: NvmlState | None
    telemetry_note: str | None
    load_avg_before: float | None
    load_avg_after: float | None

    def to_json(self) -> dict[str, Any]:
        before, after = self.nvml_state_before, self.nvml_state_after
        return {"nvml_state_before": before.to_json() if before is not None else None,
                "nvml_state_after": after.to_json() if after is not None else None,
                "telemetry_note": self.telemetry_note,
                "load_avg_before": self.load_avg_before, "load_avg_after": self.load_avg_after}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Conditions:
        missing = [k for k in ("nvml_state_before", "nvml_state_after", "telemetry_note") if k not in data]
        if missing:
            raise RepbenchError(f"bench cell extra_info lacks {', '.join(missing)} (Conditions keys)")
        # load_avg_* arrived later: a cell without them was not recorded (null), as the report reads it
        return cls(_state(data["nvml_state_before"]), _state(data["nvml_state_after"]), data["telemetry_note"],
                   data.get("load_avg_before"), data.get("load_avg_after"))


@dataclass
class Measurement:
    """Everything the harness measured for one cell (status "ok"), in extra_info order."""

    latency: Latency
    throughput: Throughput
    steps: StepTimes
    memory: Memory
    energy: Energy
    conditions: Conditions

    PARTS: ClassVar[tuple[str, ...]] = ("latency", "throughput", "steps", "memory", "energy", "conditions")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": "ok"}
        for part in self.PARTS:
            out.update(getattr(self, part).to_json())
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Measurement:
        if data.get("status") != "ok":
            raise RepbenchError(f"bench cell status is {data.get('status')!r}, not 'ok': it holds no measurement")
        return cls(Latency.from_json(data), Throughput.from_json(data), StepTimes.from_json(data),
                   Memory.from_json(data), Energy.from_json(data), Conditions.from_json(data))

    @property
    def median_s(self) -> float:
        return float(self.latency.stats["median"])
