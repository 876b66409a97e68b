"""Encode-time signals: checked against plain forwards (scipy entropy, numpy cosine), and written by the sweep."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import scipy.special
import scipy.stats
import torch

from repbench.backbones import load_backbone
from repbench.encoders import encode
from repbench.encoders.prompts import N_TAIL, build_prompt_ids
from repbench.encoders.types import Representations
from repbench.errors import InputError
from repbench.evaluation.collections import synthetic_collection
from repbench.evaluation.sweep import SweepConfig, run_sweep
from repbench.schema.signals import SIGNAL_COLUMNS, read_signals, signals_frame

TEXTS = [
    "Information retrieval with language models.",
    "The cat sat on the mat near the window while it rained all afternoon in the old town.",
    "Diffusion models read masked positions in parallel.",
]


def _plain(bb, seq):
    with torch.inference_mode():
        out = bb.model(input_ids=torch.tensor([seq]), output_hidden_states=True)
    return out.hidden_states[-1][0].double().numpy(), out.logits[0].double().numpy()


def _reference(logits: np.ndarray):
    p = scipy.special.softmax(logits, axis=-1)
    return scipy.stats.entropy(p, axis=-1), p.max(-1)


def _mean_cos(h: np.ndarray) -> float:
    u = h / np.linalg.norm(h, axis=1, keepdims=True)
    return float(np.mean([u[i] @ u[j] for i in range(len(u)) for j in range(i + 1, len(u))]))


def _collect(bb, encoder, k, **kw):
    got = []
    if encoder in ("parallel", "sequential"):
        kw["truncate"] = False
    reps = encode(bb, TEXTS, encoder=encoder, k=k, batch_size=2,
                  on_signals=lambda ids, arrays: got.append((ids, arrays)), **kw)
    assert len(got) == 1 and got[0][0] == [str(i) for i in range(len(TEXTS))]
    return reps, got[0][1]


def test_parallel_signals_match_a_plain_forward():
    bb = load_backbone("tiny-diffusion")
    k = 4
    reps, sig = _collect(bb, "parallel", k, side="passage")
    prompt = build_prompt_ids(bb.tokenizer, "passage", k)
    for i, text in enumerate(TEXTS):
        text_ids = bb.tokenizer.encode(text, add_special_tokens=False)
        seq = prompt.prefix + text_ids + prompt.suffix + [bb.mask_token_id] * k + prompt.tail
        h, logits = _plain(bb, seq)
        start = len(seq) - k - N_TAIL
        ent, top1 = _reference(logits[start:start + k])
        np.testing.assert_allclose(sig["entropy"][i], ent, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(sig["top1_prob"][i], top1, rtol=1e-4, atol=1e-6)
        assert sig["token_id"][i].tolist() == logits[start:start + k].argmax(-1).tolist()
        assert sig["text_tokens"][i] == len(text_ids) and sig["input_tokens"][i] == len(seq)
        assert sig["valid_slots"][i] == k
        assert sig["mean_pairwise_cosine"][i] == pytest.approx(_mean_cos(h[start:start + k]), abs=1e-4)
        assert sig["sparse_mass"][i] == pytest.approx(float(reps.sparse_weights[i].double().sum()), rel=1e-9)
        assert sig["distinct_tokens"][i] == len(set(logits[start:start + k].argmax(-1).tolist()))


def test_sequential_signals_match_no_cache_recomputation():
    bb = load_backbone("tiny-ar")
    k = 3
    _, sig = _collect(bb, "sequential", k)
    prompt = build_prompt_ids(bb.tokenizer, "query", k)
    for i, text in enumerate(TEXTS):
        seq = prompt.prefix + bb.tokenizer.encode(text, add_special_tokens=False) + prompt.suffix
        for j in range(k):  # slot j reads the logits of decode step j
            _, logits = _plain(bb, seq)
            ent, top1 = _reference(logits[-1])
            assert sig["entropy"][i, j] == pytest.approx(ent, rel=1e-4, abs=1e-5)
            assert sig["top1_prob"][i, j] == pytest.approx(top1, rel=1e-4, abs=1e-6)
            seq = seq + [int(logits[-1].argmax())]
            assert sig["token_id"][i, j] == seq[-1]


def test_single_vector_encoders_report_text_signals_only():
    bb = load_backbone("tiny-ar")
    _, sig = _collect(bb, "meanpool", 1)
    assert "entropy" not in sig and np.isnan(sig["mean_pairwise_cosine"]).all()
    assert sig["valid_slots"].tolist() == [1, 1, 1]


def test_signals_frame_round_trip_and_bad_file(tmp_path):
    arrays = {"text_tokens": np.array([3, 5]), "mean_pairwise_cosine": np.array([np.nan, 0.5]),
              "entropy": np.array([[1.0, 2.0], [3.0, 4.0]])}
    frame = signals_frame(["a", "b"], arrays, dataset="d", backbone="bb", encoder="e", side="query", k=2)
    path = tmp_path / "signals.csv"
    frame.to_csv(path, index=False)
    back = read_signals(path)
    assert list(back.columns) == list(SIGNAL_COLUMNS) and len(back) == 2 + 2 + 4
    ent = back[back.signal == "entropy"]
    assert ent["slot"].tolist() == [0, 1, 0, 1] and ent["value"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert np.isnan(back[(back.signal == "mean_pairwise_cosine") & (back.id == "a")]["value"].iat[0])
    lines = path.read_text().splitlines()
    assert ",0,entropy," in lines[5]  # file line 6: header, 2 text_tokens rows, 2 cosine rows, then entropy
    lines[5] = lines[5].replace(",0,entropy,", ",7,entropy,")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"signals.csv:6: expected an empty slot .* integer slot in \[0, k\)"):
        read_signals(path)


class SignalFake:
    """A fake encoder that reports signals (entropy = slot index + text length) as the real ones do."""

    def __call__(self, bb, texts, ids=None, encoder="sequential", k=1, side="query", batch_size=8,
                 max_length=256, progress=False, on_signals=None):
        n = len(texts)
        lens = np.array([len(t.split()) for t in texts], dtype=float)
        on_signals(list(ids), {"text_tokens": lens, "entropy": lens[:, None] + np.arange(k)[None, :]})
        dense = torch.randn(n, k, 8, generator=torch.Generator().manual_seed(k))
        words = [abs(hash(w)) % 50 for w in texts]
        return Representations(ids=list(ids), dense=dense, valid=torch.ones(n, k, dtype=torch.bool),
                               sparse_ids=torch.tensor(words)[:, None], sparse_weights=torch.ones(n, 1),
                               token_ids=torch.zeros(n, k, dtype=torch.long),
                               input_tokens=torch.full((n,), 5, dtype=torch.long))


def test_sweep_writes_signals_for_every_encoding_and_keeps_them_cached(tmp_path):
    coll = synthetic_collection(20, 4, seed=2)
    bb = SimpleNamespace(spec=SimpleNamespace(name="fake", family="ar"), vocab_size=50)
    cfg = SweepConfig(backbone="fake", encoder="sequential", kq=[1, 2], kp=[1], modes=["single_dense"], depth=10)
    run_sweep(coll, bb, cfg, tmp_path / "a", encode_fn=SignalFake(), progress=False)
    sig = read_signals(tmp_path / "a" / "signals.csv")
    qids, qtexts = coll.judged_queries()
    assert sorted(set(zip(sig.side, sig.k, strict=True))) == [("passage", 1), ("query", 1), ("query", 2)]
    assert (sig.dataset == coll.name).all()
    q2 = sig[(sig.side == "query") & (sig.k == 2) & (sig.signal == "entropy")]
    assert len(q2) == 2 * len(qids)
    expected = {(q, s): len(t.split()) + s for q, t in zip(qids, qtexts, strict=True) for s in (0, 1)}
    assert {(r.id, int(r.slot)): r.value for r in q2.itertuples()} == expected
    # a second sweep on the same cache encodes nothing and still writes the signals
    run_sweep(coll, bb, cfg, tmp_path / "b", cache_dir=tmp_path / "a" / "reps", progress=False,
              encode_fn=lambda *a, **k: pytest.fail("cached encodings should be reused"))
    assert (tmp_path / "b" / "signals.csv").read_bytes() == (tmp_path / "a" / "signals.csv").read_bytes()
