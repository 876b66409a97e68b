"""Encoders: K representatives per text, all returned as one `Representations` type.

`encode` takes texts; `encode_ids` takes already-tokenised text (no special tokens), which is what the
latency harness uses to feed both families inputs of an exact token length.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import torch

from repbench.backbones.loading import Backbone
from repbench.encoders.parallel import CONFIDENCE, forward_parallel, layout
from repbench.encoders.prompts import (
    N_TAIL,
    build_prompt_ids,
    default_variant,
    quote_token_id,
    stop_token_ids,
)
from repbench.encoders.sequential import forward_sequential
from repbench.encoders.single_pass import forward_lasttoken, forward_meanpool, special_prefix
from repbench.encoders.sparse import allowed_ids, sparse_from_logits
from repbench.encoders.types import Representations
from repbench.errors import RepbenchError

ENCODERS = ("sequential", "parallel", "meanpool", "lasttoken")
MAX_K = 64
READOUTS = ("paper", "aligned")

__all__ = ["ENCODERS", "MAX_K", "Representations", "default_encoder", "encode", "encode_ids"]


def default_encoder(family: str) -> str:
    return "sequential" if family == "ar" else "parallel"


def encode(
    bb: Backbone,
    texts: Sequence[str],
    ids: Sequence[str] | None = None,
    encoder: str | None = None,
    k: int = 1,
    side: str = "query",
    batch_size: int = 8,
    max_length: int = 512,
    progress: bool = False,
    **options,
) -> Representations:
    """Encode raw texts. Options: readout, denoise_steps, confidence, early_stop, prompt_variant, truncate."""
    text_ids = bb.tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []
    return encode_ids(bb, text_ids, ids=ids, encoder=encoder, k=k, side=side, batch_size=batch_size,
                      max_length=max_length, progress=progress, texts=list(texts), **options)


def _check(bb: Backbone, encoder: str, k: int, side: str, readout: str, denoise_steps: int,
           confidence: str) -> None:
    if encoder not in ENCODERS:
        raise RepbenchError(f"unknown encoder {encoder!r}; known encoders: {', '.join(ENCODERS)}")
    if not isinstance(k, int) or k < 1 or k > MAX_K:
        raise RepbenchError(f"K must be an integer between 1 and {MAX_K}, got {k!r}")
    if encoder in ("meanpool", "lasttoken") and k != 1:
        raise RepbenchError(f"the {encoder} encoder produces one vector per text: K must be 1, got {k}")
    if encoder == "parallel" and bb.mask_token_id is None:
        raise RepbenchError(
            f"the parallel encoder needs a mask token; {bb.spec.name} has none "
            f"(use a diffusion backbone or its ':bidirectional' ablation)"
        )
    if side not in ("query", "passage"):
        raise RepbenchError(f"side must be 'query' or 'passage', got {side!r}")
    if readout not in READOUTS:
        raise RepbenchError(f"readout must be one of {READOUTS}, got {readout!r}")
    if denoise_steps < 1:
        raise RepbenchError(f"denoise_steps must be >= 1, got {denoise_steps}")
    if confidence not in CONFIDENCE:
        raise RepbenchError(f"confidence must be one of {CONFIDENCE}, got {confidence!r}")


def _pad(seqs: list[list[int]], pad_id: int, device: torch.device, left: bool = True
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad to the longest row; left padding puts every row's end (masks, tail) in the same columns."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        cols = slice(width - len(s), width) if left else slice(0, len(s))
        ids[i, cols] = torch.tensor(s, dtype=torch.long)
        mask[i, cols] = 1
    return ids.to(device), mask.to(device)


def _truncate_parallel(tokens: torch.Tensor, stop: set[int]) -> torch.Tensor:
    """valid[b, j] is False from the first stop slot k > 0 on; k = 0 keeps everything (§3.6)."""
    is_stop = torch.isin(tokens, torch.tensor(sorted(stop), dtype=torch.long, device=tokens.device))
    k = tokens.shape[1]
    first = torch.where(is_stop.any(1), is_stop.float().argmax(1), torch.full_like(tokens[:, 0], k))
    first = torch.where(first == 0, torch.full_like(first, k), first)
    return torch.arange(k, device=tokens.device).unsqueeze(0) < first.unsqueeze(1)


def _truncate_sequential(tokens: torch.Tensor, stop: set[int], quote: int | None) -> torch.Tensor:
    """valid from slot 0 up to (excluding) the first slot k >= 1 whose input token is special or `"` (§4.1)."""
    ends = set(stop) | ({quote} if quote is not None else set())
    is_end = torch.isin(tokens, torch.tensor(sorted(ends), dtype=torch.long, device=tokens.device))
    k = tokens.shape[1]
    # slot j+1 is invalid when the token fed at it (generated at slot j) ends the answer
    first_end = torch.where(is_end.any(1), is_end.float().argmax(1) + 1, torch.full_like(tokens[:, 0], k))
    valid = torch.arange(k, device=tokens.device).unsqueeze(0) < first_end.unsqueeze(1)
    return valid & (tokens >= 0)


def encode_ids(
    bb: Backbone,
    text_ids: Sequence[Sequence[int]],
    ids: Sequence[str] | None = None,
    encoder: str | None = None,
    k: int = 1,
    side: str = "query",
    batch_size: int = 8,
    max_length: int = 512,
    progress: bool = False,
    texts: Sequence[str] | None = None,
    readout: str = "paper",
    denoise_steps: int = 1,
    confidence: str = "entropy",
    early_stop: bool = False,
    prompt_variant: str | None = None,
    truncate: bool = True,
    step_callback: Callable[[str, int], None] | None = None,
) -> Representations:
    """Encode pre-tokenised texts (see `encode`). `texts` drive the sparse content filter; when omitted
    they are decoded from `text_ids`."""
    encoder = encoder or default_encoder(bb.spec.family)
    _check(bb, encoder, k, side, readout, denoise_steps, confidence)
    n = len(text_ids)
    ids = [str(i) for i in (ids if ids is not None else range(n))]
    if len(ids) != n:
        raise RepbenchError(f"{len(ids)} ids for {n} texts")
    tok = bb.tokenizer
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    stop = stop_token_ids(tok, bb.mask_token_id)
    prompt = None
    if encoder in ("parallel", "sequential"):
        prompt = build_prompt_ids(tok, side, k, prompt_variant)
        budget = max_length - len(prompt.prefix) - len(prompt.suffix)
        if budget < 1:
            raise RepbenchError(
                f"max_length {max_length} leaves no room for text after the {len(prompt.prefix)}+"
                f"{len(prompt.suffix)}-token prompt"
            )
    # Longest first: fewer pad tokens per batch; the original order is restored at the end.
    order = sorted(range(n), key=lambda i: -len(text_ids[i]))
    parts: list[tuple[list[int], Representations]] = []
    batches = [order[s: s + batch_size] for s in range(0, n, batch_size)]
    iterator = batches
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(batches, desc=f"{bb.spec.name} {encoder} K={k} {side}", unit="batch")
    with torch.inference_mode():
        for batch in iterator:
            rows = [list(text_ids[i]) for i in batch]
            rep = _encode_batch(bb, encoder, side, rows, k, prompt, pad_id, stop, max_length, readout, denoise_steps,
                                confidence, early_stop, truncate, step_callback,
                                [texts[i] for i in batch] if texts is not None else None)
            rep.ids = [ids[i] for i in batch]
            parts.append((batch, rep))
    if not parts:
        h = bb.hidden_size
        reps = Representations(ids=[], dense=torch.zeros(0, k, h), valid=torch.zeros(0, k, dtype=torch.bool),
                               sparse_ids=torch.zeros(0, 0, dtype=torch.long), sparse_weights=torch.zeros(0, 0),
                               token_ids=torch.zeros(0, k, dtype=torch.long),
                               input_tokens=torch.zeros(0, dtype=torch.long))
    else:
        reps = Representations.concat([p for _, p in parts])
        flat = [i for b, _ in parts for i in b]
        inverse = torch.empty(n, dtype=torch.long)
        inverse[torch.tensor(flat)] = torch.arange(n)
        reps = reps.select(inverse)
    reps.meta = {
        "backbone": bb.spec.name, "family": bb.spec.family, "encoder": encoder, "k": k, "side": side,
        "max_length": max_length, "readout": readout, "denoise_steps": denoise_steps,
        "prompt_variant": prompt_variant or default_variant(k), "dtype": str(bb.dtype).removeprefix("torch."),
        "attn": bb.attn, "early_stop": early_stop, "truncate": truncate, "vocab_size": bb.vocab_size,
    }
    return reps


def _encode_batch(bb, encoder, side, rows, k, prompt, pad_id, stop, max_length, readout, denoise_steps, confidence,
                  early_stop, truncate, step_callback, texts) -> Representations:
    tok = bb.tokenizer
    b = len(rows)
    if encoder in ("meanpool", "lasttoken"):
        if encoder == "meanpool":
            seqs = [(special_prefix(tok) + r)[:max_length] for r in rows]
            ids_t, mask = _pad(seqs, pad_id, bb.device, left=False)
            vec = forward_meanpool(bb, ids_t, mask)
        else:
            head = tok.encode(f"{side}: ", add_special_tokens=False)  # RepLLaMA's "query: " / "passage: "
            seqs = [(special_prefix(tok) + head + r)[: max_length - 1] + [tok.eos_token_id] for r in rows]
            ids_t, mask = _pad(seqs, pad_id, bb.device)
            vec = forward_lasttoken(bb, ids_t, mask)
        if step_callback is not None:
            step_callback("forward", 0)
        return Representations(
            ids=[""] * b, dense=vec.unsqueeze(1).cpu(), valid=torch.ones(b, 1, dtype=torch.bool),
            sparse_ids=torch.zeros(b, 0, dtype=torch.long), sparse_weights=torch.zeros(b, 0),
            token_ids=torch.full((b, 1), -1, dtype=torch.long),
            input_tokens=torch.tensor([len(s) for s in seqs], dtype=torch.long),
        )
    budget = max_length - len(prompt.prefix) - len(prompt.suffix)
    rows = [r[:budget] for r in rows]
    if texts is None:
        texts = tok.batch_decode(rows, skip_special_tokens=True)
    if encoder == "parallel":
        seqs = [layout(prompt, r, k, bb.mask_token_id) for r in rows]
        ids_t, mask = _pad(seqs, pad_id, bb.device)
        hidden, logits, tokens = forward_parallel(bb, ids_t, mask, k, readout, denoise_steps, confidence,
                                                  step_callback)
        valid = _truncate_parallel(tokens, stop) if truncate else torch.ones_like(tokens, dtype=torch.bool)
    else:
        seqs = [prompt.prefix + r + prompt.suffix for r in rows]
        ids_t, mask = _pad(seqs, pad_id, bb.device)
        quote = quote_token_id(tok)
        early = stop | _quote_ids(tok) if early_stop else stop
        hidden, logits, tokens, _ = forward_sequential(bb, ids_t, mask, k, early, early_stop, step_callback)
        valid = _truncate_sequential(tokens, stop, quote) if truncate else tokens >= 0
    hidden = torch.nan_to_num(hidden, nan=0.0, posinf=0.0, neginf=0.0)
    logits = torch.nan_to_num(logits, nan=0.0, posinf=0.0, neginf=0.0)
    hidden = hidden * valid.unsqueeze(-1)
    allowed = allowed_ids(tok, texts, bb.mask_token_id)
    sp_ids, sp_w = sparse_from_logits(logits, valid, allowed)
    return Representations(
        ids=[""] * b, dense=hidden.cpu(), valid=valid.cpu(), sparse_ids=sp_ids, sparse_weights=sp_w,
        token_ids=tokens.cpu(), input_tokens=torch.tensor([len(s) for s in seqs], dtype=torch.long),
    )


@lru_cache(maxsize=32)
def _quote_ids(tok) -> frozenset[int]:
    """Ids whose text contains a double quote (PromptReps' early-exit test; catches merged `".`)."""
    return frozenset(i for t, i in tok.get_vocab().items() if '"' in tok.convert_tokens_to_string([t]))


# N_TAIL is part of the public layout contract (g_start = L - K - N_TAIL)
__all__ += ["N_TAIL"]
