"""Every GPU path with its tensors on torch's `meta` device, made as strict as CUDA (tests/device_check.py).

A tensor created on the CPU and mixed with the model's or the index's tensors fails here as it would on
a GPU; only the final host copies are stood in for (zeros of the right shape). Covered: every encoder
(signals on), the sweep's scoring, in-memory and streaming search, the top-k merges behind them, one
bench encode cell (full-size `:random` shapes) and one search cell. The same tests count where the code
waits for the device: once per batch for its results, never per row, per decode step or per chunk.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from device_check import OffDevice

from repbench.backbones import load_backbone
from repbench.benchmarking.cells import EncodeCell, SearchCell
from repbench.benchmarking.encode_runner import EncodeCellRunner
from repbench.benchmarking.harness import CellPlan
from repbench.benchmarking.search_runner import SearchCellRunner
from repbench.benchmarking.session import BenchSession
from repbench.encoders import encode
from repbench.encoders.types import Representations
from repbench.evaluation.sweep import SweepConfig, score_cell
from repbench.retrieval.multivector import maxsim_search
from repbench.retrieval.search import MODES, retrieve
from repbench.retrieval.streaming import stream_retrieve

META = torch.device("meta")
TEXTS = ["Information retrieval with language models.",
         "The cat sat on the mat near the window while it rained all afternoon in the old town.",
         "Diffusion models read masked positions in parallel."]
RESULT_COPY = "repbench/encoders/host.py:<listcomp>"  # to_host: an encoder batch's one wait
SIGNALS = "repbench/encoders/signals.py:batch_signals"


@pytest.fixture(scope="module")
def on_meta():
    return {name: load_backbone(name, device="meta") for name in ("tiny-ar", "tiny-diffusion")}


ENCODERS = [("tiny-ar", "sequential", {}), ("tiny-ar", "sequential", {"early_stop": "upstream"}),
            ("tiny-ar", "sequential", {"early_stop": "strict"}),
            ("tiny-diffusion", "parallel", {}), ("tiny-diffusion", "parallel", {"denoise_steps": 3}),
            ("tiny-diffusion", "meanpool", {}), ("tiny-ar", "lasttoken", {})]


@pytest.mark.parametrize(("backbone", "encoder", "opts"), ENCODERS,
                         ids=[f"{e}-{'-'.join(f'{n}={v}' for n, v in o.items()) or 'default'}" for _, e, o in ENCODERS])
def test_every_encoder_runs_on_the_device_with_signals(on_meta, backbone, encoder, opts):
    bb = on_meta[backbone]
    k = 1 if encoder in ("meanpool", "lasttoken") else 4
    got = []
    with OffDevice() as dev:
        reps = encode(bb, TEXTS, encoder=encoder, k=k, batch_size=2, on_signals=lambda i, a: got.append(a), **opts)
    assert reps.dense.device.type == "cpu" and reps.dense.shape == (3, k, bb.hidden_size)
    assert reps.valid.shape == reps.token_ids.shape == (3, k) and reps.sparse_ids.device.type == "cpu"
    assert len(got) == 1 and len(got[0]["text_tokens"]) == 3
    # results reach the host through to_host (once per batch) and the signals, nothing else of ours
    ours = {a for a in dev.copies | dev.reads if a.startswith("repbench/")}
    allowed = {RESULT_COPY, SIGNALS} | ({"repbench/encoders/sequential.py:forward_sequential"}
                                        if opts.get("early_stop") else set())  # the method's own stop test
    assert ours <= allowed, ours


@pytest.mark.parametrize(("backbone", "encoder", "opts"), [e for e in ENCODERS if not e[2].get("early_stop")],
                         ids=[f"{e}-{'-'.join(o) or 'default'}" for _, e, o in ENCODERS if not o.get("early_stop")])
def test_one_wait_per_batch_whatever_k_and_rows(on_meta, backbone, encoder, opts):
    """Host copies per batch do not grow with K (decode steps, denoise passes) or with the rows of the
    batch (the sparse head); with one unpadded row, nothing at all reads the device back mid-batch."""
    bb = on_meta[backbone]
    counts = {}
    for k, rows in ((1, 1), (5, 1), (5, 3)):
        k = 1 if encoder in ("meanpool", "lasttoken") else k
        with OffDevice() as dev:
            encode(bb, TEXTS[:rows], encoder=encoder, k=k, batch_size=3, **opts)
        counts[(k, rows)] = dev.copies
        if rows == 1:
            assert not dev.reads, dev.reads  # not ours, not transformers' (no mask: nothing to inspect)
    assert len({tuple(sorted(c.items())) for c in counts.values()}) == 1, counts
    assert set(counts[(k, 1)]) == {RESULT_COPY}


def test_encode_time_signals_of_a_device_batch():
    """The signals read off one batch on the model's device (the sparse weights are already on the host)."""
    from repbench.encoders.signals import batch_signals

    b, k, h, v = 3, 4, 16, 50
    with OffDevice():
        out = batch_signals(torch.empty(b, k, v, device=META), torch.zeros(b, k, dtype=torch.long, device=META),
                            torch.ones(b, k, dtype=torch.bool, device=META), torch.empty(b, k, h, device=META),
                            torch.ones(b, 5), [4, 5, 6], [20, 21, 22])
    assert out["mean_pairwise_cosine"].shape == (b,) and out["entropy"].shape == (b, k)


def _meta_reps(ids: list[str], k: int, hidden: int = 16, width: int = 6) -> Representations:
    n = len(ids)
    return Representations(ids=ids, dense=torch.empty(n, k, hidden, device=META),
                           valid=torch.ones(n, k, dtype=torch.bool, device=META),
                           sparse_ids=torch.zeros(n, width, dtype=torch.long, device=META),
                           sparse_weights=torch.ones(n, width, device=META),
                           token_ids=torch.zeros(n, k, dtype=torch.long, device=META),
                           input_tokens=torch.full((n,), 9, dtype=torch.long), meta={"vocab_size": 50})


def test_maxsim_search_and_its_top_k_merges_stay_on_the_device():
    """300 queries (two query blocks) over 1,000 documents in chunks of 37: many running top-k merges,
    and the results come back to the host once, at the end."""
    with OffDevice() as dev:
        scores, idx = maxsim_search(torch.empty(300, 3, 16, device=META), torch.empty(1000, 2, 16, device=META),
                                    20, chunk_docs=37)
    assert scores.shape == idx.shape == (300, 20) and isinstance(scores, np.ndarray)
    assert sum(dev.copies.values()) == 2 and not dev.reads  # scores and indices, once


def test_the_one_top_k_stays_on_the_device():
    """repbench.retrieval.topk: blocks merged on the device, no host copy or read until the caller asks."""
    from repbench.retrieval.topk import RunningTopK, topk

    with OffDevice() as dev:
        top = RunningTopK(5, 7, device=META)
        for lo in range(0, 100, 30):
            n = min(30, 100 - lo)
            top.add(torch.empty(5, n, device=META), torch.arange(lo, lo + n, device=META))
        s, k = top.result()
        s1, k1 = topk(torch.empty(5, 40, device=META), torch.arange(40, device=META), 9)
    assert s.shape == k.shape == (5, 7) and s.device.type == k.device.type == "meta"
    assert s1.shape == k1.shape == (5, 9) and k.dtype == torch.long
    assert not dev.copies and not dev.reads


def test_in_memory_search_in_every_mode_on_the_device():
    docs = _meta_reps([f"d{i}" for i in range(40)], k=3)
    queries = _meta_reps(["q1", "q2", "d5"], k=2)
    with OffDevice():
        runs = retrieve(queries, docs, MODES, depth=10, vocab_size=50)
    assert set(runs) == set(MODES) and all(len(r) == 3 for r in runs.values())


def test_streaming_search_on_the_device():
    docs = _meta_reps([f"d{i:03d}" for i in range(90)], k=3)
    queries = _meta_reps(["q1", "d004"], k=2)
    with OffDevice():
        runs = stream_retrieve(queries, docs, MODES, depth=7, chunk_docs=25)
    # (the stand-in host copies are zeros, so the lists' contents mean nothing here: placement does)
    assert set(runs) == set(MODES) and all(set(r) == {"q1", "d004"} for r in runs.values())


def test_sweep_scoring_on_the_device():
    qrels = {"q1": {"d1": 1}, "q2": {"d7": 2}}
    config = SweepConfig(backbone="tiny-ar", encoder="sequential", kq=[2], kp=[3], depth=10)
    with OffDevice():
        runs, table = score_cell(qrels, "synthetic", config, "ar", 50, _meta_reps(["q1", "q2"], 2),
                                 _meta_reps([f"d{i}" for i in range(30)], 3), 2, 3)
    assert set(runs) == set(MODES) and set(table["mode"]) == set(MODES)


def _plan() -> CellPlan:
    return CellPlan(warmup=1, min_rounds=3, min_time_s=0.0, max_time_s=5.0, memory_iterations=1)


def test_bench_encode_cell_at_full_size_on_the_device():
    """qwen2.5-7b-instruct:random at its real shapes (28 layers, hidden 3584, 152K vocabulary): on meta
    nothing is allocated or drawn, so the full-size cell runs in seconds."""
    ctx = EncodeCellRunner(BenchSession(device=META, dtype="bfloat16", attn="sdpa", plan=_plan()))
    cell = EncodeCell("qwen2.5-7b-instruct:random", "ar", "sequential", 4, 32, 1)
    with OffDevice():
        info = ctx.run(cell, lambda target, rounds: [target() for _ in range(rounds)])
    assert info["status"] == "ok" and info["device"] == "meta" and len(info["samples_s"]) >= 3
    assert info["forward_path"].startswith("read-columns (Qwen2Model adapter")
    assert len(info["model_s"]) == len(info["samples_s"]) and info["model_median_s"] > 0
    assert info["cold_start"]["weights"]["generator"] is None  # meta: nothing drawn


def test_bench_search_cell_on_the_device():
    ctx = SearchCellRunner(BenchSession(device=META, dtype="float32", attn="sdpa", plan=_plan()))
    with OffDevice():
        info = ctx.run(SearchCell("maxsim", 2000, 4, 4, 2, 32),
                                   lambda target, rounds: [target() for _ in range(rounds)])
    assert info["status"] == "ok" and info["search_device"] == "meta" and info["k_p"] == 4
