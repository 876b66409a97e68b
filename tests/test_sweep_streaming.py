"""The sweep's passage side as a store scored by streaming search: the same vectors as one whole-side encode
(bit for bit), the same runs as in-memory search, and a bounded, checked --max-memory."""

from __future__ import annotations

import numpy as np
import torch

from repbench.backbones import load_backbone
from repbench.encoders import encode
from repbench.encoders.store import load_sharded, open_store
from repbench.evaluation.collections import synthetic_collection
from repbench.evaluation.passage_store import Layout, build, plan_layout, row_order
from repbench.evaluation.sweep import run_sweep
from repbench.evaluation.trec import read_run, round_scores
from repbench.retrieval.search import modes_for, retrieve

# Lengths 1..9 words, with repeats, so longest-first has ties and batches of mixed padding.
TEXTS = [" ".join(f"w{j}" for j in range(n)) + " end" for n in (3, 7, 1, 7, 9, 2, 5, 3, 8, 1, 6)]
IDS = [f"p{i:02d}" for i in range(len(TEXTS))]


def test_plan_layout_shards_hold_whole_batches():
    assert plan_layout(8, None, True, 5000) == Layout(1024, True)
    assert plan_layout(48, None, True, 5000) == Layout(1056, True)  # 22 batches of 48: first multiple >= 1024
    assert plan_layout(48, 100, True, 5000) == Layout(100, False)  # --shard-size: input order, as given
    assert plan_layout(48, None, False, 5000) == Layout(5000, False)  # lengths unknown here: one call's rows


def test_row_order_is_longest_first_ties_in_input_order():
    order = row_order(TEXTS, lambda batch: [t.split() for t in batch], block=4)  # blocks of 4: lengths joined
    assert order.tolist() == [4, 8, 1, 3, 10, 6, 0, 7, 5, 2, 9]
    assert row_order(TEXTS, None).tolist() == list(range(len(TEXTS)))


def test_store_by_length_equals_one_whole_side_encode_bit_for_bit(tmp_path):
    """Shards of whole batches in encode's own order: every forward pass sees the batch one call gives it,
    so dense, slots, sparse rows and signals are equal exactly (float32 padding otherwise moves last bits)."""
    bb = load_backbone("tiny-ar")
    got = []
    ref = encode(bb, TEXTS, ids=IDS, k=2, side="passage", batch_size=2, max_length=64,
                 on_signals=lambda i, a: got.append(a))
    ref_signals = got[0]

    def shard(ids, texts):
        part = []
        reps = encode(bb, texts, ids=ids, k=2, side="passage", batch_size=2, max_length=64,
                      on_signals=lambda i, a: part.append(a))
        return reps, part[0]

    tok = lambda batch: bb.tokenizer(batch, add_special_tokens=False)["input_ids"]  # noqa: E731
    order = row_order(TEXTS, tok)
    n, signals = build(tmp_path / "s", IDS, TEXTS, Layout(4, True), shard, order, {"k": 2}, {}, True, False)
    assert n == len(TEXTS) and len(open_store(tmp_path / "s").shards) == 3
    stored = load_sharded(tmp_path / "s")
    assert stored.ids == [IDS[i] for i in order.tolist()]
    back = np.argsort(order)  # stored row of each input item
    for name in ("dense", "valid", "sparse_ids", "sparse_weights", "token_ids"):
        assert torch.equal(getattr(stored, name)[torch.from_numpy(back)], getattr(ref, name)), name
    assert signals.keys() == ref_signals.keys()
    for name, value in ref_signals.items():
        assert np.array_equal(signals[name], value, equal_nan=True), name
    # resumed: nothing encoded again, the same signals read back from the shards' files
    n2, again = build(tmp_path / "s", IDS, TEXTS, Layout(4, True), shard, order, {"k": 2}, {}, True, False)
    assert n2 == 0 and all(np.array_equal(again[k], v, equal_nan=True) for k, v in ref_signals.items())


# A chunk's MaxSim matmul may sum in another order than the whole corpus's (MKL on an AMD EPYC: one float32
# ulp in multi_dense, ~1e-7 after fusion's min-max), so a written score may move by one unit of its sixth
# decimal and two documents that close may swap, or trade places at the depth cut.
LAST_DIGIT = 1e-6 + 1e-9


def _assert_same_lists(got: dict, expected: dict, name: str) -> None:
    assert got.keys() == expected.keys(), name
    for qid, ref in expected.items():
        run = got[qid]
        assert len(run) == len(ref), (name, qid)
        for doc in run.keys() & ref.keys():
            assert abs(run[doc] - ref[doc]) <= LAST_DIGIT, (name, qid, doc, run[doc], ref[doc])
        cut = min(ref.values())
        for doc in run.keys() ^ ref.keys():  # only a near-tie at the depth cut may trade places
            assert abs(run.get(doc, ref.get(doc)) - cut) <= 2 * LAST_DIGIT, (name, qid, doc)
        ranked = [d for d in run if d in ref]
        assert all(ref[a] >= ref[b] - 2 * LAST_DIGIT for a, b in zip(ranked, ranked[1:], strict=False)), (name, qid)


def test_streamed_sweep_writes_the_in_memory_runs(tmp_path):
    """Every cell's runs, streamed from the passage store in chunks of a few documents, equal in-memory
    `retrieve` on the same encodings (rounded as written, up to the last digit: see LAST_DIGIT), computed here."""
    from test_eval_sweep import BACKBONE, FakeEncoder, config

    coll = synthetic_collection(60, 10, seed=1)
    cfg = config(kq=[1, 2], kp=[1, 3], depth=30)
    # 1 MiB over the fixed room: chunks of a few hundred documents at most; the sweep shards by 4 rows.
    run_sweep(coll, BACKBONE, cfg, tmp_path, encode_fn=FakeEncoder(), progress=False, shard_size=4,
              max_memory=(72 << 20) + (1 << 20))
    qids, qtexts = coll.judged_queries()
    enc = FakeEncoder()
    for kq in cfg.kq:
        queries = enc(BACKBONE, qtexts, ids=qids, k=kq, side="query")
        for kp in cfg.kp:
            docs = enc(BACKBONE, coll.corpus_texts, ids=coll.corpus_ids, k=kp, side="passage")
            modes = modes_for(kq, kp, cfg.modes)
            expected = retrieve(queries, docs, modes, depth=30, vocab_size=BACKBONE.vocab_size)
            for mode in modes:
                path = tmp_path / "runs" / f"fake__sequential__q{kq}p{kp}__{mode}.trec"
                _assert_same_lists(read_run(path), round_scores(expected[mode]), path.name)
    assert sorted(p.name for p in (tmp_path / "reps").iterdir() if p.is_dir()) == sorted(
        p.parent.name for p in (tmp_path / "reps").glob("*/manifest.json"))
    assert len(list((tmp_path / "reps").glob("*__passage__*/manifest.json"))) == 2


def test_evaluate_refuses_a_bad_max_memory(tmp_path, capsys):
    from repbench.cli import main

    data = synthetic_collection(20, 3, seed=2).save_beir(tmp_path / "syn")
    base = ["evaluate", "--backbone", "tiny-ar", "--dataset", str(data), "--kq", "1", "--kp", "1",
            "--out", str(tmp_path / "o"), "--no-progress", "--modes", "single_dense"]
    assert main([*base, "--max-memory", "lots"]) == 2
    assert "--max-memory expects a size such as 4GiB" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # refused before anything was written
    assert main([*base, "--max-memory", "1MiB"]) == 2
    assert "--max-memory 1048576 B is too small" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # before the first write too, though the backbone was loaded


def test_signals_written_in_blocks_are_the_bytes_of_the_whole_table(tmp_path):
    """Block-wise writing and the block-wise copy (the sweep's bounded-memory signals) give exactly what one
    pandas to_csv of the concatenated table gives (the reference, written here)."""
    import pandas as pd

    from repbench.schema.signals import SIGNAL_COLUMNS, copy_signals, signals_frame, write_signals_blocks

    rng = np.random.default_rng(3)
    ids = [f"d{i}" for i in range(7)]
    arrays = {"entropy": rng.random((7, 3)), "text_tokens": np.arange(7.0),
              "mean_pairwise_cosine": np.where(np.arange(7) % 3 == 0, np.nan, rng.random(7) * 1e-7)}
    whole = signals_frame(ids, arrays, dataset="x", backbone="b", encoder="e", side="passage", k=3)
    reference = whole.astype({"slot": "Int64"})[list(SIGNAL_COLUMNS)].to_csv(index=False)
    blocks = [signals_frame(ids[lo:lo + 2], {n: arrays[n][lo:lo + 2]}, dataset="x", backbone="b", encoder="e",
                            side="passage", k=3) for n in ("text_tokens", "mean_pairwise_cosine", "entropy")
              for lo in range(0, 7, 2)]
    write_signals_blocks(tmp_path / "a.csv", blocks)
    assert (tmp_path / "a.csv").read_text() == reference
    copy_signals(tmp_path / "b.csv", [tmp_path / "a.csv", tmp_path / "a.csv"], "y", rows=5)
    twice = pd.concat([whole, whole]).assign(dataset="y").astype({"slot": "Int64"})[list(SIGNAL_COLUMNS)]
    assert (tmp_path / "b.csv").read_text() == twice.to_csv(index=False)


def test_an_engine_encodes_the_store_shards_at_once_with_the_bytes_of_one_by_one(tmp_path):
    """An engine's encode_fn that offers `encode_parts` gets every shard to do in one call (its workers encode
    them side by side) and hands results back in any order; each shard is still one encode of its own rows, so
    the store's shard files and the sweep's tables equal the one-shard-after-another path's byte for byte."""
    from test_eval_sweep import BACKBONE, FakeEncoder, config

    coll = synthetic_collection(30, 6, seed=5)
    cfg = config(kq=[1], kp=[3], depth=20)
    run_sweep(coll, BACKBONE, cfg, tmp_path / "one", encode_fn=FakeEncoder(), progress=False, shard_size=7)
    calls = []
    enc = FakeEncoder()

    def encode_parts(parts, encoder, signals, **fields):
        calls.append([len(ids) for ids, _ in parts])
        assert encoder == "sequential" and fields["k"] == 3 and fields["side"] == "passage" and signals
        for j in reversed(range(len(parts))):  # as workers finish: not in order
            ids, texts = parts[j]
            # (reps, signal arrays): the fake reports none, as a worker's encode_rows gives {} then
            yield j, (enc(BACKBONE, texts, ids=ids, k=fields["k"], side="passage"), {})

    def engine_fn(*args, **kwargs):
        return enc(*args, **kwargs)

    engine_fn.encode_parts = encode_parts
    run_sweep(coll, BACKBONE, cfg, tmp_path / "many", encode_fn=engine_fn, progress=False, shard_size=7)
    assert calls == [[7, 7, 7, 7, 2]]  # all five shards in one call
    assert (tmp_path / "many" / "per_query.csv").read_bytes() == (tmp_path / "one" / "per_query.csv").read_bytes()
    (one,) = (tmp_path / "one" / "reps").glob("*__passage__*/")
    (many,) = (tmp_path / "many" / "reps").glob("*__passage__*/")
    names = sorted(p.name for p in one.glob("shard_*"))
    assert len(names) == 10 and names == sorted(p.name for p in many.glob("shard_*"))
    assert all((one / n).read_bytes() == (many / n).read_bytes() for n in names)
