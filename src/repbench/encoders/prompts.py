"""Prompt files, the K-wording rule, the chat-template split and the tail tokens (docs/method.md §3.1-§3.2)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import yaml

SENTINEL = "XSENTINELX"
N_TAIL = 3
_NUMBER_WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
_COUNT_RE = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\s+words?\b")
_END_OF_TURN = ("<|im_end|>", "<|eot_id|>")


@cache
def load_prompt(side: str, variant: str) -> dict[str, str]:
    """The four prompt fields for `side` ("query"|"passage") and `variant` ("one"|"few"|"three")."""
    if side not in ("query", "passage"):
        raise ValueError(f"side must be 'query' or 'passage', got {side!r}")
    name = f"{side}_prompt_{variant}.yaml"
    try:
        text = resources.files("repbench.encoders").joinpath("prompts", name).read_text()
    except FileNotFoundError:
        raise ValueError(f"unknown prompt variant {variant!r} (files: prompts/{side}_prompt_*.yaml)") from None
    fields = yaml.safe_load(text)
    return {k: fields.get(k, "") for k in ("system", "user_prefix", "user_suffix", "assistant_prefix")}


def default_variant(k: int) -> str:
    """"one" for single representation, "few" for K > 1 (DiffRetriever README)."""
    return "one" if k <= 1 else "few"


def adapt_for_k(text: str, k: int) -> str:
    """The upstream K-wording rule: "one word" -> "four words" / "16 words", then "word is" -> "words are".

    "a few words" has no number word, so the "few" prompt is unchanged for every K.
    """
    if k <= 1:
        return text
    count = _NUMBER_WORDS[k - 1] if k <= 10 else str(k)
    text = _COUNT_RE.sub(f"{count} words", text)
    return re.sub(r"\bword is\b", "words are", text)


@dataclass(frozen=True)
class PromptIds:
    prefix: list[int]
    suffix: list[int]  # ends with the ' "' piece of the assistant prefix
    tail: list[int]  # the 3 fixed visible tokens after the masks (parallel encoder only)


# Tokenizers hash by identity; caching here keeps per-call overhead (chat template rendering,
# get_vocab() over the whole vocabulary) out of timed encoder calls.
@lru_cache(maxsize=256)
def build_prompt_ids(tokenizer: Any, side: str, k: int, variant: str | None = None,
                     adapt: bool = True) -> PromptIds:
    """Render the chat template around a sentinel and split it into prefix and suffix token ids."""
    fields = dict(load_prompt(side, variant or default_variant(k)))
    if adapt:
        fields["user_suffix"] = adapt_for_k(fields["user_suffix"], k)
        fields["assistant_prefix"] = adapt_for_k(fields["assistant_prefix"], k)
    messages = []
    if fields["system"]:
        messages.append({"role": "system", "content": fields["system"]})
    messages.append({"role": "user", "content": fields["user_prefix"] + SENTINEL + fields["user_suffix"]})
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if rendered.count(SENTINEL) != 1:
        raise ValueError("chat template did not keep the sentinel exactly once")
    before, after = rendered.split(SENTINEL)
    prefix = tokenizer.encode(before, add_special_tokens=False)
    suffix = tokenizer.encode(after + fields["assistant_prefix"], add_special_tokens=False)
    return PromptIds(prefix=prefix, suffix=suffix, tail=tail_ids(tokenizer))


@lru_cache(maxsize=32)
def _vocab(tokenizer: Any) -> dict[str, int]:
    return tokenizer.get_vocab()


def tail_ids(tokenizer: Any) -> list[int]:
    """`"` (if one token), the end-of-turn token if it differs from EOS, then EOS up to 3 tokens."""
    tail: list[int] = []
    quote = tokenizer.encode('"', add_special_tokens=False)
    if len(quote) == 1:
        tail.append(quote[0])
    eos = tokenizer.eos_token_id
    vocab = _vocab(tokenizer)
    for tok in _END_OF_TURN:
        if tok in vocab and vocab[tok] != eos:
            tail.append(vocab[tok])
            break
    while len(tail) < N_TAIL:
        tail.append(eos)
    return tail[:N_TAIL]


def quote_token_id(tokenizer: Any) -> int | None:
    ids = tokenizer.encode('"', add_special_tokens=False)
    return ids[0] if len(ids) == 1 else None


@lru_cache(maxsize=32)
def stop_token_ids(tokenizer: Any, mask_token_id: int | None) -> frozenset[int]:
    """The special ids as upstream's pinned tokenizer lists them, minus the mask id, nothing added by hand
    (docs/method.md §3.6, corrected): an end-of-turn token the tokenizer does not list as special (Dream's
    `<|im_end|>`) is not in it."""
    return frozenset(set(pinned_special_ids(tokenizer)) - {mask_token_id})


# The named special-token attributes of transformers 4.x (upstream pins 4.54).
_NAMED_SPECIAL = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


def pinned_special_ids(tokenizer: Any) -> list[int]:
    """`tokenizer.all_special_ids` as transformers 4.54 (upstream's pin) computes it: the named special
    tokens (bos, eos, unk, sep, pad, cls, mask) and the additional special tokens, in that order.

    transformers 5 also counts every other `*_token` entry of tokenizer_config.json as a special
    ("model-specific") token. LLaDA's tokenizer has one for `[gMASK]` (126083): special under 5.x, not under
    4.54, so under 5.x a slot decoding to it would truncate where upstream does not (issue 24). (5.x merges
    an explicit `extra_special_tokens` mapping into the same set, so one cannot be told from the other; 4.54
    counted such a mapping, which none of the supported backbones' tokenizers has.)
    """
    names = [getattr(tokenizer, a, None) for a in _NAMED_SPECIAL]
    extra = getattr(tokenizer, "extra_special_tokens", None)
    if not isinstance(extra, list | tuple):
        extra = getattr(tokenizer, "additional_special_tokens", None) or []
    tokens = list(dict.fromkeys(str(t) for t in [*names, *extra] if t is not None))
    return [int(i) for i in tokenizer.convert_tokens_to_ids(tokens)] if tokens else []


@lru_cache(maxsize=32)
def quote_piece_ids(tokenizer: Any) -> frozenset[int]:
    """Ids whose text contains a double quote: PromptReps' early-exit test, which catches merged `",`/`".`."""
    return frozenset(i for t, i in _vocab(tokenizer).items() if '"' in tokenizer.convert_tokens_to_string([t]))


@lru_cache(maxsize=64)
def answer_end_ids(tokenizer: Any, mask_token_id: int | None, early_stop: str) -> frozenset[int]:
    """The one definition of "this row has closed its answer" on the sequential path, read by both the
    early-stop test and the slot truncation, so they can never disagree about a row.

    "off", fixed-N decoding (the paper's baseline, docs/method.md §4.1 step 5): a special id or exactly the
    `"` id. "upstream" (PromptReps' early exit): only ids whose text holds a `"` (`"`, `",`, `".` ...);
    special ids do not end a row. "strict": a special id or any quote-holding id.
    """
    if early_stop == "upstream":
        return quote_piece_ids(tokenizer)
    stop = stop_token_ids(tokenizer, mask_token_id)
    if early_stop == "strict":
        return stop | quote_piece_ids(tokenizer)
    quote = quote_token_id(tokenizer)
    return stop | ({quote} if quote is not None else frozenset())
