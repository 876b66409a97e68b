"""Encoders against plain forwards of the same ids, no-cache recomputation, and hand-built layouts."""

from __future__ import annotations

import json

import pytest
import torch

from repbench.encoders import MAX_K, encode, encode_ids
from repbench.encoders.prompts import N_TAIL, adapt_for_k, build_prompt_ids, tail_ids
from repbench.encoders.sparse import content_words, sparse_from_logits
from repbench.errors import InputError, RepbenchError

TEXTS = [
    "Information retrieval with language models.",
    "The cat sat on the mat near the window while it rained all afternoon in the old town.",
    "Diffusion models read masked positions in parallel.",
]
PAD_ATOL = 1e-5  # fp32: left padding only changes summation order in attention


def _plain(bb, seq):
    ids = torch.tensor([seq])
    with torch.inference_mode():
        out = bb.model(input_ids=ids, output_hidden_states=True)
    return out.hidden_states[-1][0], out.logits[0]


def test_parallel_reads_mask_positions_of_a_plain_forward(diff):
    k = 4
    reps = encode(diff, TEXTS, encoder="parallel", k=k, side="passage", batch_size=3, truncate=False)
    prompt = build_prompt_ids(diff.tokenizer, "passage", k)
    for i, text in enumerate(TEXTS):
        text_ids = diff.tokenizer.encode(text, add_special_tokens=False)
        seq = prompt.prefix + text_ids + prompt.suffix + [diff.mask_token_id] * k + prompt.tail
        assert reps.input_tokens[i] == len(seq)
        h, logits = _plain(diff, seq)
        start = len(seq) - k - N_TAIL
        torch.testing.assert_close(reps.dense[i], h[start:start + k], atol=PAD_ATOL, rtol=1e-4)
        assert torch.equal(reps.token_ids[i], logits[start:start + k].argmax(-1))


def test_aligned_readout_shifts_one_left_for_shifted_logits(diff):
    k = 2
    paper = encode(diff, TEXTS[:1], encoder="parallel", k=k, truncate=False)
    aligned = encode(diff, TEXTS[:1], encoder="parallel", k=k, truncate=False, readout="aligned")
    prompt = build_prompt_ids(diff.tokenizer, "query", k)
    seq = prompt.prefix + diff.tokenizer.encode(TEXTS[0], add_special_tokens=False) + prompt.suffix
    seq += [diff.mask_token_id] * k + prompt.tail
    h, _ = _plain(diff, seq)
    start = len(seq) - k - N_TAIL
    torch.testing.assert_close(paper.dense[0], h[start:start + k], atol=PAD_ATOL, rtol=1e-4)
    torch.testing.assert_close(aligned.dense[0], h[start - 1:start + k - 1], atol=PAD_ATOL, rtol=1e-4)


@pytest.mark.parametrize("encoder", ["parallel", "sequential", "meanpool", "lasttoken"])
def test_left_padding_does_not_change_a_row(ar, diff, encoder):
    bb = ar if encoder in ("sequential", "lasttoken") else diff
    k = 3 if encoder in ("parallel", "sequential") else 1
    batched = encode(bb, TEXTS, encoder=encoder, k=k, batch_size=3)
    for i, text in enumerate(TEXTS):
        alone = encode(bb, [text], encoder=encoder, k=k, batch_size=1)
        torch.testing.assert_close(batched.dense[i], alone.dense[0], atol=PAD_ATOL, rtol=1e-4)
        assert torch.equal(batched.valid[i], alone.valid[0])
        assert torch.equal(batched.sparse_ids[i][batched.sparse_ids[i] >= 0], alone.sparse_ids[0][alone.sparse_ids[0] >= 0])


def test_sequential_kv_cache_equals_no_cache_recomputation(ar):
    k = 5
    reps = encode(ar, TEXTS, encoder="sequential", k=k, batch_size=3, truncate=False)
    prompt = build_prompt_ids(ar.tokenizer, "query", k)
    for i, text in enumerate(TEXTS):
        seq = prompt.prefix + ar.tokenizer.encode(text, add_special_tokens=False) + prompt.suffix
        for j in range(k):  # recompute the whole sequence from scratch at every step
            h, logits = _plain(ar, seq)
            torch.testing.assert_close(reps.dense[i, j], h[-1], atol=PAD_ATOL, rtol=1e-4)
            nxt = int(logits[-1].argmax())
            assert int(reps.token_ids[i, j]) == nxt
            seq = seq + [nxt]


def test_sequential_produces_exactly_k_slots_without_early_stop(ar):
    calls = []
    reps = encode(ar, TEXTS[:2], encoder="sequential", k=6, batch_size=2, step_callback=lambda p, s: calls.append((p, s)))
    assert calls == [("start", 0), ("prefill", 0)] + [("decode", j) for j in range(1, 6)]
    assert (reps.token_ids >= 0).all()


def test_parallel_is_one_forward_pass(diff):
    calls = []
    encode(diff, TEXTS, encoder="parallel", k=16, batch_size=8, step_callback=lambda p, s: calls.append(p))
    assert calls == ["start", "forward"]


def test_denoise_steps_keep_each_slot_from_the_pass_that_unmasked_it(diff):
    one = encode(diff, TEXTS[:1], encoder="parallel", k=4, truncate=False)
    multi = encode(diff, TEXTS[:1], encoder="parallel", k=4, truncate=False, denoise_steps=2)
    # the most confident slot is unmasked in pass 1, so at least one slot equals the single-pass result
    same = [torch.allclose(one.dense[0, j], multi.dense[0, j], atol=1e-6) for j in range(4)]
    assert any(same)
    assert not all(same)  # the rest see the unmasked tokens in pass 2


def test_stop_token_truncation_parallel():
    from repbench.encoders import _truncate_parallel

    tokens = torch.tensor([[5, 2, 7, 8], [2, 5, 6, 7], [5, 6, 7, 8]])
    valid = _truncate_parallel(tokens, {2})
    assert valid.tolist() == [[True, False, False, False], [True, True, True, True], [True] * 4]


def test_stop_token_truncation_sequential():
    from repbench.encoders import _truncate_sequential

    quote = 18
    tokens = torch.tensor([[5, 18, 7, 8], [5, 6, 2, 7], [5, 6, 7, 8]])
    valid = _truncate_sequential(tokens, {2, quote})
    # slot k >= 1 is dropped when the token fed at it (generated at slot k-1) is `"` or special
    assert valid.tolist() == [[True, True, False, False], [True, True, True, False], [True] * 4]


def test_k_wording_rule():
    assert adapt_for_k("Use one word to represent the query.", 4) == "Use four words to represent the query."
    assert adapt_for_k("Use one word to represent", 16) == "Use 16 words to represent"
    assert adapt_for_k("Make sure your word is in lowercase.", 2) == "Make sure your words are in lowercase."
    assert adapt_for_k("Use a few words to represent", 8) == "Use a few words to represent"
    assert adapt_for_k("Use one word", 1) == "Use one word"


def test_tail_rule_on_chatml_tokenizer(ar):
    tok = ar.tokenizer
    # `"` is one token; <|im_end|> is both end of turn and EOS, so EOS fills the rest
    assert tail_ids(tok) == [tok.encode('"', add_special_tokens=False)[0], tok.eos_token_id, tok.eos_token_id]


def test_prompt_prefix_and_suffix_split_at_the_text(ar):
    p = build_prompt_ids(ar.tokenizer, "query", 1)
    assert ar.tokenizer.decode(p.prefix).endswith('user\nQuery: "')
    assert ar.tokenizer.decode(p.suffix).endswith('assistant\nThe word is: "')


def test_sparse_reference_computation():
    logits = torch.tensor([[[1.0, 3.0, -2.0, 0.5], [2.0, 0.1, 5.0, 0.2]]])
    valid = torch.tensor([[True, True]])
    allowed = [torch.tensor([0, 1, 3])]  # id 2 is not in the text
    ids, w = sparse_from_logits(logits, valid, allowed, top_k=2)
    import math

    def q(x):
        return float(math.trunc(math.log1p(max(x, 0.0)) * 100))
    # slot 0 top-2 of allowed: ids 1 (3.0), 0 (1.0); slot 1 top-2: ids 0 (2.0), 3 (0.2)
    expected = {1: q(3.0), 0: max(q(1.0), q(2.0)), 3: q(0.2)}
    got = {int(i): float(x) for i, x in zip(ids[0], w[0], strict=True) if i >= 0}
    assert got == expected
    assert ids[0].tolist() == [1, 0, 3]  # sorted by weight
    _, w_invalid = sparse_from_logits(logits, torch.tensor([[True, False]]), allowed, top_k=2)
    assert sorted(w_invalid[0].tolist(), reverse=True)[:2] == [q(3.0), q(1.0)]


def test_content_words_drop_stopwords_and_punctuation():
    assert content_words("The cat, and THE dog!") == ["cat", "dog"]


def test_bad_k_is_refused_with_the_limit(diff):
    for k in (0, MAX_K + 1):
        with pytest.raises(RepbenchError, match=f"between 1 and {MAX_K}"):
            encode(diff, TEXTS[:1], encoder="parallel", k=k)
    with pytest.raises(RepbenchError, match="K must be 1"):
        encode(diff, TEXTS[:1], encoder="meanpool", k=2)


def test_parallel_needs_a_mask_token(ar):
    with pytest.raises(RepbenchError, match="mask token"):
        encode(ar, TEXTS[:1], encoder="parallel", k=2)


def test_encode_ids_exact_lengths(ar, diff):
    text_ids = [[100 + i for i in range(20)], [200 + i for i in range(20)]]
    reps = encode_ids(diff, text_ids, encoder="parallel", k=4)
    prompt = build_prompt_ids(diff.tokenizer, "query", 4)
    assert reps.input_tokens.tolist() == [len(prompt.prefix) + 20 + len(prompt.suffix) + 4 + N_TAIL] * 2


# ---- repbench encode: bad input, shards, resume -----------------------------------------------------
def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_jsonl_without_text_or_id_is_refused_with_file_and_line(tmp_path):
    from repbench.io import read_texts_jsonl

    bad = tmp_path / "c.jsonl"
    _write_jsonl(bad, [{"_id": "a", "text": "x"}, {"_id": "b", "title": "t"}])
    with pytest.raises(InputError, match=rf"{bad}:2: expected a \"text\" field"):
        read_texts_jsonl(bad)
    _write_jsonl(bad, [{"text": "x"}])
    with pytest.raises(InputError, match=rf"{bad}:1: expected an \"_id\" field"):
        read_texts_jsonl(bad)
    bad.write_text('{"_id": "a", "text": "x"}\n{not json\n')
    with pytest.raises(InputError, match=rf"{bad}:2: expected a JSON object"):
        read_texts_jsonl(bad)


def test_failed_later_shard_keeps_earlier_shards_and_resume_completes(tmp_path, ar):
    from repbench.encoders.store import encode_sharded, load_sharded, shard_stem

    ids = [f"d{i}" for i in range(5)]
    texts = [f"document number {i} about topic {i % 2}" for i in range(5)]
    calls = []

    def flaky(chunk_ids, chunk_texts):
        calls.append(chunk_ids)
        if len(calls) == 3:
            raise RuntimeError("simulated crash in shard 2")
        return encode(ar, chunk_texts, ids=chunk_ids, encoder="sequential", k=2)

    out = tmp_path / "reps"
    with pytest.raises(RuntimeError):
        encode_sharded(out, ids, texts, {"k": 2}, flaky, shard_size=2, progress=False, store_dtype="float32")
    first = shard_stem(out, 0).with_suffix(".safetensors").read_bytes()
    assert not (out / "manifest.json").exists()
    encode_sharded(out, ids, texts, {"k": 2}, flaky, shard_size=2, progress=False, store_dtype="float32")
    assert shard_stem(out, 0).with_suffix(".safetensors").read_bytes() == first
    assert [c[0] for c in calls] == ["d0", "d2", "d4", "d4"]  # shards 0 and 1 not recomputed
    reps = load_sharded(out)
    assert reps.ids == ids
    direct = encode(ar, texts, ids=ids, encoder="sequential", k=2)
    torch.testing.assert_close(reps.dense, direct.dense, atol=PAD_ATOL, rtol=1e-4)
    with pytest.raises(RepbenchError, match="different config"):
        encode_sharded(out, ids, texts, {"k": 4}, flaky, shard_size=2, progress=False)


def test_encode_cli_end_to_end(tmp_path, capsys):
    from repbench.cli import main

    src = tmp_path / "corpus.jsonl"
    _write_jsonl(src, [{"_id": f"d{i}", "title": "T", "text": f"text {i}"} for i in range(3)])
    rc = main(["encode", str(src), "--backbone", "tiny-diffusion", "--k", "2", "--out", str(tmp_path / "o"),
               "--device", "cpu"])
    assert rc == 0
    from repbench.encoders.store import load_sharded

    reps = load_sharded(tmp_path / "o")
    assert reps.ids == ["d0", "d1", "d2"] and reps.dense.shape[:2] == (3, 2)
    assert main(["encode", str(src), "--backbone", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "known backbones" in capsys.readouterr().err
