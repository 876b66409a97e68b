"""Bench grid construction, ordering, the K-relative summary and the out-of-memory skip path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repbench.benchmarking.cells import EncodeCell, SearchCell, encode_cells, parse_int_list, search_cells
from repbench.benchmarking.encode_runner import EncodeCellRunner, LoadedBackbone
from repbench.benchmarking.harness import CellPlan, is_oom
from repbench.benchmarking.latency import format_relative_table, relative_latency_table
from repbench.benchmarking.search_runner import SearchCellRunner
from repbench.benchmarking.session import BenchSession
from repbench.benchmarking.workloads import sparse_rows, synthetic_text_ids, unit_vectors
from repbench.errors import RepbenchError

PAIR = [("tiny-ar", "ar"), ("tiny-diffusion", "diffusion")]
DEFAULT_ENC = {"ar": ["sequential"], "diffusion": ["parallel"]}


def test_interleaved_cells_alternate_families_and_cover_the_grid():
    cells = encode_cells(PAIR, DEFAULT_ENC.__getitem__, [1, 2, 4], [32, 128], [1, 8])
    assert len(cells) == 2 * 3 * 2 * 2
    assert [c.family for c in cells] == ["ar", "diffusion"] * 12
    assert {(c.k, c.input_tokens, c.batch_size) for c in cells} == {
        (k, n, b) for k in (1, 2, 4) for n in (32, 128) for b in (1, 8)}
    assert all(c.encoder == DEFAULT_ENC[c.family][0] for c in cells)


def test_shuffled_order_is_a_seeded_permutation():
    base = encode_cells(PAIR, DEFAULT_ENC.__getitem__, [1, 2, 4, 8], [32], [1])
    a = encode_cells(PAIR, DEFAULT_ENC.__getitem__, [1, 2, 4, 8], [32], [1], order="shuffle", seed=7)
    b = encode_cells(PAIR, DEFAULT_ENC.__getitem__, [1, 2, 4, 8], [32], [1], order="shuffle", seed=7)
    assert a == b and sorted(a, key=lambda c: c.id) == sorted(base, key=lambda c: c.id) and a != base
    with pytest.raises(RepbenchError):
        encode_cells(PAIR, DEFAULT_ENC.__getitem__, [1], [32], [1], order="random")


def test_search_grid_varies_kp_only_for_maxsim():
    cells = search_cells([1000, 10000], [1, 4, 16], 4, [1, 32], [64])
    kinds = {(c.kind, c.k_p) for c in cells}
    assert kinds == {("dense", 1), ("sparse", 1), ("maxsim", 1), ("maxsim", 4), ("maxsim", 16)}
    assert len(cells) == 2 * 2 * 5
    assert all(c.k_q == (4 if c.kind == "maxsim" else 1) for c in cells)
    with pytest.raises(RepbenchError):
        search_cells([10], [1], 1, [1], [8], kinds=["ivf"])


def test_parse_int_list_errors_name_the_option():
    assert parse_int_list("1, 2,16", "k") == [1, 2, 16]
    with pytest.raises(RepbenchError, match="--k"):
        parse_int_list("1,x", "k")
    with pytest.raises(RepbenchError, match="--batch-size"):
        parse_int_list("0", "batch-size")


def test_relative_table_divides_by_k1_median():
    results = [
        {"family": "ar", "backbone": "a", "encoder": "sequential", "input_tokens": 128, "batch_size": 1,
         "k": k, "median_s": 0.010 * k} for k in (1, 2, 16)
    ] + [
        {"family": "diffusion", "backbone": "d", "encoder": "parallel", "input_tokens": 128, "batch_size": 1,
         "k": k, "median_s": 0.020 + 0.0001 * k} for k in (1, 16)
    ] + [{"family": None, "backbone": None, "encoder": "search:dense", "input_tokens": None, "k": 1,
          "batch_size": 1, "median_s": 1.0}]
    rows = relative_latency_table(results)
    rel = {(r["backbone"], r["k"]): r["rel_k1"] for r in rows}
    assert rel[("a", 16)] == pytest.approx(16.0) and rel[("a", 2)] == pytest.approx(2.0)
    assert rel[("d", 16)] == pytest.approx(0.0216 / 0.0201)
    assert all(r["backbone"] is not None for r in rows)  # search cells are not in the K table
    text = format_relative_table(rows)
    assert "16.00" in text and "1.07" in text and "10.00" in text  # K=1 ms of the AR row


def test_workloads_have_exact_shapes_and_are_seeded():
    pool = np.arange(100, 200)
    ids = synthetic_text_ids(pool, 3, 17, seed=1)
    assert len(ids) == 3 and all(len(r) == 17 for r in ids)
    assert all(100 <= t < 200 for r in ids for t in r)
    assert ids == synthetic_text_ids(pool, 3, 17, seed=1) != synthetic_text_ids(pool, 3, 17, seed=2)
    v = unit_vectors(5, 3, 8, seed=0)
    assert v.shape == (5, 3, 8) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=-1), 1.0, rtol=1e-5)
    sid, sw = sparse_rows(4, 6, 50, seed=0)
    assert sid.shape == sw.shape == (4, 6) and sid.min() >= 0 and sid.max() < 50 and (sw > 0).all()


def _session() -> BenchSession:
    return BenchSession(device=torch.device("cpu"), dtype="float32", attn="sdpa",
                        plan=CellPlan(warmup=1, min_rounds=3, min_time_s=0.0, memory_iterations=1))


def test_out_of_memory_cell_is_recorded_skipped_and_other_errors_propagate(monkeypatch):
    import repbench.encoders as enc

    ctx = EncodeCellRunner(_session())
    ctx.loaded["fake"] = LoadedBackbone(backbone=object(), cold_start={}, pool=np.arange(10, 20))
    cell = EncodeCell("fake", "ar", "sequential", 4, 8, 1)

    def oom(*a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(enc, "encode_ids", oom)
    info = ctx.run(cell, lambda target, rounds: None)
    assert info["status"] == "skipped" and "out of memory" in info["reason"]
    assert info["samples_s"] == [] and info["peak_memory_bytes"] is None
    assert info["backbone"] == "fake" and info["k"] == 4
    assert [s.name for s in ctx.session.skipped] == [cell.id]

    def boom(*a, **k):
        raise ValueError("a real bug")

    monkeypatch.setattr(enc, "encode_ids", boom)
    with pytest.raises(ValueError, match="real bug"):
        ctx.run(cell, lambda target, rounds: None)


def test_is_oom_recognises_allocation_failures():
    assert is_oom(torch.OutOfMemoryError("x"))
    assert is_oom(MemoryError())
    assert is_oom(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 TB"))
    assert not is_oom(RuntimeError("shape mismatch"))


def test_search_cell_over_memory_cap_is_skipped_without_allocating():
    ctx = SearchCellRunner(_session(), max_bytes=1 << 20)
    info = ctx.run(SearchCell("maxsim", 10_000_000, 16, 4, 1, 4096), lambda t, r: None)
    assert info["status"] == "skipped" and "memory cap" in info["reason"]
    assert info["encoder"] == "search:maxsim" and info["index_size"] == 10_000_000 and info["k_p"] == 16


def test_search_cell_measures_real_search(monkeypatch):
    ctx = SearchCellRunner(_session())
    info = ctx.run(SearchCell("dense", 500, 1, 1, 4, 16), lambda target, rounds: [
        target() for _ in range(rounds)])
    assert info["status"] == "ok" and info["mode"] == "single_dense" and info["query_batch"] == 4
    assert len(info["samples_s"]) >= 3
    assert info["ms_per_query"] == pytest.approx(np.median(info["samples_s"]) / 4 * 1e3)
    assert info["queries_per_s"] == pytest.approx(4 / np.median(info["samples_s"]))


def test_single_pass_encoders_are_measured_at_k1_only():
    # issue 10: the registry's max K (1 for meanpool/lasttoken) shapes the grid; K=4 would be refused
    both = {"ar": ["sequential", "lasttoken"], "diffusion": ["parallel", "meanpool"]}
    cells = encode_cells(PAIR, both.__getitem__, [1, 4], [32], [1])
    assert sorted((c.encoder, c.k) for c in cells) == [
        ("lasttoken", 1), ("meanpool", 1), ("parallel", 1), ("parallel", 4), ("sequential", 1), ("sequential", 4)]


def test_search_memory_cap_is_the_given_gib_or_a_quarter_of_what_is_available(monkeypatch):
    import types

    from repbench.benchmarking import search_runner

    assert search_runner.memory_cap(torch.device("cpu"), 0.5) == 512 * 2**20
    monkeypatch.setattr(search_runner.psutil, "virtual_memory", lambda: types.SimpleNamespace(available=8_000_000))
    assert search_runner.memory_cap(torch.device("cpu")) == 2_000_000
