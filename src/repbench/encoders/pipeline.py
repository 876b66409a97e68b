"""`encode` / `encode_ids`: batching, order, and the metadata around one registry encoder's batch function.

`encode` takes texts; `encode_ids` takes already-tokenised text (no special tokens), which is what the
latency harness uses to feed both families inputs of an exact token length.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from repbench.backbones.loading import Backbone
from repbench.encoders.batch import BatchPrep
from repbench.encoders.options import EncodeOptions, batch_rule
from repbench.encoders.prompts import answer_end_ids, build_prompt_ids, default_variant, stop_token_ids
from repbench.encoders.registry import check, default_encoder
from repbench.encoders.signals import concat_signals
from repbench.encoders.types import Representations
from repbench.errors import RepbenchError


def encode(
    bb: Backbone,
    texts: Sequence[str],
    ids: Sequence[str] | None = None,
    encoder: str | None = None,
    options: EncodeOptions | None = None,
    *,
    progress: bool | Callable[[int], Any] = False,
    step_callback: Callable[[str, int], None] | None = None,
    on_signals: Callable[[list[str], dict[str, np.ndarray]], None] | None = None,
    **fields: Any,
) -> Representations:
    """Encode raw texts. `fields` (k=, side=, readout=, ...) override `options`; see `EncodeOptions`."""
    text_ids = bb.tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []
    return encode_ids(bb, text_ids, ids=ids, encoder=encoder, options=options, progress=progress,
                      texts=list(texts), step_callback=step_callback, on_signals=on_signals, **fields)


def encode_ids(
    bb: Backbone,
    text_ids: Sequence[Sequence[int]],
    ids: Sequence[str] | None = None,
    encoder: str | None = None,
    options: EncodeOptions | None = None,
    *,
    texts: Sequence[str] | None = None,
    progress: bool | Callable[[int], Any] = False,
    step_callback: Callable[[str, int], None] | None = None,
    on_signals: Callable[[list[str], dict[str, np.ndarray]], None] | None = None,
    **fields: Any,
) -> Representations:
    """Encode pre-tokenised texts (see `encode`). `progress`: True for a per-text bar, or a callable
    given the number of texts done after each batch. `texts` drive the sparse content filter; when omitted
    they are decoded from `text_ids`. `step_callback(phase, step)` marks forward steps for the bench.
    `on_signals(ids, arrays)`, when given, receives once, after encoding, the encode-time signals of every
    text in input order (encoders.signals; read off each batch, no extra forward pass)."""
    opts = EncodeOptions.build(options, **fields)
    encoder = encoder or default_encoder(bb.spec.family)
    spec = check(encoder, opts, bb.mask_token_id, bb.spec.name)
    n = len(text_ids)
    ids = [str(i) for i in (ids if ids is not None else range(n))]
    if len(ids) != n:
        raise RepbenchError(f"{len(ids)} ids for {n} texts")
    prep = _prepare(bb, opts, prompted=spec.prompted, signals=on_signals is not None,
                    adapt=_adapts(spec.options, opts))
    forward = spec.forward_fn()
    order = longest_first([len(t) for t in text_ids])
    batches = [order[s: s + opts.batch_size] for s in range(0, n, opts.batch_size)]
    bar, update = None, progress if callable(progress) else None
    if progress is True and n:
        from tqdm.auto import tqdm

        # Per text, with rate and ETA: on a CPU a real collection takes minutes to hours.
        bar = tqdm(total=n, desc=f"{bb.spec.name} {encoder} K={opts.k} {opts.side}", unit="text")
        update = bar.update
    parts: list[tuple[list[int], Representations]] = []
    with torch.inference_mode():
        for batch in batches:
            rows = [list(text_ids[i]) for i in batch]
            rep = forward(bb, rows, [texts[i] for i in batch] if texts is not None else None, opts, prep,
                          step_callback)
            rep.ids = [ids[i] for i in batch]
            parts.append((batch, rep))
            if update is not None:
                update(len(batch))
    if bar is not None:
        bar.close()
    reps = _restore_order(parts, n) if parts else _empty(opts.k, bb.hidden_size)
    if on_signals is not None:
        on_signals(list(ids), concat_signals(prep.signals, np.asarray([i for b in batches for i in b], dtype=np.int64)))
    reps.meta = {
        "backbone": bb.spec.name, "family": bb.spec.family, "encoder": encoder, "k": opts.k, "side": opts.side,
        "max_length": opts.max_length, "readout": opts.readout, "denoise_steps": opts.denoise_steps,
        "prompt_variant": opts.prompt_variant or default_variant(opts.k),
        "dtype": str(bb.dtype).removeprefix("torch."), "batch_rule": batch_rule(str(bb.dtype)), "attn": bb.attn,
        "early_stop": opts.early_stop,
        "adapt_prompt": _adapts(spec.options, opts), "truncate": opts.truncate, "vocab_size": bb.vocab_size,
    }
    return reps


def longest_first(lengths: Sequence[int]) -> list[int]:
    """The order `encode_ids` batches texts in: longest first (fewer pad tokens per batch), ties in input
    order (a stable sort). Rows handed to `encode` already in this order keep it, so a caller that splits
    them into runs of whole batches (the sweep's passage store) gets exactly the batches of one call."""
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])


def check_fits(bb: Backbone, encoder: str, opts: EncodeOptions) -> None:
    """Every refusal `encode_ids` would make, without encoding: for a command to run before it writes."""
    spec = check(encoder, opts, bb.mask_token_id, bb.spec.name)
    _prepare(bb, opts, prompted=spec.prompted, adapt=_adapts(spec.options, opts))


def _adapts(options: frozenset[str], opts: EncodeOptions) -> bool:
    """Whether the prompt's wording follows K: always on the parallel path (upstream's diffusion classes
    adapt it), only with `adapt_prompt` on the sequential one (upstream's zero-shot AR class never does)."""
    return opts.adapt_prompt if "adapt_prompt" in options else True


def _prepare(bb: Backbone, opts: EncodeOptions, prompted: bool, signals: bool = False, adapt: bool = True
             ) -> BatchPrep:
    tok = bb.tokenizer
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    prompt = None
    if prompted:
        prompt = build_prompt_ids(tok, opts.side, opts.k, opts.prompt_variant, adapt)
        need = len(prompt.prefix) + len(prompt.suffix) + 1
        if opts.max_length < need:
            raise RepbenchError(
                f"--max-length {opts.max_length} is too small: the {opts.side} prompt for K={opts.k} takes "
                f"{need - 1} tokens ({len(prompt.prefix)}+{len(prompt.suffix)}), so the minimum is {need}"
            )
    answer_end = answer_end_ids(tok, bb.mask_token_id, opts.early_stop) if prompted else frozenset()
    return BatchPrep(pad_id=pad_id, stop=stop_token_ids(tok, bb.mask_token_id), prompt=prompt,
                     signals=[] if signals else None, answer_end=answer_end)


def _restore_order(parts: list[tuple[list[int], Representations]], n: int) -> Representations:
    reps = Representations.concat([p for _, p in parts])
    flat = [i for b, _ in parts for i in b]
    inverse = torch.empty(n, dtype=torch.long)
    inverse[torch.tensor(flat)] = torch.arange(n)
    return reps.select(inverse)


def _empty(k: int, hidden: int) -> Representations:
    return Representations(ids=[], dense=torch.zeros(0, k, hidden), valid=torch.zeros(0, k, dtype=torch.bool),
                           sparse_ids=torch.zeros(0, 0, dtype=torch.long), sparse_weights=torch.zeros(0, 0),
                           token_ids=torch.zeros(0, k, dtype=torch.long), input_tokens=torch.zeros(0, dtype=torch.long))
