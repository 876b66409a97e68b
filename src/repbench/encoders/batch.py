"""One batch through one encoder: padding, the forward pass, slot truncation, the sparse vector.

Every batch function has the signature the registry expects:
`fn(bb, rows, texts, opts, prep, step_callback) -> Representations` (ids left blank for the caller).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from repbench.backbones.loading import Backbone
from repbench.encoders.host import to_host
from repbench.encoders.options import EncodeOptions
from repbench.encoders.parallel import forward_parallel, layout
from repbench.encoders.prompts import PromptIds
from repbench.encoders.sequential import forward_sequential
from repbench.encoders.signals import batch_signals
from repbench.encoders.single_pass import forward_lasttoken, forward_meanpool, special_prefix
from repbench.encoders.sparse import allowed_ids, pad_allowed, sparse_rows, trim_rows
from repbench.encoders.types import Representations

StepCallback = Callable[[str, int], None] | None


@dataclass(frozen=True)
class BatchPrep:
    """What every batch of one `encode_ids` call shares (built once per call)."""

    pad_id: int
    stop: frozenset[int]  # the parallel truncation's stop set (docs/method.md §3.6)
    prompt: PromptIds | None  # None for the single-pass encoders
    signals: list[dict] | None = None  # when a list, each batch appends its encode-time signals (in batch order)
    answer_end: frozenset[int] = frozenset()  # sequential: ids that close a row (prompts.answer_end_ids)


def pad_rows(seqs: list[list[int]], pad_id: int, device: torch.device, left: bool = True
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


def model_inputs(seqs: list[list[int]], pad_id: int, device: torch.device, left: bool = True
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`pad_rows`, with no mask when no row is padded: transformers then has nothing to inspect, where a
    mask makes it read back whether any position is masked (a wait for the device at every forward)."""
    ids, mask = pad_rows(seqs, pad_id, device, left)
    return ids, (mask if len({len(s) for s in seqs}) > 1 else None)


def truncate_parallel(tokens: torch.Tensor, stop: set[int] | frozenset[int] | torch.Tensor) -> torch.Tensor:
    """valid[b, j] is False from the first stop slot k > 0 on; k = 0 keeps everything (docs/method.md §3.6)."""
    is_stop = torch.isin(tokens, _ids_on(stop, tokens.device))
    k = tokens.shape[1]
    first = torch.where(is_stop.any(1), is_stop.float().argmax(1), torch.full_like(tokens[:, 0], k))
    first = torch.where(first == 0, torch.full_like(first, k), first)
    return torch.arange(k, device=tokens.device).unsqueeze(0) < first.unsqueeze(1)


def truncate_sequential(tokens: torch.Tensor, ends: set[int] | frozenset[int] | torch.Tensor) -> torch.Tensor:
    """valid from slot 0 up to (excluding) the first slot k >= 1 whose input token (generated at slot
    k-1) is in `ends`, the answer-end set the early-stop test also uses (docs/method.md §4.1); unrun slots (-1) are invalid."""
    is_end = torch.isin(tokens, _ids_on(ends, tokens.device))
    k = tokens.shape[1]
    first_end = torch.where(is_end.any(1), is_end.float().argmax(1) + 1, torch.full_like(tokens[:, 0], k))
    valid = torch.arange(k, device=tokens.device).unsqueeze(0) < first_end.unsqueeze(1)
    return valid & (tokens >= 0)


def truncate_upstream(tokens: torch.Tensor, ends: set[int] | frozenset[int] | torch.Tensor) -> torch.Tensor:
    """PromptReps' early exit (`--early-stop upstream`): valid up to (excluding) the first slot whose own
    generated token is in `ends`, i.e. the slot that writes the closing quote is dropped too; a row whose
    slot 0 closes at once keeps no slot (upstream's zero vector). Unrun slots (-1) are invalid."""
    is_end = torch.isin(tokens, _ids_on(ends, tokens.device))
    k = tokens.shape[1]
    first_end = torch.where(is_end.any(1), is_end.float().argmax(1), torch.full_like(tokens[:, 0], k))
    valid = torch.arange(k, device=tokens.device).unsqueeze(0) < first_end.unsqueeze(1)
    return valid & (tokens >= 0)


def _start(step_callback: StepCallback) -> None:
    """Mark the first model call of a batch: the bench's model-only time runs from here to the last mark."""
    if step_callback is not None:
        step_callback("start", 0)


def _ids_on(ids: set[int] | frozenset[int] | torch.Tensor, device: torch.device) -> torch.Tensor:
    """An id set as a tensor on `device` (the batch functions build theirs before the forward is queued)."""
    return ids.to(device) if isinstance(ids, torch.Tensor) else torch.tensor(sorted(ids), dtype=torch.long, device=device)


def _single(vec: torch.Tensor, seqs: list[list[int]], step_callback: StepCallback, rows: list[list[int]],
            prep: BatchPrep, max_length: int) -> Representations:
    if step_callback is not None:
        step_callback("forward", 0)
    b = len(seqs)
    (dense,) = to_host(vec.unsqueeze(1))
    rep = Representations(
        ids=[""] * b, dense=dense, valid=torch.ones(b, 1, dtype=torch.bool),
        sparse_ids=torch.zeros(b, 0, dtype=torch.long), sparse_weights=torch.zeros(b, 0),
        token_ids=torch.full((b, 1), -1, dtype=torch.long),
        input_tokens=torch.tensor([len(s) for s in seqs], dtype=torch.long),
    )
    if prep.signals is not None:  # no logits: text-level signals only
        prep.signals.append(batch_signals(None, rep.token_ids, rep.valid, rep.dense, rep.sparse_weights,
                                          [min(len(r), max_length) for r in rows], rep.input_tokens.tolist()))
    return rep


def meanpool_batch(bb: Backbone, rows: list[list[int]], texts: list[str] | None, opts: EncodeOptions,
                   prep: BatchPrep, step_callback: StepCallback = None) -> Representations:
    seqs = [(special_prefix(bb.tokenizer) + r)[: opts.max_length] for r in rows]
    ids_t, mask = model_inputs(seqs, prep.pad_id, bb.device, left=False)
    _start(step_callback)
    return _single(forward_meanpool(bb, ids_t, mask), seqs, step_callback, rows, prep, opts.max_length)


def lasttoken_batch(bb: Backbone, rows: list[list[int]], texts: list[str] | None, opts: EncodeOptions,
                    prep: BatchPrep, step_callback: StepCallback = None) -> Representations:
    tok = bb.tokenizer
    if texts is None:
        texts = tok.batch_decode(rows, skip_special_tokens=True)
    # RepLLaMA tokenises "query: " + text as one string (special tokens on), so the text's first word
    # keeps its leading-space piece; tokenising the head alone would leave a stray space token.
    joined = tok([f"{opts.side}: {t}" for t in texts], add_special_tokens=True)["input_ids"]
    seqs = [list(j)[: opts.max_length - 1] + [tok.eos_token_id] for j in joined]
    ids_t, mask = model_inputs(seqs, prep.pad_id, bb.device)
    _start(step_callback)
    return _single(forward_lasttoken(bb, ids_t, mask), seqs, step_callback, rows, prep, opts.max_length)


def _fit(bb: Backbone, rows: list[list[int]], texts: list[str] | None, opts: EncodeOptions, prep: BatchPrep
         ) -> tuple[list[list[int]], list[str]]:
    budget = opts.max_length - len(prep.prompt.prefix) - len(prep.prompt.suffix)
    rows = [r[:budget] for r in rows]
    if texts is None:
        texts = bb.tokenizer.batch_decode(rows, skip_special_tokens=True)
    return rows, texts


def parallel_batch(bb: Backbone, rows: list[list[int]], texts: list[str] | None, opts: EncodeOptions,
                   prep: BatchPrep, step_callback: StepCallback = None) -> Representations:
    rows, texts = _fit(bb, rows, texts, opts, prep)
    seqs = [layout(prep.prompt, r, opts.k, bb.mask_token_id) for r in rows]
    ids_t, mask = model_inputs(seqs, prep.pad_id, bb.device)
    allowed = _allowed(bb, texts)
    stop = _ids_on(prep.stop, bb.device) if opts.truncate else None
    hidden, logits, tokens = forward_parallel(bb, ids_t, mask, opts.k, opts.readout, opts.denoise_steps,
                                              opts.confidence, step_callback)
    valid = truncate_parallel(tokens, stop) if stop is not None else torch.ones_like(tokens, dtype=torch.bool)
    return _prompted(bb, seqs, rows, allowed, hidden, logits, tokens, valid, opts, prep)


def sequential_batch(bb: Backbone, rows: list[list[int]], texts: list[str] | None, opts: EncodeOptions,
                     prep: BatchPrep, step_callback: StepCallback = None) -> Representations:
    rows, texts = _fit(bb, rows, texts, opts, prep)
    seqs = [prep.prompt.prefix + r + prep.prompt.suffix for r in rows]
    ids_t, mask = model_inputs(seqs, prep.pad_id, bb.device)
    allowed = _allowed(bb, texts)
    upstream = opts.early_stop == "upstream"
    # Upstream's early exit defines the slots itself, so it applies with or without --truncate.
    ends = _ids_on(prep.answer_end, bb.device) if opts.truncate or upstream else None
    hidden, logits, tokens, _ = forward_sequential(bb, ids_t, mask, opts.k, prep.answer_end, opts.early_stop,
                                                   step_callback)
    if ends is None:
        valid = tokens >= 0
    else:
        valid = (truncate_upstream if upstream else truncate_sequential)(tokens, ends)
    # Upstream's AR path quantises its K=1 sparse vector but keeps K>1 weights as floats (docs/method.md §4.1 step 6).
    return _prompted(bb, seqs, rows, allowed, hidden, logits, tokens, valid, opts, prep, quantise=opts.k == 1)


def _allowed(bb: Backbone, texts: list[str]) -> torch.Tensor:
    """The batch's allowed sparse ids on the device, copied before the forward is queued (a copy after it
    would wait for it)."""
    return pad_allowed(allowed_ids(bb.tokenizer, texts, bb.mask_token_id), bb.device)


def _prompted(bb: Backbone, seqs: list[list[int]], rows: list[list[int]], allowed: torch.Tensor, hidden: torch.Tensor,
              logits: torch.Tensor, tokens: torch.Tensor, valid: torch.Tensor, opts: EncodeOptions,
              prep: BatchPrep, quantise: bool = True) -> Representations:
    # Non-finite values count as 0 (docs/method.md §3.6); the logits are cleaned inside sparse_from_logits, on the few
    # columns it reads, instead of over the whole [B, K, V] block (and for the signals only when asked).
    hidden = torch.nan_to_num(hidden, nan=0.0, posinf=0.0, neginf=0.0) * valid.unsqueeze(-1)
    rows_ids, rows_w = sparse_rows(logits, valid, allowed, top_k=opts.sparse_top_k, quantise=quantise)
    # Every result queued before the one wait for the device
    dense, valid_h, tokens_h, rows_ids, rows_w = to_host(hidden, valid, tokens, rows_ids, rows_w)
    sp_ids, sp_w = trim_rows(rows_ids, rows_w)
    if prep.signals is not None:  # read off this batch's logits before they are dropped
        logits = torch.nan_to_num(logits, nan=0.0, posinf=0.0, neginf=0.0)
        prep.signals.append(batch_signals(logits, tokens, valid, hidden, sp_w, [len(r) for r in rows],
                                          [len(s) for s in seqs]))
    return Representations(
        ids=[""] * len(seqs), dense=dense, valid=valid_h, sparse_ids=sp_ids, sparse_weights=sp_w,
        token_ids=tokens_h, input_tokens=torch.tensor([len(s) for s in seqs], dtype=torch.long),
    )

