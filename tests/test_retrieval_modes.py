"""Score modes against direct reference computations written here (loops over slots and terms)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from repbench.encoders.types import Representations
from repbench.errors import RepbenchError
from repbench.retrieval.dense import FlatIPIndex, single_vectors
from repbench.retrieval.fusion import fuse
from repbench.retrieval.multivector import maxsim_search
from repbench.retrieval.search import MODES, modes_for, parse_modes, retrieve
from repbench.retrieval.sparse import sparse_search
from repbench.retrieval.topk import RunningTopK, topk

V = 50  # vocabulary size of the hand-built sparse vectors


def make_reps(ids, dense, valid=None, sparse=None) -> Representations:
    dense = torch.as_tensor(np.asarray(dense, dtype=np.float32))
    n, k, _ = dense.shape
    valid = torch.ones(n, k, dtype=torch.bool) if valid is None else torch.as_tensor(valid)
    dense = dense * valid.unsqueeze(-1)
    sparse = sparse or [{} for _ in range(n)]
    m = max(1, max(len(s) for s in sparse))
    sid = torch.full((n, m), -1, dtype=torch.long)
    sw = torch.zeros((n, m), dtype=torch.float32)
    for r, terms in enumerate(sparse):
        for c, (t, w) in enumerate(terms.items()):
            sid[r, c], sw[r, c] = t, w
    return Representations(ids=list(ids), dense=dense, valid=valid, sparse_ids=sid, sparse_weights=sw,
                           token_ids=torch.zeros(n, k, dtype=torch.long),
                           input_tokens=torch.full((n,), 10, dtype=torch.long))


def random_reps(prefix, n, k, h, rng, invalid_rate=0.25):
    dense = rng.normal(size=(n, k, h)).astype(np.float32)
    valid = rng.random((n, k)) > invalid_rate
    valid[:, 0] = True
    sparse = []
    for _ in range(n):
        terms = rng.choice(V, size=rng.integers(1, 8), replace=False)
        sparse.append({int(t): float(np.round(rng.random() * 3, 2)) for t in terms})
    return make_reps([f"{prefix}{i}" for i in range(n)], dense, valid, sparse)


# ------------------------------------------------------------------ reference computations
def ref_unit(v):
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v] if norm > 0 else [0.0] * len(v)


def ref_active(reps, r):
    return [ref_unit(reps.dense[r, j].tolist()) for j in range(reps.k) if bool(reps.valid[r, j])]


def ref_single(q, qi, d, di):
    a, b = ref_active(q, qi), ref_active(d, di)
    ma = [sum(x[t] for x in a) / len(a) for t in range(q.hidden_size)]
    mb = [sum(x[t] for x in b) / len(b) for t in range(d.hidden_size)]
    return sum(x * y for x, y in zip(ma, mb, strict=True))


def ref_maxsim(q, qi, d, di):
    total = 0.0
    for qs in ref_active(q, qi):
        best = max(sum(x * y for x, y in zip(qs, ds, strict=True)) for ds in ref_active(d, di))
        total += max(0.0, best)
    return total


def ref_sparse(q, qi, d, di):
    qt = {int(t): float(w) for t, w in zip(q.sparse_ids[qi], q.sparse_weights[qi], strict=True) if t >= 0}
    dt = {int(t): float(w) for t, w in zip(d.sparse_ids[di], d.sparse_weights[di], strict=True) if t >= 0}
    return sum(w * dt.get(t, 0.0) for t, w in qt.items())


def ref_ranking(scores: dict[str, float], depth: int) -> list[str]:
    by_id_desc = sorted(scores, reverse=True)
    return sorted(by_id_desc, key=lambda doc: -scores[doc])[:depth]  # stable: ties keep id-descending order


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(7)
    return random_reps("q", 5, 3, 8, rng), random_reps("d", 23, 4, 8, rng)


def test_single_dense_equals_reference(pair):
    q, d = pair
    vq, vd = single_vectors(q), single_vectors(d)
    assert vq.dtype == np.float32 and vq.shape == (5, 8)
    s, i = FlatIPIndex(vd).search(vq, 1000)
    assert s.shape == (5, 23)
    for qi in range(5):
        ref = {j: ref_single(q, qi, d, j) for j in range(23)}
        for score, j in zip(s[qi], i[qi], strict=True):
            assert score == pytest.approx(ref[int(j)], abs=1e-5)
        assert sorted(ref, key=lambda j: -ref[j])[:5] == i[qi, :5].tolist()


def test_single_vector_is_not_renormalised():
    reps = make_reps(["a"], [[[1.0, 0.0], [0.0, 3.0]]])
    np.testing.assert_allclose(single_vectors(reps), [[0.5, 0.5]])  # norm 0.707, kept as is


@pytest.mark.parametrize("chunk", [1, 4, None])
def test_maxsim_equals_reference_in_any_chunking(pair, chunk):
    q, d = pair
    s, i = maxsim_search(q.unit_dense(), d.unit_dense(), 10, chunk_docs=chunk)
    assert s.shape == (5, 10)
    for qi in range(5):
        ref = {j: ref_maxsim(q, qi, d, j) for j in range(23)}
        order = sorted(ref, key=lambda j: -ref[j])[:10]
        assert i[qi].tolist() == order
        np.testing.assert_allclose(s[qi], [ref[j] for j in order], atol=1e-5)


def test_maxsim_clamps_each_query_slot_at_zero():
    q = make_reps(["q"], [[[1.0, 0.0], [-1.0, 0.0]]])
    d = make_reps(["d"], [[[1.0, 0.0]]])
    s, _ = maxsim_search(q.unit_dense(), d.unit_dense(), 1)
    assert s[0, 0] == pytest.approx(1.0)  # 1 + max(0, -1); unclamped would be 0


@pytest.mark.parametrize("chunk", [2, 8192])
def test_sparse_equals_reference(pair, chunk):
    q, d = pair
    s, i = sparse_search(q.sparse_ids, q.sparse_weights, d.sparse_ids, d.sparse_weights, 23, V, chunk_docs=chunk)
    for qi in range(5):
        ref = {j: ref_sparse(q, qi, d, j) for j in range(23)}
        got = dict(zip(i[qi].tolist(), s[qi].tolist(), strict=True))
        assert set(got) == set(range(23))
        for j in range(23):
            assert got[j] == pytest.approx(ref[j], abs=1e-4)
        # ties (many docs share no term and score 0) come in index order
        assert i[qi].tolist() == sorted(range(23), key=lambda j: (-round(ref[j], 4), j))


def test_sparse_rejects_out_of_vocabulary_ids():
    with pytest.raises(ValueError, match="outside the vocabulary"):
        sparse_search(np.array([[3]]), np.array([[1.0]]), np.array([[60]]), np.array([[1.0]]), 5, V)


def test_fusion_equals_reference():
    a = {"q": {"x": 3.0, "y": 1.0, "z": 2.0}}
    b = {"q": {"y": 10.0, "w": 0.0}}
    got = fuse(a, b, 0.5, depth=3)["q"]
    # mm(a): x 1, z .5, y 0; mm(b): y 1, w 0; missing -> 0
    ref = {"x": 0.5, "y": 0.5, "z": 0.25, "w": 0.0}
    assert list(got) == ["y", "x", "z"]  # x and y tie at 0.5: doc id descending
    for k, v in got.items():
        assert v == pytest.approx(ref[k])


def test_retrieve_all_modes_match_references(pair):
    q, d = pair
    runs = retrieve(q, d, MODES, depth=7, vocab_size=V)
    assert list(runs) == list(MODES)
    for qi, qid in enumerate(q.ids):
        refs = {
            "single_dense": {d.ids[j]: ref_single(q, qi, d, j) for j in range(23)},
            "multi_dense": {d.ids[j]: ref_maxsim(q, qi, d, j) for j in range(23)},
            "sparse_max": {d.ids[j]: ref_sparse(q, qi, d, j) for j in range(23)},
        }
        for mode, ref in refs.items():
            got = runs[mode][qid]
            # sparse weights have 2 decimals, so exact ties are common there; dense scores have none
            ranked = ref_ranking({k: round(v, 4) for k, v in ref.items()} if mode == "sparse_max" else ref, 7)
            assert list(got) == ranked, mode
            for doc, score in got.items():
                assert score == pytest.approx(ref[doc], abs=1e-4)
        for fmode, dense in (("fusion_single_sparse_max", "single_dense"), ("fusion_multi_sparse_max", "multi_dense")):
            # fusion uses each mode's retained top-7 list, min-max normalised within it
            def mm(ranked, ref):
                vals = [ref[x] for x in ranked]
                lo, hi = min(vals), max(vals)
                return {x: (ref[x] - lo) / max(hi - lo, 1e-9) for x in ranked}

            dref, sref = refs[dense], refs["sparse_max"]
            na = mm(ref_ranking(dref, 7), dref)
            nb = mm(ref_ranking(sref, 7), sref)
            fused = {x: 0.5 * na.get(x, 0) + 0.5 * nb.get(x, 0) for x in {*na, *nb}}
            got = runs[fmode][qid]
            assert len(got) == 7
            for doc, score in got.items():
                assert score == pytest.approx(fused[doc], abs=1e-4)


def test_ties_follow_trec_eval_in_every_mode():
    # Identical documents: every mode ties; trec_eval orders by doc id descending (string order).
    ids = ["d1", "d10", "d2", "d3"]
    d = make_reps(ids, np.ones((4, 2, 3)), sparse=[{5: 1.0}] * 4)
    q = make_reps(["q"], np.ones((1, 2, 3)), sparse=[{5: 2.0}])
    runs = retrieve(q, d, MODES, depth=2, vocab_size=V)
    for mode in MODES:
        assert list(runs[mode]["q"]) == ["d3", "d2"], mode


def test_self_hits_removed_by_default_and_kept_on_request():
    d = make_reps(["a", "b", "c"], [[[1.0, 0]], [[0.9, 0.1]], [[0.0, 1.0]]])
    q = make_reps(["a"], [[[1.0, 0]]])
    kept = retrieve(q, d, ["single_dense"], depth=2, remove_self=False)["single_dense"]["a"]
    removed = retrieve(q, d, ["single_dense"], depth=2)["single_dense"]["a"]
    assert list(kept) == ["a", "b"]
    assert list(removed) == ["b", "c"]  # refilled to depth 2


def test_depth_larger_than_corpus_and_mode_rules():
    d = make_reps(["a", "b"], np.ones((2, 1, 2)))
    q = make_reps(["q"], np.ones((1, 1, 2)))
    assert len(retrieve(q, d, ["single_dense"], depth=1000)["single_dense"]["q"]) == 2
    with pytest.raises(RepbenchError, match="multi-vector modes need"):
        retrieve(q, d, ["multi_dense"])
    with pytest.raises(RepbenchError, match="vocab_size"):
        retrieve(q, d, ["sparse_max"])
    assert modes_for(1, 1, MODES) == ["single_dense", "sparse_max", "fusion_single_sparse_max"]
    assert modes_for(1, 4, MODES) == list(MODES)
    assert parse_modes("all") == list(MODES)
    assert parse_modes("sparse_max,single_dense") == ["single_dense", "sparse_max"]
    with pytest.raises(RepbenchError, match="unknown score mode"):
        parse_modes("bm25")


def test_topk_ties_by_position_against_sorted():
    rng = np.random.default_rng(3)
    scores = torch.from_numpy(rng.integers(0, 4, size=(6, 40)).astype(np.float32))
    vals, pos = topk(scores, torch.arange(40), 9)
    top = RunningTopK(6, 9)
    for start in range(0, 40, 7):
        top.add(scores[:, start:start + 7], torch.arange(start, min(40, start + 7)))
    for r in range(6):
        ref = sorted(range(40), key=lambda j: (-scores[r, j].item(), j))[:9]
        assert pos[r].tolist() == ref
        assert top.result()[1][r].tolist() == ref
        assert vals[r].tolist() == [scores[r, j].item() for j in ref]


def test_faiss_keeps_lowest_indices_at_a_tied_cutoff():
    s, i = FlatIPIndex(np.ones((10, 4), np.float32)).search(np.ones((2, 4), np.float32), 3)
    assert i.tolist() == [[0, 1, 2], [0, 1, 2]]


def test_an_index_is_reused_for_the_same_documents_and_rebuilt_after_a_change():
    from repbench.retrieval.index import index_for

    d = make_reps(["a", "b", "c"], np.array([[[1.0, 0.0]], [[0.0, 1.0]], [[1.0, 1.0]]]))
    q = make_reps(["q"], np.array([[[1.0, 0.0]]]))
    first = index_for(d)
    assert index_for(d) is first  # searched again: nothing rebuilt
    assert list(retrieve(q, d, ["single_dense"], depth=3)["single_dense"]["q"]) == ["a", "c", "b"]
    d.dense[1] = torch.tensor([[2.0, 0.0]])  # changed in place: the next search sees it
    assert index_for(d) is not first
    assert list(retrieve(q, d, ["single_dense"], depth=3)["single_dense"]["q"]) == ["b", "a", "c"]
