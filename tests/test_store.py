"""The content-addressed store: damaged, truncated or stale shards and caches are detected and redone."""

from __future__ import annotations

import json
import zlib

import pytest
import torch

from repbench.encoders import store as st
from repbench.encoders.types import Representations, StoreError

H, K = 8, 2


class Enc:
    """Deterministic per text (a seeded vector per text), recording which rows it was asked for."""

    def __init__(self):
        self.calls: list[list[str]] = []

    def __call__(self, ids, texts):
        self.calls.append(list(ids))
        dense = torch.stack([torch.randn(K, H, generator=torch.Generator().manual_seed(zlib.crc32(t.encode())))
                             for t in texts]) if texts else torch.zeros(0, K, H)
        n = len(ids)
        return Representations(ids=list(ids), dense=dense, valid=torch.ones(n, K, dtype=torch.bool),
                               sparse_ids=torch.tensor([[zlib.crc32(t.encode()) % 50, -1] for t in texts]).long(),
                               sparse_weights=torch.tensor([[3.0, 0.0]] * n), token_ids=torch.zeros(n, K).long(),
                               input_tokens=torch.full((n,), 4).long(), meta={"vocab_size": 50})


IDS = [f"d{i}" for i in range(23)]
TEXTS = [f"text number {i}" for i in range(23)]


def _encode(out, texts=TEXTS, enc=None, **kw):
    enc = enc or Enc()
    st.encode_sharded(out, IDS, texts, {"k": K}, enc, shard_size=5, progress=False, **kw)
    return enc


def _zero(path, n=4000):
    data = bytearray(path.read_bytes())
    mid = len(data) // 2 - n // 2
    data[mid:mid + n] = bytes(n)
    path.write_bytes(bytes(data))


def test_store_round_trip_float16_and_manifest(tmp_path):
    _encode(tmp_path / "s")
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert manifest["n_shards"] == 5 and [e["rows"] for e in manifest["shards"]] == [5, 5, 5, 5, 3]
    assert {e["dtype"] for e in manifest["shards"]} == {"float16"}
    reps = st.load_sharded(tmp_path / "s")
    ref = Enc()(IDS, TEXTS)
    assert reps.ids == IDS and reps.dense.dtype == torch.float32
    assert torch.equal(reps.dense, ref.dense.half().float())  # float16 rounding, nothing else
    assert torch.equal(reps.sparse_weights, ref.sparse_weights)  # sparse weights stay exact


def test_zeroed_bytes_in_a_shard_are_detected_and_the_shard_recomputed(tmp_path, capsys):
    out = tmp_path / "s"
    _encode(out)
    clean = st.shard_stem(out, 2).with_suffix(".safetensors").read_bytes()
    _zero(st.shard_stem(out, 2).with_suffix(".safetensors"))
    with pytest.raises(StoreError, match="sha256"):
        Representations.load(st.shard_stem(out, 2))
    with pytest.raises(StoreError, match="sha256"):
        st.load_sharded(out)
    enc = _encode(out)
    assert enc.calls == [IDS[10:15]]  # only the damaged shard
    assert "re-encoding shard 2" in capsys.readouterr().err
    assert st.shard_stem(out, 2).with_suffix(".safetensors").read_bytes() == clean


def test_truncated_shard_and_damaged_sidecar_do_not_pass_a_rerun(tmp_path):
    out = tmp_path / "s"
    _encode(out)
    tensors = st.shard_stem(out, 0).with_suffix(".safetensors")
    tensors.write_bytes(tensors.read_bytes()[:-100])
    st.shard_stem(out, 3).with_suffix(".json").write_text('{"ids": ["d15"')
    with pytest.raises(StoreError, match="truncated"):
        st.verify_shard(out, 0)
    enc = _encode(out)
    assert sorted(enc.calls) == [IDS[0:5], IDS[15:20]]
    assert st.load_sharded(out).ids == IDS


def test_input_edited_in_place_reencodes_only_the_changed_shard(tmp_path):
    out = tmp_path / "s"
    _encode(out)
    edited = list(TEXTS)
    edited[7] = "an edited text"
    enc = _encode(out, texts=edited)
    assert enc.calls == [IDS[5:10]]
    reps = st.load_sharded(out)
    assert torch.equal(reps.dense[7], Enc()(["d7"], ["an edited text"]).dense[0].half().float())
    with pytest.raises(StoreError, match="input rows"):
        st.verify_shard(out, 1, IDS[5:10], TEXTS[5:10])


def test_other_options_are_refused(tmp_path):
    from repbench.errors import RepbenchError

    _encode(tmp_path / "s")
    with pytest.raises(RepbenchError, match="different config"):
        _encode(tmp_path / "s", store_dtype="float32")


def test_array_workers_write_the_same_shards_and_the_last_one_merges(tmp_path):
    _encode(tmp_path / "one")
    w = tmp_path / "array"
    e0 = _encode(w, shard_index=0, worker_count=2)
    assert e0.calls == [IDS[0:5], IDS[10:15], IDS[20:23]] and not (w / "manifest.json").exists()
    with pytest.raises(StoreError, match="2 shard"):
        st.write_manifest(w)
    e1 = _encode(w, shard_index=1, worker_count=2)
    assert e1.calls == [IDS[5:10], IDS[15:20]] and (w / "manifest.json").exists()
    for i in range(5):
        for suffix in (".safetensors", ".json"):
            assert st.shard_stem(w, i).with_suffix(suffix).read_bytes() == \
                st.shard_stem(tmp_path / "one", i).with_suffix(suffix).read_bytes()


def test_merge_command(tmp_path, capsys):
    from repbench.cli import main

    w = tmp_path / "array"
    _encode(w, shard_index=0, worker_count=2)
    assert main(["merge", str(w)]) == 2
    assert "not complete and verified" in capsys.readouterr().err
    _encode(w, shard_index=1, worker_count=2)
    (w / "manifest.json").unlink()
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in zip(IDS, TEXTS, strict=True)))
    assert main(["merge", str(w), "--input", str(src)]) == 0
    assert st.open_store(w).manifest["n_items"] == 23


def test_sweep_cache_with_zeroed_bytes_is_recomputed(tmp_path, capsys):
    from test_eval_sweep import BACKBONE, COLL, FakeEncoder, config

    from repbench.evaluation.sweep import run_sweep

    cache = tmp_path / "cache"
    run_sweep(COLL, BACKBONE, config(kq=[2], kp=[3]), tmp_path / "a", encode_fn=FakeEncoder(), cache_dir=cache,
              progress=False)
    passage = next(cache.glob("*passage*/shard_00000.safetensors"))  # the passage side is a store
    _zero(passage)
    capsys.readouterr()
    enc = FakeEncoder()
    run_sweep(COLL, BACKBONE, config(kq=[2], kp=[3]), tmp_path / "b", encode_fn=enc, cache_dir=cache,
              progress=False)
    assert enc.calls == [("passage", 3)]  # the damaged shard only; the query cache was intact
    err = capsys.readouterr().err
    assert "sha256" in err and "re-encoding shard 0" in err, err
    assert (tmp_path / "a" / "per_query.csv").read_bytes() == (tmp_path / "b" / "per_query.csv").read_bytes()


def test_encode_refuses_bad_shard_arguments_before_writing(tmp_path, capsys):
    from repbench.cli import main

    src = tmp_path / "c.jsonl"
    src.write_text('{"_id": "a", "text": "x"}\n')
    for extra, msg in ((["--shard-index", "2", "--num-shards", "2"], "--shard-index must be in"),
                       (["--shard-size", "0"], "--shard-size must be a positive"),
                       (["--batch-size", "0"], "--batch-size must be a positive")):
        assert main(["encode", str(src), "--backbone", "tiny-ar", "--out", str(tmp_path / "o"), *extra]) == 2
        assert msg in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_encode_cli_as_two_array_workers(tmp_path):
    from repbench.cli import main

    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps({"_id": f"d{i}", "text": f"text {i}"}) + "\n" for i in range(5)))
    common = ["encode", str(src), "--backbone", "tiny-diffusion", "--k", "2", "--device", "cpu",
              "--shard-size", "2", "--store-dtype", "bfloat16"]
    assert main([*common, "--out", str(tmp_path / "w"), "--shard-index", "1", "--num-shards", "2"]) == 0
    assert not (tmp_path / "w" / "manifest.json").exists()
    assert main([*common, "--out", str(tmp_path / "w"), "--shard-index", "0", "--num-shards", "2"]) == 0
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    a, b = st.load_sharded(tmp_path / "w"), st.load_sharded(tmp_path / "one")
    assert a.ids == [f"d{i}" for i in range(5)] and torch.equal(a.dense, b.dense)
    assert json.loads((tmp_path / "w" / "manifest.json").read_text())["store_dtype"] == "bfloat16"


def test_a_worker_does_not_merge_another_workers_stale_shard(tmp_path, capsys):
    w = tmp_path / "array"
    _encode(w, shard_index=0, worker_count=2)
    _encode(w, shard_index=1, worker_count=2)
    (w / "manifest.json").unlink()
    edited = list(TEXTS)
    edited[6] = "edited after worker 1 ran"  # row 6 is in shard 1, owned by worker 1
    _encode(w, texts=edited, shard_index=0, worker_count=2)
    assert not (w / "manifest.json").exists()
    assert "input rows it encodes have changed" in capsys.readouterr().err
    _encode(w, texts=edited, shard_index=1, worker_count=2)
    assert st.load_sharded(w).ids == IDS
