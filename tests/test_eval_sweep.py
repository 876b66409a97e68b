"""The (K_q, K_p) sweep with a small deterministic fake encoder: outputs, caching and resumption."""

from __future__ import annotations

import json
import zlib
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import pytrec_eval
import torch

from repbench.encoders.types import Representations
from repbench.errors import RepbenchError
from repbench.evaluation.collections import synthetic_collection
from repbench.evaluation.sweep import SweepConfig, run_sweep
from repbench.evaluation.trec import read_run
from repbench.schema import PER_QUERY_COLUMNS, SUMMARY_COLUMNS

V, H = 997, 16
BACKBONE = SimpleNamespace(spec=SimpleNamespace(name="fake", family="ar"), vocab_size=V)


class FakeEncoder:
    """Bag-of-words vectors: a seeded random vector per (word, slot); sparse weight 1 per word."""

    def __init__(self):
        self.calls: list[tuple[str, int]] = []
        self.options: list[dict] = []  # the method options each call was given beyond the common ones

    def __call__(self, bb, texts, ids=None, encoder="sequential", k=1, side="query", batch_size=8,
                 max_length=256, progress=False, **options):
        self.calls.append((side, k))
        options.pop("on_signals", None)  # the sweep asks any encoder taking **kwargs for signals
        self.options.append(options)
        n = len(texts)
        dense = torch.zeros(n, k, H)
        valid = torch.ones(n, k, dtype=torch.bool)
        words = [sorted(set(t.split())) for t in texts]
        m = max(len(w) for w in words)
        sid = torch.full((n, m), -1, dtype=torch.long)
        sw = torch.zeros(n, m)
        for i, ws in enumerate(words):
            for j in range(k):
                for w in ws:
                    g = np.random.default_rng(zlib.crc32(f"{w}/{j % 2}".encode()))
                    dense[i, j] += torch.from_numpy(g.normal(size=H).astype(np.float32))
            if k > 1 and i % 2:
                valid[i, -1] = False  # a truncated slot, as stop tokens produce
                dense[i, -1] = 0
            ids_ = sorted({zlib.crc32(w.encode()) % V for w in ws})
            sid[i, :len(ids_)] = torch.tensor(ids_)
            sw[i, :len(ids_)] = 1.0
        return Representations(ids=list(ids), dense=dense, valid=valid, sparse_ids=sid, sparse_weights=sw,
                               token_ids=torch.zeros(n, k, dtype=torch.long),
                               input_tokens=torch.full((n,), 5, dtype=torch.long))


COLL = synthetic_collection(60, 10, seed=1)


def config(**kw):
    """A SweepConfig; keywords naming an EncodeOptions field go into its options."""
    from dataclasses import fields

    from repbench.encoders.options import EncodeOptions

    names = {f.name for f in fields(EncodeOptions)}
    base = dict(backbone="fake", encoder="sequential", kq=[1, 2], kp=[1, 3], modes=["all"], depth=50)
    base.update({k: v for k, v in kw.items() if k not in names})
    return SweepConfig(**base, options=EncodeOptions(**{k: v for k, v in kw.items() if k in names}))


class Stop(Exception):
    pass


def test_sweep_outputs_and_sanity(tmp_path):
    enc = FakeEncoder()
    run_sweep(COLL, BACKBONE, config(), tmp_path, encode_fn=enc, progress=False)
    # each side encoded once per K
    assert sorted(enc.calls) == [("passage", 1), ("passage", 3), ("query", 1), ("query", 2)]
    table = pd.read_csv(tmp_path / "per_query.csv", dtype={"qid": str})
    assert list(table.columns) == list(PER_QUERY_COLUMNS)
    # (1,1) has the three single-vector modes, the other three cells all five; 10 queries x 4 measures
    assert len(table) == (3 + 3 * 5) * 10 * 5  # cells x queries x 5 default measures
    assert set(table["qid"]) == set(COLL.qrels)
    assert table["value"].between(0, 1).all()
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert list(summary.columns) == list(SUMMARY_COLUMNS) and (summary["n"] == 10).all()
    # Planted words make lexical matching near-perfect; dense bag-of-words vectors beat random rankings.
    ndcg = summary[summary.measure == "ndcg_cut_10"].set_index(["k_q", "k_p", "mode"])["mean"]
    for cell in [(1, 1), (1, 3), (2, 1), (2, 3)]:
        assert ndcg[(*cell, "sparse_max")] > 0.8
    rng = np.random.default_rng(0)
    evaluator = pytrec_eval.RelevanceEvaluator(COLL.qrels, {"ndcg_cut.10"})
    random_ndcg = np.mean([
        np.mean([v["ndcg_cut_10"] for v in evaluator.evaluate(
            {q: dict(zip(COLL.corpus_ids, rng.random(60).tolist(), strict=True)) for q in COLL.qrels}).values()])
        for _ in range(50)
    ])
    assert random_ndcg < 0.2
    for key in [(1, 1, "single_dense"), (2, 3, "multi_dense"), (2, 3, "single_dense")]:
        assert ndcg[key] > random_ndcg + 0.05, key
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["kind"] == "effectiveness_sweep" and meta["config"]["kq"] == [1, 2]
    assert {(e["side"], e["k"]) for e in meta["encoding"]} == {("passage", 1), ("passage", 3), ("query", 1), ("query", 2)}
    assert len(list((tmp_path / "runs").glob("*.trec"))) == 18


def test_run_files_reproduce_the_table(tmp_path):
    run_sweep(COLL, BACKBONE, config(kq=[2], kp=[3]), tmp_path, encode_fn=FakeEncoder(), progress=False)
    table = pd.read_csv(tmp_path / "per_query.csv", dtype={"qid": str})
    run = read_run(tmp_path / "runs" / "fake__sequential__q2p3__fusion_multi_sparse_max.trec")
    assert all(len(docs) == 50 for docs in run.values())
    direct = pytrec_eval.RelevanceEvaluator(COLL.qrels, {"ndcg_cut.10"}).evaluate(run)
    mine = table[(table["mode"] == "fusion_multi_sparse_max") & (table["measure"] == "ndcg_cut_10")]
    assert dict(zip(mine["qid"], mine["value"], strict=True)) == pytest.approx(
        {q: v["ndcg_cut_10"] for q, v in direct.items()}, abs=1e-12)


def test_interrupted_sweep_resumes_to_the_same_table(tmp_path):
    run_sweep(COLL, BACKBONE, config(), tmp_path / "full", encode_fn=FakeEncoder(), progress=False)

    def stop_after_first(kq, kp):
        raise Stop

    first = FakeEncoder()
    with pytest.raises(Stop):
        run_sweep(COLL, BACKBONE, config(), tmp_path / "cut", encode_fn=first, after_cell=stop_after_first,
                  progress=False)
    assert not (tmp_path / "cut" / "per_query.csv").exists()
    assert sorted(first.calls) == [("passage", 1), ("query", 1)]

    second, done = FakeEncoder(), []
    run_sweep(COLL, BACKBONE, config(), tmp_path / "cut", encode_fn=second,
              after_cell=lambda kq, kp: done.append((kq, kp)), progress=False)
    assert (1, 1) not in done and len(done) == 3  # the finished cell is not recomputed
    assert sorted(second.calls) == [("passage", 3), ("query", 2)]  # cached encodings are reused
    assert (tmp_path / "cut" / "per_query.csv").read_bytes() == (tmp_path / "full" / "per_query.csv").read_bytes()
    assert (tmp_path / "cut" / "summary.csv").read_bytes() == (tmp_path / "full" / "summary.csv").read_bytes()
    # a rerun of a finished sweep encodes and scores nothing
    third, done = FakeEncoder(), []
    run_sweep(COLL, BACKBONE, config(), tmp_path / "cut", encode_fn=third,
              after_cell=lambda kq, kp: done.append((kq, kp)), progress=False)
    assert third.calls == [] and done == []


def test_resume_with_other_settings_is_refused(tmp_path):
    run_sweep(COLL, BACKBONE, config(kq=[1], kp=[1]), tmp_path, encode_fn=FakeEncoder(), progress=False)
    with pytest.raises(RepbenchError, match=r"other settings \(depth\)"):
        run_sweep(COLL, BACKBONE, config(kq=[1], kp=[1], depth=20), tmp_path, encode_fn=FakeEncoder(),
                  progress=False)


def test_bad_k_lists_are_refused():
    with pytest.raises(RepbenchError, match="--kq needs distinct positive integers"):
        config(kq=[1, 1])


def test_coinciding_query_and_doc_ids_are_warned_about(tmp_path):
    coll = synthetic_collection(30, 3, seed=2)
    coll.query_ids = [coll.corpus_ids[5], "qx", "qy"]
    coll.qrels = dict(zip(coll.query_ids, coll.qrels.values(), strict=True))
    with pytest.warns(UserWarning, match="1 of 3 query ids are also doc ids"):
        table = run_sweep(coll, BACKBONE, config(kq=[1], kp=[1], modes=["single_dense"]), tmp_path,
                          encode_fn=FakeEncoder(), progress=False)
    run = read_run(tmp_path / "runs" / "fake__sequential__q1p1__single_dense.trec")
    assert coll.corpus_ids[5] not in run[coll.corpus_ids[5]] and len(run[coll.corpus_ids[5]]) == 29
    assert set(table["qid"]) == set(coll.query_ids)


# ---- every option that changes a representation keys the cache and the sweep's identity -------------
# One non-default value per EncodeOptions field the sweep passes on (batch size is keyed too, as padding
# changes float sums); each is read by the encoder named with it.
CHANGED = [("parallel", "readout", "aligned"), ("parallel", "denoise_steps", 2),
           ("parallel", "confidence", "topk_margin"), ("sequential", "early_stop", "upstream"),
           ("sequential", "early_stop", "strict"), ("sequential", "adapt_prompt", True),
           ("sequential", "prompt_variant", "three"), ("sequential", "truncate", False),
           ("parallel", "sparse_top_k", 7), ("sequential", "batch_size", 3)]
DIFF_BACKBONE = SimpleNamespace(spec=SimpleNamespace(name="fake", family="diffusion"), vocab_size=V, mask_token_id=5)


def test_every_encode_option_is_exercised_by_the_re_encode_test():
    from dataclasses import fields

    from repbench.encoders.options import EncodeOptions

    per_encoding = {"k", "side", "max_length"}  # K and side vary per encoding; max length is in the identity
    assert {name for _, name, _ in CHANGED} >= {f.name for f in fields(EncodeOptions)} - per_encoding


@pytest.mark.parametrize(("encoder", "name", "value"), CHANGED, ids=[c[1] for c in CHANGED])
def test_changing_any_encode_option_re_encodes(tmp_path, encoder, name, value):
    bb = DIFF_BACKBONE if encoder == "parallel" else BACKBONE
    cache = tmp_path / "cache"
    base = dict(encoder=encoder, kq=[2], kp=[3])
    first = FakeEncoder()
    run_sweep(COLL, bb, config(**base), tmp_path / "a", encode_fn=first, cache_dir=cache, progress=False)
    assert sorted(first.calls) == [("passage", 3), ("query", 2)] and first.options == [{}, {}]
    again = FakeEncoder()  # same options, other output directory: everything comes from the cache
    run_sweep(COLL, bb, config(**base), tmp_path / "b", encode_fn=again, cache_dir=cache, progress=False)
    assert again.calls == []
    changed = FakeEncoder()
    run_sweep(COLL, bb, config(**base, **{name: value}), tmp_path / "c", encode_fn=changed, cache_dir=cache,
              progress=False)
    assert sorted(changed.calls) == [("passage", 3), ("query", 2)]
    if name != "batch_size":
        assert changed.options == [{name: value}] * 2  # and the option reaches the encoder
    state = json.loads((tmp_path / "c" / "sweep_state.json").read_text())
    if name != "batch_size":
        assert state[name] == value
        with pytest.raises(RepbenchError, match=rf"other settings \({name}\)"):
            run_sweep(COLL, bb, config(**base), tmp_path / "c", encode_fn=FakeEncoder(), cache_dir=cache,
                      progress=False)


def test_prompt_variant_named_or_by_default_share_a_cache_entry(tmp_path):
    first, second = FakeEncoder(), FakeEncoder()
    run_sweep(COLL, BACKBONE, config(kq=[2], kp=[3]), tmp_path / "a", encode_fn=first, cache_dir=tmp_path / "c",
              progress=False)
    run_sweep(COLL, BACKBONE, config(kq=[2], kp=[3], prompt_variant="few"), tmp_path / "b", encode_fn=second,
              cache_dir=tmp_path / "c", progress=False)
    assert len(first.calls) == 2 and second.calls == []  # "few" is what K>1 uses by default


def test_an_option_the_encoder_does_not_read_is_refused_before_encoding(tmp_path):
    enc = FakeEncoder()
    with pytest.raises(RepbenchError, match="the sequential encoder does not use readout"):
        run_sweep(COLL, BACKBONE, config(readout="aligned"), tmp_path, encode_fn=enc, progress=False)
    assert enc.calls == [] and not (tmp_path / "sweep_state.json").exists()
    with pytest.raises(RepbenchError, match="prompt_variant must be one of few, one, three"):
        config(prompt_variant="two")


def test_relevance_level_reaches_the_binary_measures(tmp_path):
    table = run_sweep(COLL, BACKBONE, config(kq=[1], kp=[1], modes=["sparse_max"], relevance_level=2),
                      tmp_path, encode_fn=FakeEncoder(), progress=False)
    run = read_run(tmp_path / "runs" / "fake__sequential__q1p1__sparse_max.trec")
    for level in (1, 2):
        direct = pytrec_eval.RelevanceEvaluator(COLL.qrels, {"recall.100"}, relevance_level=level).evaluate(run)
        ref = {q: v["recall_100"] for q, v in direct.items()}
        mine = table[table["measure"] == "recall_100"]
        got = dict(zip(mine["qid"], mine["value"], strict=True))
        assert (got == pytest.approx(ref, abs=1e-12)) == (level == 2)


def test_the_fit_check_uses_the_prompt_variant_and_refuses_before_any_write(tmp_path):
    # tiny-ar's prompts fit in 62 tokens with the default wording; with "three" they need 75. The check
    # before the first write must see the variant, or sweep_state.json is written and only encoding refuses.
    from repbench.backbones import load_backbone

    bb = load_backbone("tiny-ar", device="cpu", dtype="float32")
    cfg = config(backbone="tiny-ar", encoder="sequential", kq=[1], kp=[4], max_length=62, prompt_variant="three")
    out = tmp_path / "sweep"
    with pytest.raises(RepbenchError, match=r"--max-length 62 is too small"):
        run_sweep(COLL, bb, cfg, out, progress=False)
    assert not out.exists() or not any(out.iterdir())


def test_a_field_added_to_encode_options_reaches_the_cli_the_sweep_state_and_the_cache_key(tmp_path, monkeypatch):
    # One options source: a new method field, declared once, is an option of encode/evaluate, a setting a
    # resumed sweep must match, and part of the cache key, without an edit anywhere else (besides the
    # encoder that reads it saying so in its registry row).
    import argparse
    from dataclasses import dataclass, replace

    from repbench.commands.encode_options import add_method_arguments, method_fields
    from repbench.encoders import registry
    from repbench.encoders.options import EncodeOptions, _field

    seq = registry.REGISTRY["sequential"]
    monkeypatch.setitem(registry.REGISTRY, "sequential", replace(seq, options=seq.options | {"new_knob"}))

    @dataclass(frozen=True)
    class WithKnob(EncodeOptions):
        new_knob: int = _field(3, "a method option added later")

    parser = argparse.ArgumentParser()
    add_method_arguments(parser, WithKnob)
    args = parser.parse_args(["--new-knob", "5"])
    assert method_fields(args, WithKnob)["new_knob"] == 5
    assert "a method option added later" in parser.format_help()

    first = FakeEncoder()
    run_sweep(COLL, BACKBONE, SweepConfig(backbone="fake", encoder="sequential", kq=[2], kp=[3],
                                          options=WithKnob(new_knob=5)),
              tmp_path / "a", encode_fn=first, cache_dir=tmp_path / "c", progress=False)
    assert first.options == [{"new_knob": 5}] * 2  # it reaches the encoder
    assert json.loads((tmp_path / "a" / "sweep_state.json").read_text())["new_knob"] == 5
    with pytest.raises(RepbenchError, match=r"other settings \(new_knob\)"):
        run_sweep(COLL, BACKBONE, SweepConfig(backbone="fake", encoder="sequential", kq=[2], kp=[3],
                                              options=WithKnob(new_knob=6)),
                  tmp_path / "a", encode_fn=FakeEncoder(), cache_dir=tmp_path / "c", progress=False)
    other = FakeEncoder()  # another value is another cache entry
    run_sweep(COLL, BACKBONE, SweepConfig(backbone="fake", encoder="sequential", kq=[2], kp=[3],
                                          options=WithKnob(new_knob=6)),
              tmp_path / "b", encode_fn=other, cache_dir=tmp_path / "c", progress=False)
    assert len(other.calls) == 2
