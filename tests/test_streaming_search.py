"""Streaming search over a sharded float16 store equals the in-memory search, ties included."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from repbench.encoders.store import encode_sharded, load_sharded, open_store
from repbench.encoders.types import Representations
from repbench.retrieval.search import MODES, retrieve
from repbench.retrieval.streaming import chunk_docs_for, stream_retrieve
from repbench.retrieval.topk import RunningTopK

VOCAB = 40


def _reps(ids: list[str], k: int, seed: int, n_protos: int) -> Representations:
    """Rows drawn from a few prototypes, so many documents score exactly alike (ties at every cut-off)."""
    g = torch.Generator().manual_seed(seed)
    n, h = len(ids), 8
    protos = torch.randn(n_protos, k, h, generator=g)
    pick = torch.randint(0, n_protos, (n,), generator=g)
    dense = protos[pick].clone()
    valid = torch.ones(n, k, dtype=torch.bool)
    valid[::5, -1] = False
    dense[~valid] = 0
    sp_protos = torch.randint(-1, VOCAB, (n_protos, 6), generator=g)
    w_protos = torch.randint(1, 300, (n_protos, 6), generator=g).float()
    sp_ids = sp_protos[pick]
    sp_w = torch.where(sp_ids >= 0, w_protos[pick], torch.zeros(()))
    return Representations(ids=ids, dense=dense, valid=valid, sparse_ids=sp_ids, sparse_weights=sp_w,
                           token_ids=torch.zeros(n, k, dtype=torch.long),
                           input_tokens=torch.full((n,), 5, dtype=torch.long), meta={"vocab_size": VOCAB})


def _store(tmp_path, docs: Representations, shard_size: int, dtype: str = "float16"):
    texts = [f"text {i}" for i in docs.ids]
    index = {d: i for i, d in enumerate(docs.ids)}

    def encode_fn(ids, _texts):
        return docs.select([index[i] for i in ids])

    out = tmp_path / f"store-{dtype}"
    encode_sharded(out, docs.ids, texts, {"k": docs.k}, encode_fn, shard_size=shard_size, progress=False,
                   store_dtype=dtype)
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    rnd = random.Random(3)
    # Ids of mixed length and case so that id order ("9" > "10", "b" > "a9") matters for ties.
    ids = [rnd.choice(["", "d", "D", "doc"]) + str(i) for i in rnd.sample(range(5000), 530)]
    docs = _reps(ids, k=3, seed=1, n_protos=9)
    queries = _reps([ids[0], ids[7], "q1", "q2", ids[99], "q3"], k=2, seed=2, n_protos=6)
    store = _store(tmp_path_factory.mktemp("s"), docs, shard_size=25)  # 22 shards
    return queries, docs, store


def _items(runs):
    return {m: {q: list(d.items()) for q, d in r.items()} for m, r in runs.items()}


@pytest.mark.parametrize("remove_self", [True, False])
@pytest.mark.parametrize("chunk_docs", [7, 25, None])
def test_streaming_equals_in_memory_in_every_mode(setup, remove_self, chunk_docs):
    queries, _, store = setup
    assert len(open_store(store).shards) >= 20
    in_memory = retrieve(queries, load_sharded(store), MODES, depth=40, vocab_size=VOCAB, remove_self=remove_self)
    streamed = stream_retrieve(queries, store, MODES, depth=40, remove_self=remove_self, chunk_docs=chunk_docs)
    assert _items(streamed) == _items(in_memory)  # same ids, same order, same scores
    # The fixture really has ties at the cut-off (otherwise this test could not catch a wrong tie rule).
    last = [list(d.values()) for d in in_memory["single_dense"].values()]
    assert any(r[-1] == r[-2] for r in last)


def _pooled(reps: Representations, row: int) -> dict[int, float]:
    """One row's sparse vector as {term: weight}; a repeated term keeps its largest weight."""
    out: dict[int, float] = {}
    for t, w in zip(reps.sparse_ids[row].tolist(), reps.sparse_weights[row].tolist(), strict=True):
        if t >= 0:
            out[t] = max(out.get(t, 0.0), w)
    return out


def test_sparse_ties_follow_trec_eval_against_a_brute_force_reference(setup):
    queries, docs, store = setup
    depth = 60
    got = stream_retrieve(queries, store, ["sparse_max"], depth=depth, remove_self=False, chunk_docs=11)
    for row, qid in enumerate(queries.ids):
        qv = _pooled(queries, row)
        scores = {}
        for j, did in enumerate(docs.ids):
            dv = _pooled(docs, j)
            scores[did] = sum(w * dv.get(t, 0.0) for t, w in qv.items())  # integers: exact
        # trec_eval: score descending, then doc id descending (strcmp).
        ref = sorted(scores.items(), key=lambda x: (x[1], x[0].encode()), reverse=True)[:depth]
        assert list(got["sparse_max"][qid].items()) == ref


@pytest.mark.parametrize(("dtype", "u"), [("float16", 2.0 ** -11), ("bfloat16", 2.0 ** -8)])
def test_half_store_scores_within_rounding_of_float32(setup, tmp_path, dtype, u):
    queries, docs, _ = setup
    s16, s32 = _store(tmp_path, docs, 100, dtype), _store(tmp_path, docs, 100, "float32")
    base = ["single_dense", "multi_dense", "sparse_max"]
    a = stream_retrieve(queries, s16, base, depth=40, remove_self=False, chunk_docs=64)
    b = stream_retrieve(queries, s32, base, depth=40, remove_self=False, chunk_docs=64)
    bound = {"single_dense": 4 * u, "multi_dense": queries.k * 4 * u, "sparse_max": 0.0}
    for mode in base:
        for qid in queries.ids:
            # The r-th best score moves by at most the largest per-document change (order statistics).
            diff = np.abs(np.array(list(a[mode][qid].values())) - np.array(list(b[mode][qid].values())))
            assert diff.max() <= bound[mode], (mode, qid, diff.max())
            assert mode == "sparse_max" or diff.max() > 0  # the store really was rounded


def test_merger_is_order_independent_against_sorted():
    """Blocks merged in a shuffled order give the sorted (score desc, key asc) list, negative and -0.0
    scores included (-0.0 ties with 0.0 as floats do)."""
    rnd = np.random.default_rng(0)
    scores = rnd.integers(-3, 4, size=(3, 200)).astype(np.float32)
    scores[scores == 0] = rnd.choice(np.array([0.0, -0.0], np.float32), size=int((scores == 0).sum()))
    keys = rnd.permutation(200)
    m = RunningTopK(3, 17)
    for lo in rnd.permutation(range(0, 200, 30)).tolist():
        m.add(torch.from_numpy(scores[:, lo:lo + 30]), torch.from_numpy(keys[lo:lo + 30]))
    got_s, got_k = m.result()
    for r in range(3):
        ref = sorted(zip((-scores[r] + 0.0).tolist(), keys.tolist(), strict=True))[:17]
        assert list(zip((-got_s[r] + 0.0).tolist(), got_k[r].tolist(), strict=True)) == ref


def test_ids_that_differ_only_by_a_trailing_nul_stay_apart(tmp_path):
    """`d1` and `d1\0` are two documents (a fixed-width string array would merge them)."""
    docs = _reps(["d1", "d1\0", "d0"], k=2, seed=5, n_protos=1)
    docs.valid[:] = True
    docs.dense[:] = docs.dense[1]  # all three alike: they tie
    queries = _reps(["q"], k=2, seed=6, n_protos=1)
    got = stream_retrieve(queries, docs, ["single_dense"], depth=3, remove_self=False, chunk_docs=1)
    assert list(got["single_dense"]["q"]) == ["d1\0", "d1", "d0"]  # trec_eval: doc id descending
    assert list(retrieve(queries, docs, ["single_dense"], depth=3, remove_self=False)["single_dense"]["q"]) == [
        "d1\0", "d1", "d0"]


def test_max_memory_bounds_the_chunk():
    per = chunk_docs_for(1 << 30, k_p=16, hidden=64, sparse_width=128)
    assert chunk_docs_for(2 << 30, k_p=16, hidden=64, sparse_width=128) > 1.9 * per
    from repbench.errors import RepbenchError

    with pytest.raises(RepbenchError, match="too small"):
        chunk_docs_for(1 << 20, k_p=16, hidden=64, sparse_width=128)


def test_flat_ip_keeps_the_lowest_indices_among_ties_at_the_cutoff(setup):
    from repbench.retrieval.dense import FlatIPIndex, single_vectors

    queries, docs, _ = setup
    vd, vq = single_vectors(docs), single_vectors(queries)
    s, i = FlatIPIndex(vd).search(vq, 41)
    full = vq @ vd.T  # every score, then cut by (score desc, index asc)
    for r in range(len(vq)):
        ref = sorted(zip((-full[r]).tolist(), range(len(vd)), strict=False))[:41]
        assert i[r].tolist() == [j for _, j in ref]
        assert np.allclose(s[r], [-v for v, _ in ref], atol=1e-6)


def test_search_command_writes_the_in_memory_runs(setup, tmp_path, capsys):
    from repbench.cli import main
    from repbench.evaluation.trec import read_run, round_scores

    queries, _, store = setup
    qstore = _store(tmp_path, queries, shard_size=4)
    rc = main(["search", "--queries", str(qstore), "--docs", str(store), "--depth", "30", "--chunk-docs", "50",
               "--out", str(tmp_path / "o"), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    ref = retrieve(load_sharded(qstore), load_sharded(store), MODES, depth=30, vocab_size=VOCAB)
    for mode in MODES:
        got = read_run(tmp_path / "o" / "runs" / f"{mode}.trec")
        assert got == round_scores(ref[mode])
    assert main(["search", "--queries", str(qstore), "--docs", str(store), "--max-memory", "lots",
                 "--out", str(tmp_path / "x")]) == 2
    assert "--max-memory expects" in capsys.readouterr().err


def test_search_refuses_a_damaged_shard(setup, tmp_path, capsys):
    import shutil

    from repbench.cli import main

    queries, _, store = setup
    qstore = _store(tmp_path, queries, shard_size=4)
    bad = tmp_path / "bad"
    shutil.copytree(store, bad)
    shard = bad / "shard_00013.safetensors"
    data = bytearray(shard.read_bytes())
    data[-600:-100] = bytes(500)
    shard.write_bytes(bytes(data))
    assert main(["search", "--queries", str(qstore), "--docs", str(bad), "--out", str(tmp_path / "o"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "shard_00013.safetensors: sha256" in err and "re-run the `repbench encode`" in err
    assert not (tmp_path / "o").exists()


def test_each_shard_is_hashed_once_per_process_until_it_changes(setup, tmp_path, monkeypatch):
    import shutil

    from repbench.encoders import store as store_mod

    queries, _, store = setup
    copy = tmp_path / "copy"
    shutil.copytree(store, copy)
    hashed: list[str] = []
    real = store_mod.sha256_file
    monkeypatch.setattr(store_mod, "sha256_file", lambda p: hashed.append(str(p)) or real(p))
    first = stream_retrieve(queries, copy, ["sparse_max"], depth=5, vocab_size=VOCAB, chunk_docs=50)
    n_shards = len(open_store(copy).shards)
    assert len(hashed) == n_shards
    assert stream_retrieve(queries, copy, ["sparse_max"], depth=5, vocab_size=VOCAB, chunk_docs=50) == first
    assert len(hashed) == n_shards  # the second search re-hashed nothing
    shard = copy / "shard_00003.safetensors"
    data = bytearray(shard.read_bytes())
    data[-200:-100] = bytes(100)  # same size, new bytes (and a new mtime): hashed again, and refused
    shard.write_bytes(bytes(data))
    from repbench.encoders.types import StoreError

    with pytest.raises(StoreError, match="shard_00003.safetensors: sha256"):
        stream_retrieve(queries, copy, ["sparse_max"], depth=5, vocab_size=VOCAB, chunk_docs=50)
