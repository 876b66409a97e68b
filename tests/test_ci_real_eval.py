"""Real evaluation with SmolLM2-135M-Instruct: sequential (AR) and bidirectional parallel readout.

Runs whenever the collections and the packaged model are present (mandatory with CI=true):
K_q, K_p in {1, 4}, all five score modes, on
  * ADI in full (82 documents, 35 queries), and
  * a documented SciFact subset: `subsample(scifact, n_queries=25, n_distractors=75, seed=0)` = the 25
    seeded queries, every document judged for them, and 75 seeded distractor documents.
Texts are cut at max_length=128 tokens (prompt included) to keep CPU time down.
ADI's query numbers coincide with its document numbers, so self-hit removal is off (it would drop
document i from query i's ranking); SciFact ids do not overlap. Measured numbers are printed
(`pytest -s`) for the report.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pytest
import pytrec_eval
from shared_data import require_data

from repbench.encoders.options import EncodeOptions
from repbench.errors import RepbenchError
from repbench.evaluation.collections import load_beir, subsample
from repbench.evaluation.metrics import DEFAULT_MEASURES
from repbench.evaluation.sweep import SweepConfig, run_sweep
from repbench.retrieval.search import MODES

pytestmark = pytest.mark.slow

CI = os.environ.get("CI") == "true"
SYSTEMS = [("smollm2-135m-instruct", "sequential"), ("smollm2-135m-instruct:bidirectional", "parallel")]
SCIFACT_SUBSET = dict(n_queries=25, n_distractors=75, seed=0)
MAX_LENGTH = 128


def _collections():
    adi, scifact = require_data("adi"), require_data("scifact")
    return {"adi": load_beir(adi), "scifact": subsample(load_beir(scifact), **SCIFACT_SUBSET)}


def _backbone(name):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from repbench.backbones import load_backbone

    try:
        return load_backbone(name, device="cpu", dtype="float32")
    except (RepbenchError, OSError) as exc:
        if CI:
            raise
        pytest.skip(f"{name} unavailable: {exc}")


def _random_ndcg(collection, draws=200, seed=0) -> float:
    """Mean nDCG@10 of uniformly random rankings of the whole corpus (the chance level)."""
    rng = np.random.default_rng(seed)
    ev = pytrec_eval.RelevanceEvaluator(collection.qrels, {"ndcg_cut.10"})
    out = []
    for _ in range(draws):
        run = {q: dict(zip(collection.corpus_ids, rng.random(len(collection.corpus_ids)).tolist(), strict=True))
               for q in collection.qrels}
        out.append(np.mean([v["ndcg_cut_10"] for v in ev.evaluate(run).values()]))
    return float(np.mean(out))


def _adapt(sweep):
    """`repbench adapt` on the finished sweep: it reads per_query.csv and the signals.csv the sweep wrote."""
    from repbench.cli import main

    sig = pd.read_csv(sweep / "signals.csv")
    assert {"entropy", "top1_prob", "text_tokens", "sparse_mass"} <= set(sig["signal"])
    out = sweep / "adapt"
    assert main(["adapt", "--per-query", str(sweep / "per_query.csv"), "--out", str(out), "--bootstrap", "1000",
                 "--permutations", "1000"]) == 0
    table = pd.read_csv(out / "adaptive.csv")
    n_q = pd.read_csv(sweep / "per_query.csv")["qid"].nunique()
    assert set(table["selector"]) == {"fixed_cv", "threshold", "logistic"} and (table["n"] == n_q).all()
    assert (table["adaptive_mean"] <= table["oracle_mean"] + 1e-12).all()
    folds = pd.read_csv(out / "folds.csv")
    assert len(folds) == n_q and folds["fold"].nunique() == 5
    for name in ("adaptive_choices.csv", "adaptive_cells.csv", "adaptive_rules.csv", "oracle_k.csv",
                 "oracle_k_corr.csv"):
        assert len(pd.read_csv(out / name)) > 0, name
    return table


def test_real_eval_smollm2(tmp_path):
    collections = _collections()
    report, adaptive = [], []
    for bb_name, encoder in SYSTEMS:
        bb = _backbone(bb_name)
        for ds, coll in collections.items():
            cfg = SweepConfig(backbone=bb_name, encoder=encoder, kq=[1, 4], kp=[1, 4], modes=["all"],
                              options=EncodeOptions(max_length=MAX_LENGTH, batch_size=16), remove_self=(ds != "adi"))
            out = tmp_path / f"{ds}-{encoder}"
            t0 = time.perf_counter()
            table = run_sweep(coll, bb, cfg, out, progress=False)
            wall = time.perf_counter() - t0
            enc = pd.read_json(out / "encoding_times.json", orient="index")

            n_q = len(coll.qrels)
            # every judged query, every measure, every cell and its modes (K=1 has no multi-vector modes)
            assert len(table) == n_q * len(DEFAULT_MEASURES) * (3 + 3 * len(MODES))
            assert table.groupby(["k_q", "k_p", "mode", "measure"]).size().eq(n_q).all()
            assert table["value"].between(0, 1).all()
            assert table["value"].notna().all()
            recall = table[table.measure == "recall_1000"]
            if ds == "adi":  # depth 1000 > 82 docs: every judged document is retrieved
                assert (recall["value"] == 1.0).all()
            ndcg = table[table.measure == "ndcg_cut_10"].groupby(["k_q", "k_p", "mode"])["value"].mean()
            chance = _random_ndcg(coll)
            # The lexical (sparse) side of a real LM must beat chance clearly in every cell.
            sparse = ndcg.xs("sparse_max", level="mode")
            assert (sparse > chance + 0.1).all(), (bb_name, ds, sparse.to_dict(), chance)
            assert ndcg.max() > chance + 0.15
            report.append((bb_name, ds, chance, ndcg, wall, enc))
            if ds == "adi":
                adaptive.append((bb_name, _adapt(out)))
            # a rerun of the finished sweep recomputes nothing and rewrites the same table
            before = (out / "per_query.csv").read_bytes()
            run_sweep(coll, bb, cfg, out, progress=False,
                      encode_fn=lambda *a, **k: pytest.fail("cached encodings should be reused"))
            assert (out / "per_query.csv").read_bytes() == before

    for bb_name, table in adaptive:
        print(f"\n== adaptive K on adi, {bb_name} (5-fold CV over queries), nDCG@10, grid scope")
        cols = ["mode", "selector", "adaptive_mean", "adaptive_ci_low", "adaptive_ci_high", "best_cell", "best_mean",
                "oracle_mean", "gap_closed", "p_adjusted"]
        print(table[table.scope == "grid"][cols].round(3).to_string(index=False))
    for bb_name, ds, chance, ndcg, wall, enc in report:
        print(f"\n== {bb_name} on {ds}: chance nDCG@10 {chance:.3f}; sweep wall {wall:.1f}s")
        print(enc[["side", "k", "n", "seconds", "items_per_s"]].to_string(index=False))
        print(ndcg.unstack("mode").round(3).to_string())
