"""The typed bench results write the contract's extra_info keys (docs/contracts.md, "Latency") and read
them back unchanged; a failed backbone load is remembered by its reason, not by the exception."""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path

import pytest
import torch

from repbench.benchmarking.cell_results import EncodeResult, SearchResult
from repbench.benchmarking.cells import EncodeCell
from repbench.benchmarking.encode_runner import EncodeCellRunner
from repbench.benchmarking.harness import CellMeasurement, CellPlan
from repbench.benchmarking.results import Measurement, NvmlState
from repbench.benchmarking.session import BenchSession
from repbench.errors import RepbenchError

BASELINES = sorted((Path(__file__).resolve().parents[1] / "results" / "baselines").glob("*/bench.json"))
AFTER_THE_RUN = ("roofline", "goal_checks")  # added to a cell after it was measured, by their own writers

# The measured keys of a CPU cell without step marks, in the order the contract's writer has always used
# (copied from a bench JSON written before the results were typed).
CPU_KEYS = ["status", "timer", "block_size", "warmup_iterations", "warmup_median_s", "rounds", "samples_s",
            "host_samples_s", "stats", "host_median_s", "cpu_time_s_per_iter", "queries_per_s", "tokens_per_s",
            "torch_peak_allocated_bytes", "torch_peak_reserved_bytes", "peak_rss_bytes", "rss_before_bytes",
            "rss_method", "peak_memory_bytes", "peak_memory_kind", "energy_window_s", "energy_iterations",
            "energy_j_per_query", "nvml_state_before", "nvml_state_after", "telemetry_note", "load_avg_before",
            "load_avg_after"]


def _stored_cells() -> list[tuple[str, dict]]:
    cells = []
    for path in BASELINES:
        for bench in json.loads(path.read_text())["benchmarks"]:
            if bench["extra_info"].get("status") == "ok":
                cells.append((f"{path.parent.name}:{bench['name']}", bench["extra_info"]))
    return cells


def test_there_is_a_stored_baseline_with_both_cell_kinds():
    encoders = {info["encoder"] for _, info in _stored_cells()}
    assert "sequential" in encoders and {"search:dense", "search:maxsim", "search:sparse"} <= encoders


@pytest.mark.parametrize("name,info", _stored_cells(), ids=[n for n, _ in _stored_cells()])
def test_a_stored_baseline_cell_reads_back_to_the_same_keys_and_values(name, info):
    kind = SearchResult if info["encoder"].startswith("search:") else EncodeResult
    result = kind.from_json(info)
    expected = {k: v for k, v in info.items() if k not in AFTER_THE_RUN}
    written = result.to_json()
    assert list(written) == list(expected)  # same keys, same order: the same bytes once dumped
    assert json.dumps(written) == json.dumps(expected)
    assert kind.from_json(written) == result


def _gpu_cell() -> dict:
    """A GPU encode cell as the contract describes it, written by hand: NVML sampler summary, energy with
    counter ticks, NVML state before/after, sequential step times, model-only times, its own peak memory."""
    state = {"temperature_c": 51, "sm_clock_mhz": 1980, "mem_clock_mhz": 2619, "power_w": 312.5,
             "throttle_reasons": 0, "throttle_reason_names": []}
    return {
        "backbone": "qwen2.5-7b-instruct", "family": "ar", "encoder": "sequential", "k": 2, "input_tokens": 32,
        "batch_size": 1, "device": "cuda:0", "dtype": "bfloat16", "attn": "sdpa", "status": "ok",
        "timer": "cuda_event", "block_size": None, "warmup_iterations": 10, "warmup_median_s": 0.02, "rounds": 3,
        "samples_s": [0.02, 0.021, 0.019], "host_samples_s": [0.0201, 0.0211, 0.0191],
        "stats": {"n": 3, "median": 0.02, "flag": "ok"}, "host_median_s": 0.0201, "cpu_time_s_per_iter": 0.003,
        "queries_per_s": 50.0, "tokens_per_s": 1600.0,
        "prefill_s": [0.01, 0.011, 0.009], "decode_step_s": [[0.005], [0.005], [0.005]],
        "tail_s": [0.005, 0.005, 0.005], "model_s": [0.019, 0.02, 0.018], "model_median_s": 0.019,
        "torch_peak_allocated_bytes": 16_000_000_000, "torch_peak_reserved_bytes": 16_500_000_000,
        "peak_rss_bytes": 3_000_000_000, "rss_before_bytes": 2_900_000_000, "rss_method": "vmhwm_reset",
        "peak_memory_bytes": 16_000_000_000, "peak_memory_kind": "torch_max_memory_allocated",
        "nvml_samples": 40, "nvml_interval_s": 0.005, "nvml_memory_used_peak_bytes": 17_000_000_000,
        "nvml_process_memory_peak_bytes": 16_900_000_000, "gpu_utilization_mean_pct": 93.5,
        "gpu_utilization_max_pct": 100, "power_mean_w": 400.0, "power_max_w": 450.0, "sm_clock_min_mhz": 1950,
        "sm_clock_max_mhz": 1980, "mem_clock_min_mhz": 2619, "mem_clock_max_mhz": 2619, "throttle_reasons": 4,
        "throttle_reason_names": ["sw_power_cap"], "throttle_suspect": True,
        "energy_window_s": 1.2, "energy_iterations": 60, "energy_ticks": 12, "energy_j_per_query": 8.0,
        "nvml_state_before": state, "nvml_state_after": {**state, "temperature_c": 55},
        "telemetry_note": None, "load_avg_before": 0.5, "load_avg_after": 0.75,
        "model_input_tokens": 40, "cold_start": {"load_s": 3.0, "first_call_s": 0.5},
        "forward_path": "read-columns (Qwen2Model adapter, transformers 4.x)",
        "model_weights_bytes": 15_000_000_000, "cell_peak_memory_isolated": True,
        "cell_peak_memory_bytes": 15_800_000_000, "cell_peak_memory_method": "weights + torch peak allocated",
    }


def test_a_gpu_cell_round_trips_with_every_optional_block():
    info = _gpu_cell()
    result = EncodeResult.from_json(info)
    assert result.measurement.memory.nvml is not None and result.measurement.memory.nvml.throttle_suspect
    assert result.measurement.conditions.nvml_state_after == NvmlState(55, 1980, 2619, 312.5, 0, [])
    assert result.measurement.energy.energy_ticks == 12 and result.measurement.steps.decode_step_s == [[0.005]] * 3
    assert list(result.to_json()) == list(info) and result.to_json() == info
    assert EncodeResult.from_json(result.to_json()) == result


def test_a_failed_energy_window_keeps_its_note_and_has_no_ticks():
    info = {k: v for k, v in _gpu_cell().items() if k != "energy_ticks"}
    info.update(energy_j_per_query=None, energy_note="energy counter did not move within 2 s")
    keys = list(info)
    keys.insert(keys.index("energy_j_per_query"), keys.pop(keys.index("energy_note")))
    info = {k: info[k] for k in keys}  # the note sits before the per-query energy, as the writer puts it
    assert EncodeResult.from_json(info).to_json() == info and list(EncodeResult.from_json(info).to_json()) == keys


def test_reading_a_cell_names_what_is_missing_or_why_it_holds_no_measurement():
    info = _gpu_cell()
    del info["host_median_s"]
    with pytest.raises(RepbenchError, match="host_median_s"):
        Measurement.from_json(info)
    with pytest.raises(RepbenchError, match="'skipped'"):
        Measurement.from_json({"status": "skipped", "reason": "out of memory"})


def test_a_measured_cpu_cell_writes_the_contract_keys_in_order():
    m = CellMeasurement(lambda cb: sum(range(100)), "cpu",
                        CellPlan(warmup=2, min_rounds=3, min_time_s=0.0, memory_iterations=1))
    m.run()
    fields = m.fields(batch_size=2, tokens_per_query=None)
    assert list(fields) == CPU_KEYS
    assert fields["energy_j_per_query"] is None and fields["tokens_per_s"] is None and fields["rounds"] == 3
    assert Measurement.from_json(fields).to_json() == fields


class _HalfBuilt:
    """Stands for a model whose weights were partly allocated when the load ran out of memory."""


def test_a_failed_load_is_remembered_by_its_reason_and_frees_the_half_built_model(monkeypatch):
    import repbench.backbones as backbones

    built: list[weakref.ref] = []
    calls = []

    def load_backbone(name, **kw):
        calls.append(name)
        model = _HalfBuilt()  # held by this frame, which an exception's traceback keeps alive
        built.append(weakref.ref(model))
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB\nmore detail")

    monkeypatch.setattr(backbones, "load_backbone", load_backbone)
    runner = EncodeCellRunner(BenchSession(device=torch.device("cpu"), dtype="float32", attn="sdpa",
                                           plan=CellPlan()))
    first = runner.run(EncodeCell("big", "ar", "sequential", 1, 32, 1), lambda target, rounds: None)
    second = runner.run(EncodeCell("big", "ar", "sequential", 4, 32, 1), lambda target, rounds: None)
    assert calls == ["big"]  # not retried for the backbone's next cell
    reason = "out of memory: CUDA out of memory. Tried to allocate 20.00 GiB"
    assert first["status"] == second["status"] == "skipped" and first["reason"] == second["reason"] == reason
    assert runner.failed == {"big": reason} and runner.loaded == {}
    gc.collect()
    assert built[0]() is None, "the half-built model outlived its failed load"


def test_an_out_of_memory_error_without_a_message_still_gives_a_reason(monkeypatch):
    import repbench.backbones as backbones

    def load_backbone(name, **kw):
        raise MemoryError()

    monkeypatch.setattr(backbones, "load_backbone", load_backbone)
    runner = EncodeCellRunner(BenchSession(device=torch.device("cpu"), dtype="float32", attn="sdpa",
                                           plan=CellPlan()))
    info = runner.run(EncodeCell("big", "ar", "sequential", 1, 32, 1), lambda target, rounds: None)
    assert info["reason"] == "out of memory: MemoryError"


NVML_SUMMARY_KEYS = ["nvml_samples", "nvml_interval_s", "nvml_memory_used_peak_bytes", "nvml_process_memory_peak_bytes",
                     "gpu_utilization_mean_pct", "gpu_utilization_max_pct", "power_mean_w", "power_max_w",
                     "sm_clock_min_mhz", "sm_clock_max_mhz", "mem_clock_min_mhz", "mem_clock_max_mhz",
                     "throttle_reasons", "throttle_reason_names", "throttle_suspect"]


def test_a_cell_measured_with_nvml_writes_the_sampler_block_after_memory_and_the_ticks_after_energy():
    from test_telemetry_nvml import FakeNVML, fake_device  # NVML's real reader over a fake library

    fake = FakeNVML()
    plan = CellPlan(warmup=2, min_rounds=5, min_time_s=0.0, max_time_s=1.0, memory_iterations=5, energy_window_s=0.1)
    m = CellMeasurement(lambda cb: fake.workload(), "cpu", plan, nvml=fake_device(fake))
    m.run()
    fields = m.fields(batch_size=2, tokens_per_query=16)
    at = CPU_KEYS.index("peak_memory_kind") + 1
    expected = CPU_KEYS[:at] + NVML_SUMMARY_KEYS + CPU_KEYS[at:]
    expected.insert(expected.index("energy_iterations") + 1, "energy_ticks")
    assert list(fields) == expected
    assert Measurement.from_json(fields).to_json() == fields
