"""Fusion and BM25 cut their float64 lists with the one top-k: trec_eval's order (score descending, doc id
descending) at the cut, checked against hand-written lists, and float64 differences below float32's
resolution still decide."""

from __future__ import annotations

import torch

from repbench.retrieval.bm25 import bm25_run
from repbench.retrieval.fusion import fuse
from repbench.retrieval.topk import top_docs, topk


def test_float64_topk_keeps_ties_by_key_and_differences_float32_would_lose():
    a = 0.1
    b = a + 1e-12  # the same float32, a larger float64
    scores = torch.tensor([[a, b, a, 0.5, a]], dtype=torch.float64)
    vals, keys = topk(scores, torch.tensor([4, 3, 0, 2, 1]), 4)
    assert keys.tolist() == [[2, 3, 0, 1]] and vals.dtype == torch.float64
    assert vals[0].tolist() == [0.5, b, a, a]
    assert topk(scores, torch.arange(5), 0)[0].dtype == torch.float64


def test_top_docs_is_trec_eval_order():
    scores = {"d1": 1.0, "d10": 2.0, "d2": 1.0, "d9": 1.0, "d3": 0.5}
    # trec_eval: score descending, then doc id descending as strings: d9 > d2 > d1
    assert list(top_docs(scores, 3).items()) == [("d10", 2.0), ("d9", 1.0), ("d2", 1.0)]
    assert list(top_docs(scores, 10)) == ["d10", "d9", "d2", "d1", "d3"] and top_docs({}, 5) == {}


def test_fusion_cut_at_a_tie():
    a = {"q": {"x": 3.0, "y": 1.0, "z": 2.0}}
    b = {"q": {"y": 5.0, "w": 1.0}}
    # min-max: a -> x 1, z .5, y 0; b -> y 1, w 0; fused (alpha .5): x .5, y .5, z .25, w 0
    assert list(fuse(a, b, 0.5, 2)["q"].items()) == [("y", 0.5), ("x", 0.5)]
    assert list(fuse(a, b, 0.5, 10)["q"]) == ["y", "x", "z", "w"]


def test_bm25_keeps_the_tied_documents_trec_eval_would():
    # "a" and "c" are the same text: equal scores; at depth 2 after "b" (the best), the tie goes to "c".
    run = bm25_run(["a", "b", "c", "d"], ["red fox", "red red fox fox", "red fox", "blue"], ["q"], ["red fox"],
                   depth=2)
    assert list(run["q"]) == ["b", "c"]
