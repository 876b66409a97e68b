"""`repbench search --device` and `retrieve(device=...)`: placement on torch's `meta` device (as strict as
a GPU, tests/device_check.py), the same runs on an explicit CPU as by default, the chunk prefetch's
order (chunk i+1's copy issued before chunk i is scored) and its CUDA stream/event protocol, checked
with a stand-in for `torch.cuda`, and the command's refusal of a device this machine lacks.
"""

from __future__ import annotations

import random
from contextlib import contextmanager

import pytest
import torch
from device_check import OffDevice
from test_streaming_search import VOCAB, _items, _reps, _store
from torch.utils._python_dispatch import TorchDispatchMode

from repbench.encoders.store import load_sharded
from repbench.retrieval import streaming, transfer
from repbench.retrieval.modes import SCORERS, Scorer
from repbench.retrieval.search import MODES, retrieve
from repbench.retrieval.streaming import stream_retrieve
from repbench.retrieval.transfer import CudaCopy, PlainCopy, prefetched

META = torch.device("meta")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    rnd = random.Random(5)
    ids = [rnd.choice(["", "d", "D"]) + str(i) for i in rnd.sample(range(3000), 230)]
    docs = _reps(ids, k=3, seed=11, n_protos=7)  # few prototypes: exact ties at every cut-off
    queries = _reps([ids[3], "q1", "q2", ids[50]], k=2, seed=12, n_protos=4)
    root = tmp_path_factory.mktemp("dev")
    return queries, _store(root / "d", docs, shard_size=40), _store(root / "q", queries, shard_size=3)


# ---- the same runs on an explicit CPU as by default -----------------------------------------------
@pytest.mark.parametrize("chunk_docs", [17, 64])
def test_explicit_cpu_gives_the_default_runs_streaming_and_in_memory(setup, chunk_docs):
    queries, store, _ = setup
    default = stream_retrieve(queries, store, MODES, depth=30, chunk_docs=chunk_docs)
    on_cpu = stream_retrieve(queries, store, MODES, depth=30, chunk_docs=chunk_docs, device="cpu")
    assert _items(on_cpu) == _items(default)
    docs = load_sharded(store)
    in_memory = retrieve(queries, docs, MODES, depth=30, vocab_size=VOCAB, device="cpu")
    assert _items(in_memory) == _items(retrieve(queries, docs, MODES, depth=30, vocab_size=VOCAB))
    assert _items(in_memory) == _items(default)
    last = [list(d.values()) for d in default["multi_dense"].values()]
    assert any(r[-1] == r[-2] for r in last)  # ties at the cut-off: a wrong key slice would reorder them


def test_search_command_on_an_explicit_cpu_writes_the_default_bytes(setup, tmp_path, capsys):
    from repbench.cli import main

    _, store, qstore = setup
    common = ["search", "--queries", str(qstore), "--docs", str(store), "--depth", "25", "--chunk-docs", "33",
              "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    assert main([*common, "--device", "cpu", "--out", str(tmp_path / "b")]) == 0, capsys.readouterr().err
    for mode in MODES:
        a = (tmp_path / "a" / "runs" / f"{mode}.trec").read_bytes()
        assert a and a == (tmp_path / "b" / "runs" / f"{mode}.trec").read_bytes()


def test_search_scores_on_the_cpu_unless_told_otherwise(monkeypatch):
    """The default is the CPU even where CUDA is present: evaluate scores its cells there, so `search`
    writes its bytes; `auto` is there to ask for the GPU."""
    import argparse

    import torch

    from repbench.commands import search

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    parser = argparse.ArgumentParser()
    search.add_arguments(parser)
    args = parser.parse_args(["--queries", "q", "--docs", "d", "--out", "o"])
    assert args.device == "cpu" and "default cpu" in parser.format_help()


# ---- placement on `meta` ---------------------------------------------------------------------------
def test_streaming_a_store_onto_the_device_mixes_no_host_tensor_and_waits_once(setup):
    """Host queries and a store on disk, scored on `meta`: every dense op runs there (OffDevice refuses a
    CPU operand), and the results come back to the host once per mode, however many chunks."""
    queries, store, _ = setup
    copies = {}
    for chunk_docs in (19, 60):
        with OffDevice() as dev:
            runs = stream_retrieve(queries, store, ["single_dense", "multi_dense"], depth=9, chunk_docs=chunk_docs,
                                   device=META)
        assert set(runs) == {"single_dense", "multi_dense"} and all(len(r) == 4 for r in runs.values())
        copies[chunk_docs] = dict(dev.copies)
        assert not dev.reads, dev.reads
    assert copies[19] == copies[60]  # no copy back per chunk
    assert sum(copies[19].values()) == 4  # scores and keys of each of the two modes, once


def test_streaming_every_mode_onto_the_device(setup):
    queries, store, _ = setup
    with OffDevice():
        runs = stream_retrieve(queries, store, MODES, depth=9, chunk_docs=50, device=META)
    assert set(runs) == set(MODES) and all(len(r) == 4 for r in runs.values())


def test_in_memory_search_of_host_tensors_on_the_device(setup):
    queries, store, _ = setup
    with OffDevice() as dev:
        runs = retrieve(queries, load_sharded(store), ["single_dense", "multi_dense"], depth=9, device=META)
    assert set(runs) == {"single_dense", "multi_dense"} and not dev.reads
    assert sum(dev.copies.values()) == 4


def test_search_command_end_to_end_on_the_device(setup, tmp_path, monkeypatch, capsys):
    """The command's own path (load, check, stream, write) with the device it resolved being `meta`."""
    from repbench.cli import main
    from repbench.commands import search as command

    _, store, qstore = setup
    monkeypatch.setattr(command, "search_device", lambda text: META)
    with OffDevice():
        rc = main(["search", "--queries", str(qstore), "--docs", str(store), "--modes", "single_dense,multi_dense",
                   "--chunk-docs", "30", "--depth", "5", "--out", str(tmp_path / "o"), "--no-progress",
                   "--device", "cuda"])
    assert rc == 0, capsys.readouterr().err
    # (meta's stand-in host copies are zeros: every list holds the one document of key 0; placement counts)
    for mode in ("single_dense", "multi_dense"):
        lines = (tmp_path / "o" / "runs" / f"{mode}.trec").read_text().splitlines()
        assert {line.split()[0] for line in lines} == {"q1", "q2", *(i for i in load_sharded(qstore).ids)}


# ---- the prefetch: order and contents --------------------------------------------------------------
class LoggingCopy(PlainCopy):
    def __init__(self, device, log):
        super().__init__(device)
        self.log = log

    def start(self, tensors):
        self.log.append(("start", int(tensors[-1].reshape(-1)[0])))  # tagged by its last tensor's first value
        return super().start(tensors)

    def finish(self, pending):
        self.log.append(("finish", int(pending[-1].reshape(-1)[0])))
        return super().finish(pending)


def test_the_next_copy_starts_before_this_item_is_handed_over():
    log = []
    items = [torch.full((3,), i) for i in range(4)]
    got = []
    for t in prefetched(items, lambda t: (t,), lambda t, moved: moved[0], LoggingCopy("cpu", log)):
        log.append(("score", int(t[0])))
        got.append(t)
    assert log == [("start", 0), ("start", 1), ("finish", 0), ("score", 0), ("start", 2), ("finish", 1),
                   ("score", 1), ("start", 3), ("finish", 2), ("score", 2), ("finish", 3), ("score", 3)]
    assert [t.tolist() for t in got] == [[i] * 3 for i in range(4)]
    assert list(prefetched([], lambda t: (t,), lambda t, m: m[0], LoggingCopy("cpu", log))) == []


def test_stream_retrieve_scores_chunk_i_after_starting_the_copy_of_chunk_i_plus_one(setup, monkeypatch):
    """In the search itself: each chunk's copy (tagged by its first tie key) is started before the
    previous chunk is scored, and the chunks reach the scorer whole and in order."""
    queries, store, _ = setup
    log = []
    monkeypatch.setattr(streaming, "copier_for", lambda device: LoggingCopy(device, log))
    inner = SCORERS["multi_dense"].search

    def logged(qv, index, k, options):
        log.append(("score", int(index.keys_host[0])))
        return inner(qv, index, k, options)

    monkeypatch.setitem(SCORERS, "multi_dense", Scorer("multi_dense", search=logged, multi=True))
    got = stream_retrieve(queries, store, ["multi_dense"], depth=12, chunk_docs=25, device="cpu")
    keys, _ = streaming._collection_keys(load_sharded(store))
    # 230 documents in shards of 40, each read in chunks of 25: rows 0, 25, 40, 65, 80, ...
    firsts = [int(keys[s + c]) for s in range(0, 230, 40) for c in range(0, min(40, 230 - s), 25)]
    assert len(firsts) == 12
    assert [e for e in log if e[0] == "start"] == [("start", f) for f in firsts]
    for i in range(len(firsts) - 1):
        assert log.index(("start", firsts[i + 1])) < log.index(("score", firsts[i]))
    monkeypatch.undo()
    assert _items(got) == _items(stream_retrieve(queries, store, ["multi_dense"], depth=12, chunk_docs=25))


# ---- the CUDA protocol, with a stand-in for torch.cuda ---------------------------------------------
class FakeStream:
    def __init__(self, name, log):
        self.name, self.log = name, log

    def wait_event(self, event):
        self.log.append(("wait", self.name, event.name))

    def __repr__(self):
        return self.name


class FakeEvent:
    count = 0

    def __init__(self, log, where):
        FakeEvent.count += 1
        self.name, self.log, self.where = f"e{FakeEvent.count}", log, where

    def record(self, stream):
        self.log.append(("record", self.name, stream.name, self.where[-1].name))


class FakeCuda:
    """torch.cuda's Stream, Event, current_stream and stream(), logging what CudaCopy asks of them."""

    def __init__(self, log):
        self.log = log
        self.main = FakeStream("main", log)
        self.current = [self.main]

    def Stream(self, device):  # noqa: N802 (torch.cuda's names)
        return FakeStream("side", self.log)

    def Event(self):  # noqa: N802
        return FakeEvent(self.log, self.current)

    def current_stream(self, device):
        return self.current[-1]

    @contextmanager
    def stream(self, s):
        self.current.append(s)
        try:
            yield
        finally:
            self.current.pop()


class CopyLog(TorchDispatchMode):
    """Logs each copy to the device with its non_blocking flag and the stream current at the time."""

    def __init__(self, log, cuda):
        super().__init__()
        self.log, self.cuda = log, cuda

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.ops.aten._to_copy.default and kwargs.get("device") == META:
            self.log.append(("copy", self.cuda.current[-1].name, bool(kwargs.get("non_blocking")),
                             getattr(args[0], "_pinned", False)))
        return func(*args, **kwargs)


def test_cuda_copy_pins_copies_on_a_side_stream_and_the_scoring_stream_waits_for_its_event(monkeypatch):
    log = []
    cuda = FakeCuda(log)
    pinned_ids = set()

    def pin_memory(t):
        p = t.clone()
        p._pinned = True  # the copy below must read this pinned clone, not the pageable original
        pinned_ids.add(id(p))
        log.append(("pin", tuple(t.shape)))
        return p

    monkeypatch.setattr(torch.Tensor, "pin_memory", pin_memory)
    monkeypatch.setattr(torch.Tensor, "is_pinned", lambda t: getattr(t, "_pinned", False))
    monkeypatch.setattr(torch.Tensor, "record_stream", lambda t, s: log.append(("keep", tuple(t.shape), s.name)))
    copier = CudaCopy(META, cuda=cuda)
    items = [(torch.ones(4, 2), torch.arange(4)), (torch.ones(3, 2), torch.arange(3))]
    with CopyLog(log, cuda):
        out = list(prefetched(items, lambda it: it, lambda it, moved: moved, copier))
    assert [tuple(t.shape) for pair in out for t in pair] == [(4, 2), (4,), (3, 2), (3,)]
    assert all(t.device == META for pair in out for t in pair)
    assert log == [
        ("pin", (4, 2)), ("pin", (4,)), ("copy", "side", True, True), ("copy", "side", True, True),
        ("record", "e1", "side", "side"),
        ("pin", (3, 2)), ("pin", (3,)), ("copy", "side", True, True), ("copy", "side", True, True),
        ("record", "e2", "side", "side"),
        ("wait", "main", "e1"), ("keep", (4, 2), "main"), ("keep", (4,), "main"),
        ("wait", "main", "e2"), ("keep", (3, 2), "main"), ("keep", (3,), "main"),
    ]


def test_cuda_copy_does_not_pin_what_is_already_pinned(monkeypatch):
    log = []
    monkeypatch.setattr(torch.Tensor, "is_pinned", lambda t: True)
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda t: log.append("pin") or t)
    monkeypatch.setattr(torch.Tensor, "record_stream", lambda t, s: None)
    copier = CudaCopy(META, cuda=FakeCuda([]))
    (moved,) = copier.finish(copier.start((torch.ones(2),)))
    assert moved.device == META and log == []


def test_the_copier_is_chosen_by_device_type(monkeypatch):
    made = []
    monkeypatch.setattr(transfer, "CudaCopy", lambda device: made.append(device) or "cuda-copier")
    assert transfer.copier_for("cuda:1") == "cuda-copier" and made == [torch.device("cuda:1")]
    assert isinstance(transfer.copier_for("cpu"), PlainCopy) and isinstance(transfer.copier_for(META), PlainCopy)


# ---- the command refuses a device this machine lacks ----------------------------------------------
@pytest.mark.parametrize(("device", "expect"), [
    ("cuda", "CUDA is not available"), ("cuda:0", "CUDA is not available"), ("gpu0", "not a device name"),
    ("meta", "holds shapes, not numbers"), ("xpu", "not available here")])
def test_search_refuses_an_unavailable_device_with_one_line(setup, tmp_path, capsys, device, expect):
    from repbench.cli import main

    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    if device == "xpu" and hasattr(torch, "xpu") and torch.xpu.is_available():
        pytest.skip("this machine has an XPU")
    _, store, qstore = setup
    rc = main(["search", "--queries", str(qstore), "--docs", str(store), "--device", device,
               "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and expect in err and "Traceback" not in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


def test_search_refuses_a_cuda_index_past_the_last_device(monkeypatch):
    from repbench.commands.search import search_device
    from repbench.errors import RepbenchError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(RepbenchError, match=r"--device cuda:2: this machine has 2 CUDA device\(s\) \(cuda:0 to cuda:1\)"):
        search_device("cuda:2")


# ---- the bench's search cells run the same scorers, on the session's device ------------------------
@pytest.mark.parametrize("kind", ["dense", "maxsim", "sparse"])
def test_bench_search_cells_time_the_scorers_that_search_runs(kind, monkeypatch):
    """Each timed call of a search cell is the mode's scorer over a DocIndex on the session's device:
    the function `repbench search --device` and `retrieve(device=)` call per chunk."""
    import dataclasses

    from repbench.benchmarking.cells import SEARCH_MODES, SearchCell
    from repbench.benchmarking.harness import CellPlan
    from repbench.benchmarking.search_runner import SearchCellRunner
    from repbench.benchmarking.session import BenchSession

    mode, calls = SEARCH_MODES[kind], []
    inner = SCORERS[mode].search

    def logged(qv, index, k, options):
        calls.append((index.device, qv.docs.dense.device, len(index), k))
        return inner(qv, index, k, options)

    monkeypatch.setitem(SCORERS, mode, dataclasses.replace(SCORERS[mode], search=logged))
    plan = CellPlan(warmup=1, min_rounds=3, min_time_s=0.0, max_time_s=5.0, memory_iterations=1)
    ctx = SearchCellRunner(BenchSession(device=META, dtype="float32", attn="sdpa", plan=plan), depth=7)
    timed = []
    with OffDevice():
        info = ctx.run(SearchCell(kind, 300, 4, 2, 3, 16), lambda target, rounds: timed.extend(
            target() for _ in range(rounds)))
    assert info["status"] == "ok" and info["mode"] == mode
    assert info["search_device"] == ("cpu (scipy)" if kind == "sparse" else "meta")
    assert len(calls) > len(timed) >= 3 and set(calls) == {(META, META, 300, 7)}


# ---- a store's ids: read once per process, packed, given back exactly ------------------------------
def test_kept_ids_come_back_exactly_and_a_repeated_search_parses_each_sidecar_once(tmp_path, monkeypatch):
    from repbench.encoders import store as store_module

    ids = ["é1", "日本2", "a\x00", "a", "", "Z" * 40] + [f"d{i}" for i in range(53)]
    docs = _reps(ids, k=2, seed=21, n_protos=5)
    queries = _reps(["q1", "a"], k=2, seed=22, n_protos=2)
    path = _store(tmp_path, docs, shard_size=9)  # 7 shards of 9 or fewer
    # sparse_max: integer weights, so the scores are exact whatever the chunking (the dense modes' last
    # bits may differ with the GEMM's shape), and every tie is cut by the ids' order
    expected = _items(retrieve(queries, load_sharded(path), ["sparse_max"], depth=len(ids), vocab_size=VOCAB))
    assert _items(stream_retrieve(queries, path, ["sparse_max"], depth=len(ids), chunk_docs=4)) == expected
    opened, reads = store_module.open_store(path), []  # (opening reads the first sidecar's meta)
    inner = store_module.read_sidecar
    monkeypatch.setattr(store_module, "read_sidecar", lambda stem: reads.append(stem) or inner(stem))
    streamed = stream_retrieve(queries, opened, MODES, depth=len(ids), chunk_docs=4)
    # every document is kept (depth = N), so every id went through the packed table and back
    assert all({d for docs_ in run.values() for d in docs_} == set(ids) for run in streamed.values())
    assert _items({"sparse_max": streamed["sparse_max"]}) == expected
    assert len(reads) == len(set(reads)) == 7  # the chunk reader's check of each shard; no second pass for ids


def test_running_top_k_holding_narrow_blocks_back_stays_exact(monkeypatch):
    """Many blocks narrower than k (a streamed chunk's own lists): held and merged several times over,
    the result is the sorted reference (score descending, key ascending), ties and -0.0 included."""
    import numpy as np

    from repbench.retrieval.topk import RunningTopK

    rnd = np.random.default_rng(4)
    scores = rnd.integers(-2, 3, size=(2, 300)).astype(np.float32)
    scores[scores == 0] = -0.0
    scores[:, ::7] = 0.0
    keys = rnd.permutation(300)
    from repbench.retrieval import topk as topk_module

    for width, max_held in ((1, 1 << 23), (2, 1 << 23), (5, 1 << 23), (40, 1 << 23), (1, 6), (2, 6)):
        monkeypatch.setattr(topk_module, "MAX_HELD", max_held)
        top = RunningTopK(2, 4)
        for lo in range(0, 300, width):
            top.add(torch.from_numpy(scores[:, lo:lo + width]), torch.from_numpy(keys[lo:lo + width]))
            # held back: at most MERGE_WIDTH x k per query, and at most MAX_HELD in all
            assert sum(s.shape[1] for s, _ in top._held) * 2 <= min(2 * topk_module.MERGE_WIDTH * 4, max_held)
        got_s, got_k = top.result()
        for r in range(2):
            ref = sorted(zip((-scores[r] + 0.0).tolist(), keys.tolist(), strict=True))[:4]
            assert list(zip((-got_s[r] + 0.0).tolist(), got_k[r].tolist(), strict=True)) == ref, width


@pytest.mark.parametrize("modes", [["single_dense"], ["multi_dense"], ["single_dense", "multi_dense"],
                                   ["fusion_multi_sparse_max", "single_dense"]])
def test_a_chunk_normalised_per_mode_or_once_and_shared_gives_the_in_memory_lists(setup, modes):
    """One dense mode: it normalises its own blocks of the stored rows; both: the chunk's unit vectors
    are made once and shared. Either way the in-memory lists, ties included."""
    queries, store, _ = setup
    want = retrieve(queries, load_sharded(store), modes, depth=30, vocab_size=VOCAB)
    assert _items(stream_retrieve(queries, store, modes, depth=30, chunk_docs=23)) == _items(want)


# ---- on a real GPU (skipped without one) -----------------------------------------------------------
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_search_on_cuda_gives_the_cpu_lists_up_to_the_last_bit(setup, monkeypatch):
    """The chunks go through CudaCopy (pinned, side stream), and the lists are the CPU's: sparse_max
    exactly (it stays on the host), the dense modes' scores within float32 rounding, and any document
    not in the CPU's list scoring within that rounding of the CPU list's last score."""
    queries, store, _ = setup
    copiers = []
    real = streaming.copier_for
    monkeypatch.setattr(streaming, "copier_for", lambda device: copiers.append(real(device)) or copiers[-1])
    on_gpu = stream_retrieve(queries, store, MODES, depth=30, chunk_docs=17, device="cuda")
    on_cpu = stream_retrieve(queries, store, MODES, depth=30, chunk_docs=17)
    assert len(copiers) == 1 and isinstance(copiers[0], CudaCopy)
    assert _items({"s": on_gpu["sparse_max"]}) == _items({"s": on_cpu["sparse_max"]})
    for mode in ("single_dense", "multi_dense"):
        for qid, cpu_docs in on_cpu[mode].items():
            gpu_docs = on_gpu[mode][qid]
            assert torch.allclose(torch.tensor(list(gpu_docs.values())), torch.tensor(list(cpu_docs.values())),
                                  rtol=0, atol=1e-5)
            cut = min(cpu_docs.values())
            assert all(abs(s - cut) <= 1e-5 for d, s in gpu_docs.items() if d not in cpu_docs)
    in_memory = retrieve(queries, load_sharded(store), ["multi_dense"], depth=30, device="cuda")["multi_dense"]
    for qid, docs_ in in_memory.items():  # (another GEMM shape: equal up to the last bit, not bit for bit)
        assert torch.allclose(torch.tensor(list(docs_.values())),
                              torch.tensor(list(on_gpu["multi_dense"][qid].values())), rtol=0, atol=1e-5)
