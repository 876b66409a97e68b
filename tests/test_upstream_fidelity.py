"""Issue 24: the four places where the encoders differed from upstream's code, each checked against a
re-implementation written here from the method description (docs/method.md §3.1, §3.6, §3.7, §4.1 and
PromptReps' early exit), never against repbench's own output. No upstream code runs.

1. sparse: per slot the top 128 of the FLOAT weights log(1+relu(logit)), then x100 and truncation;
2. `--early-stop upstream`: PromptReps' loop, which stops a row at the first generated token whose text
   holds a `"` and does not keep that token's slot; special tokens do not stop it;
3. the sequential prompt: upstream's zero-shot AR class never words the prompt for K;
4. the stop set: `all_special_ids` as the pinned transformers 4.54 lists it (LLaDA without [gMASK]);
plus: loading a LLaDA-format directory never asks to run remote code.
"""

from __future__ import annotations

import builtins
import json
import math

import pytest
import torch

from repbench.backbones import load_backbone
from repbench.encoders import encode
from repbench.encoders.prompts import answer_end_ids, stop_token_ids
from repbench.encoders.sparse import sparse_from_logits


# ---- 1. sparse: top-128 of the float weights, then x100 and truncate -------------------------------------
def _reference_sparse(logits: torch.Tensor, valid: torch.Tensor, allowed: list[list[int]], top_k: int,
                      truncate_first: bool = False) -> list[dict[int, float]]:
    """Upstream's per-slot rule, one id at a time. The float32 arithmetic is torch's (as upstream's is);
    the selection is plain Python: sort by weight descending, equal weights lower id first, keep top_k.
    `truncate_first` is the order repbench had before issue 24 (kept here to show the cases tell them apart)."""
    out = []
    for b in range(logits.shape[0]):
        pooled: dict[int, float] = {}
        for k in range(logits.shape[1]):
            if not bool(valid[b, k]):
                continue
            ids = torch.tensor(allowed[b])
            w = torch.log1p(torch.relu(logits[b, k, ids].float()))  # float32, as upstream
            scaled = torch.trunc(w * 100.0)
            key = scaled if truncate_first else w
            order = sorted(range(len(ids)), key=lambda j: (-float(key[j]), int(ids[j])))[:top_k]
            for j in order:
                value = float(scaled[j])
                if value > 0:
                    pooled[int(ids[j])] = max(pooled.get(int(ids[j]), 0.0), value)
        out.append(pooled)
    return out


def _as_dicts(ids: torch.Tensor, weights: torch.Tensor) -> list[dict[int, float]]:
    return [{int(i): float(w) for i, w in zip(ids[b], weights[b], strict=True) if i >= 0} for b in range(ids.shape[0])]


def test_sparse_takes_the_top_k_of_the_float_weights_before_truncating():
    # float weights x100 of 50.9, 50.2 and 50.5: all truncate to 50. Upstream keeps the two largest
    # floats (ids 0 and 2); truncating first ties all three and keeps ids 0 and 1.
    logits = torch.tensor([[[math.expm1(0.509), math.expm1(0.502), math.expm1(0.505)]]])
    ids, w = sparse_from_logits(logits, torch.tensor([[True]]), [torch.tensor([0, 1, 2])], top_k=2)
    assert _as_dicts(ids, w) == [{0: 50.0, 2: 50.0}]


def test_sparse_matches_the_reference_at_the_published_top_128():
    gen = torch.Generator().manual_seed(24)
    b, k, v, n_allowed, top_k = 3, 4, 4000, 1500, 128  # ~750 positive weights a slot: ties at the cut
    logits = torch.randn(b, k, v, generator=gen) * 3.0
    valid = torch.tensor([[True, True, True, True], [True, False, False, False], [False, False, True, True]])
    allowed = [sorted(torch.randperm(v, generator=gen)[:n_allowed].tolist()) for _ in range(b)]
    ids, w = sparse_from_logits(logits, valid, [torch.tensor(a) for a in allowed], top_k=top_k)
    expected = _reference_sparse(logits, valid, allowed, top_k)
    assert expected != _reference_sparse(logits, valid, allowed, top_k, truncate_first=True)  # the case tells
    assert _as_dicts(ids, w) == expected


# ---- 2. upstream's early exit ----------------------------------------------------------------------------
# Upstream's prompt files (docs/method.md §3.1), as literals: (user_suffix, assistant_prefix) per variant; the
# passage files swap "query" for "passage" and "Query" for "Passage".
SYSTEM = "You are an AI assistant that can understand human language."
UPSTREAM_PROMPTS = {
    "one": ('". Use one word to represent the query in a retrieval task. Make sure your word is in lowercase.',
            'The word is: "'),
    "few": ('". Use a few words to represent the query in a retrieval task. Make sure your words are in lowercase.',
            'The words are: "'),
    "three": ('". Use three words to represent the query in a retrieval task. Make sure your words are in '
              'lowercase and split them by space.', 'The words are: "'),
}


def _upstream_prompt(tok, side: str, user_suffix: str, assistant_prefix: str) -> tuple[list[int], list[int]]:
    """Prefix and suffix ids as upstream builds them: the chat template around a sentinel, split there."""
    if side == "passage":
        user_suffix = user_suffix.replace("query", "passage")
    head = "Query" if side == "query" else "Passage"
    messages = [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": f'{head}: "' + "XSENTINELX" + user_suffix}]
    before, after = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True).split("XSENTINELX")
    return tok.encode(before, add_special_tokens=False), tok.encode(after + assistant_prefix, add_special_tokens=False)


def _promptreps_early_exit(bb, ids: list[int], n: int) -> tuple[list[torch.Tensor], list[int]]:
    """PromptReps' loop for one row, without a KV cache: at each of at most `n` steps read the last
    position's state and logits, take the argmax; a token whose decoded text holds `"` ends the row and its
    state is not kept; any other token (special ones included) is kept and fed back."""
    states, tokens = [], []
    ids = list(ids)
    with torch.inference_mode():
        for _ in range(n):
            h = bb.model.model(input_ids=torch.tensor([ids])).last_hidden_state[0, -1]
            nxt = int(bb.model.lm_head(h).argmax())
            if '"' in bb.tokenizer.decode([nxt]):
                break
            states.append(h)
            tokens.append(nxt)
            ids.append(nxt)
    return states, tokens


@pytest.mark.parametrize("query", ["best time to visit japan", "what is the capital of australia",
                                   "symptoms of influenza in adults"])
def test_early_stop_upstream_is_promptreps_early_exit(smollm2, query):
    k = 8
    tok = smollm2.tokenizer
    prefix, suffix = _upstream_prompt(tok, "query", *UPSTREAM_PROMPTS["few"])
    states, tokens = _promptreps_early_exit(smollm2, prefix + tok.encode(query, add_special_tokens=False) + suffix, k)
    reps = encode(smollm2, [query], encoder="sequential", k=k, early_stop="upstream")
    n = len(states)
    assert n < k  # the row did close inside the budget
    assert reps.valid[0].tolist() == [True] * n + [False] * (k - n)
    assert reps.token_ids[0, :n].tolist() == tokens
    # KV cache vs full forward: summation order only (fp32, 30 layers, states of norm ~100)
    torch.testing.assert_close(reps.dense[0, :n], torch.stack(states), atol=1e-3, rtol=1e-4)
    assert not reps.dense[0, n:].any()


def test_early_stop_upstream_ends_a_row_only_on_a_quote(smollm2):
    tok = smollm2.tokenizer
    quote_ids = {i for i in range(len(tok)) if '"' in tok.decode([i])}
    got = answer_end_ids(tok, None, "upstream")
    assert got == quote_ids
    assert not got & set(tok.all_special_ids)  # <|im_end|>, <|endoftext|> ... do not end a row


# ---- 3. the sequential prompt is upstream's zero-shot AR prompt for every K --------------------------------
ADAPTED_ONE_K4 = ('". Use four words to represent the query in a retrieval task. Make sure your words are in '
                  'lowercase.', 'The words are: "')


def _slot0(bb, prefix: list[int], text: str, suffix: list[int]) -> torch.Tensor:
    """The state at the prompt's last position: sequential slot 0, which depends only on the prompt."""
    ids = prefix + bb.tokenizer.encode(text, add_special_tokens=False) + suffix
    with torch.inference_mode():
        return bb.model.model(input_ids=torch.tensor([ids])).last_hidden_state[0, -1]


@pytest.mark.parametrize("side", ["query", "passage"])
@pytest.mark.parametrize("variant", ["one", "few", "three", None])
@pytest.mark.parametrize("k", [1, 2, 4, 16])
def test_sequential_prompt_is_upstreams_unadapted_prompt(ar, side, variant, k):
    text = "ocean currents move heat"
    file_variant = variant or ("one" if k == 1 else "few")  # DiffRetriever README: "one" at K=1, "few" above
    prefix, suffix = _upstream_prompt(ar.tokenizer, side, *UPSTREAM_PROMPTS[file_variant])
    reps = encode(ar, [text], encoder="sequential", k=k, side=side, prompt_variant=variant)
    torch.testing.assert_close(reps.dense[0, 0], _slot0(ar, prefix, text, suffix), atol=1e-5, rtol=1e-4)
    assert int(reps.input_tokens[0]) == len(prefix) + len(ar.tokenizer.encode(text, add_special_tokens=False)) + len(suffix)


def test_adapt_prompt_words_the_sequential_prompt_for_k(ar):
    text = "ocean currents move heat"
    prefix, suffix = _upstream_prompt(ar.tokenizer, "query", *ADAPTED_ONE_K4)
    reps = encode(ar, [text], encoder="sequential", k=4, prompt_variant="one", adapt_prompt=True)
    torch.testing.assert_close(reps.dense[0, 0], _slot0(ar, prefix, text, suffix), atol=1e-5, rtol=1e-4)
    assert reps.meta["adapt_prompt"] is True


# ---- 4. the stop set as upstream's pinned tokenizer (transformers 4.54) defines it --------------------------
def _llada_like_tokenizer(tmp_path):
    """A tokenizer with LLaDA's special ids (docs/backbones.md §2.3) and a GLM-style `gmask_token` entry in
    its tokenizer_config.json: transformers 5 lists such an entry among the special tokens, 4.54 did not."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoTokenizer

    vocab = {"[UNK]": 0, "the": 1, '"': 2, "<|startoftext|>": 126080, "<|endoftext|>": 126081, "[gMASK]": 126083,
             "<|mdm_mask|>": 126336, "<|start_header_id|>": 126346, "<|end_header_id|>": 126347,
             "<|eot_id|>": 126348}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>", "gmask_token": "[gMASK]", "add_bos_token": False}))
    return AutoTokenizer.from_pretrained(tmp_path)


def test_llada_stop_set_is_the_pinned_tokenizers_without_gmask(tmp_path):
    tok = _llada_like_tokenizer(tmp_path)
    assert 126083 in tok.all_special_ids  # what transformers 5 lists; 4.54 did not
    assert stop_token_ids(tok, 126336) == {126080, 126081}


class _DreamLike:
    """Dream's special tokens (docs/method.md §3.6): <|endoftext|> 151643, <|beginoftext|> 151665, <|mask|> 151666;
    <|im_end|> 151645 is not special."""

    bos_token, eos_token, pad_token, mask_token = "<|beginoftext|>", "<|endoftext|>", "<|endoftext|>", "<|mask|>"
    all_special_ids = [151665, 151643, 151666]
    _vocab = {"<|endoftext|>": 151643, "<|im_end|>": 151645, "<|beginoftext|>": 151665, "<|mask|>": 151666}

    def convert_tokens_to_ids(self, tokens):
        return [self._vocab[t] for t in tokens]


def test_dream_stop_set_is_unchanged():
    assert stop_token_ids(_DreamLike(), 151666) == {151643, 151665}


# ---- LLaDA-format directories load without asking to run remote code -------------------------------------
# LLaDA tensor names -> Llama names (docs/backbones.md §2.2), written out per layer
def _llada_name(name: str) -> str:
    table = {"model.embed_tokens.": "model.transformer.wte.", "model.norm.": "model.transformer.ln_f.",
             "lm_head.": "model.transformer.ff_out.", "input_layernorm.": "attn_norm.",
             "self_attn.q_proj.": "q_proj.", "self_attn.k_proj.": "k_proj.", "self_attn.v_proj.": "v_proj.",
             "self_attn.o_proj.": "attn_out.", "post_attention_layernorm.": "ff_norm.",
             "mlp.gate_proj.": "ff_proj.", "mlp.up_proj.": "up_proj.", "mlp.down_proj.": "ff_out."}
    for llama, llada in table.items():
        if name.startswith(llama):
            return llada + name[len(llama):]
    layer, rest = name.removeprefix("model.layers.").split(".", 1)
    for llama, llada in table.items():
        if rest.startswith(llama):
            return f"model.transformer.blocks.{layer}.{llada}{rest[len(llama):]}"
    raise AssertionError(name)


def test_llada_format_directory_loads_without_asking(tmp_path, monkeypatch):
    import transformers.dynamic_module_utils as dynamic
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM

    from repbench.backbones.smollm2 import smollm2_tokenizer

    ref = LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=1, num_attention_heads=4,
                                       num_key_value_heads=4, max_position_embeddings=64, vocab_size=49152,
                                       tie_word_embeddings=False))
    save_file({_llada_name(n): t.contiguous() for n, t in ref.state_dict().items()}, str(tmp_path / "model.safetensors"),
              metadata={"format": "pt"})
    (tmp_path / "config.json").write_text(json.dumps({  # LLaDA's format: it names remote code
        "model_type": "llada", "architectures": ["LLaDAModelLM"],
        "auto_map": {"AutoConfig": "configuration_llada.LLaDAConfig", "AutoModel": "modeling_llada.LLaDAModelLM"},
        "d_model": 32, "n_heads": 4, "n_kv_heads": 4, "n_layers": 1, "mlp_hidden_size": 48, "rms_norm_eps": 1e-5,
        "rope_theta": 5e5, "max_sequence_length": 64, "vocab_size": 49152, "embedding_size": 49152,
        "weight_tying": False, "eos_token_id": 2, "pad_token_id": 2}))
    smollm2_tokenizer().save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "tokenizer_config.json").read_text())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({**cfg, "tokenizer_class": "PreTrainedTokenizerFast"}))

    asked = []

    def refuse(*args, **kwargs):
        asked.append(args)
        raise AssertionError("asked whether to run remote code")

    for module in ("transformers.dynamic_module_utils", "transformers.models.auto.configuration_auto",
                   "transformers.models.auto.tokenization_auto", "transformers.models.auto.auto_factory"):
        if hasattr(__import__(module, fromlist=["_"]), "resolve_trust_remote_code"):
            monkeypatch.setattr(f"{module}.resolve_trust_remote_code", refuse)
    monkeypatch.setattr(builtins, "input", refuse)
    assert dynamic.resolve_trust_remote_code is refuse
    bb = load_backbone("llada-8b-instruct", path=tmp_path)
    assert asked == [] and type(bb.model).__name__ == "LlamaForCausalLM" and bb.model.config.is_causal is False


# ---- the batch rule is recorded next to the dtype ---------------------------------------------------------
@pytest.mark.parametrize(("dtype", "independent"), [("float32", True), ("bfloat16", False)])
def test_the_batch_rule_is_recorded_next_to_the_dtype(dtype, independent):
    bb = load_backbone("tiny-ar", dtype=dtype)
    reps = encode(bb, ["ocean currents", "heat"], encoder="sequential", k=2, batch_size=2)
    assert reps.meta["dtype"] == dtype
    assert reps.meta["batch_rule"].startswith("batch-independent") is independent
    assert ("left padding can change" in reps.meta["batch_rule"]) is not independent
