"""The sweep's encode stage: each side's representations at each K, from the cache or encoded, cached and
timed; the passage side as a store (evaluation.passage_store) that cells stream from. `plan` is the
sweep's SweepPlan (not imported: the sweep imports this module)."""

from __future__ import annotations

import inspect
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from repbench.encoders.options import method_names
from repbench.encoders.types import Representations
from repbench.errors import RepbenchError
from repbench.evaluation.repcache import seal, sealed, signals_path
from repbench.io import atomic_write_json, read_json
from repbench.schema.signals import SLOT_SIGNALS, TEXT_SIGNALS, signals_frame, write_signals_blocks


def _reports_signals(encode_fn: Callable[..., Representations]) -> bool:
    """Whether `encode_fn` takes on_signals (repbench.encoders.encode does; test fakes may not)."""
    try:
        params = inspect.signature(encode_fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "on_signals" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


class Encodings:
    """Each side's representations at each K: from the cache, else encoded, cached and timed."""

    def __init__(self, plan: Any, backbone: Any, encode_fn: Callable[..., Representations], progress: bool) -> None:
        self.plan, self.backbone, self.encode_fn, self.progress = plan, backbone, encode_fn, progress
        self.times_file = plan.out / "encoding_times.json"
        self.times: dict[str, dict] = (read_json(self.times_file, "encoding times") if self.times_file.exists()
                                       else {})
        self.order: Any = None  # passage rows in store order (passage_store.row_order), once per sweep

    def get(self, side: str, k: int) -> Representations:
        plan = self.plan
        ids, texts = plan.rows(side)
        stem = plan.stem(side, k)
        cached = plan.cache.get(stem, ids)
        if cached is not None and signals_path(stem).exists() and not sealed(signals_path(stem)):
            warnings.warn(f"cached signals {signals_path(stem)} do not match their sha256; re-encoding", stacklevel=2)
            cached = None
        if cached is not None:
            return cached
        t0 = time.perf_counter()
        reps, arrays = self._encode(side, k, ids, texts, self.progress)
        seconds = time.perf_counter() - t0
        if arrays is not None:
            self._write_signals(side, k, stem, ids, arrays)
        reps.save(stem)
        self._timed(side, k, len(ids), seconds)
        return reps

    def passages(self, k: int) -> Path:
        """The passage store at this K (a directory; encoded now, or resumed, shard by shard)."""
        from repbench.evaluation import passage_store

        plan, config = self.plan, self.plan.config
        if k in plan.given:  # a store `repbench encode` wrote, checked by plan_sweep: scored as it is
            return plan.given[k][0]
        ids, texts = plan.rows("passage")
        stem = plan.stem("passage", k)
        if self.order is None:  # the same at every K_p: the texts' lengths, read once
            tokenize = None
            if plan.layout.by_length:
                tok = self.backbone.tokenizer
                tokenize = lambda batch: tok(batch, add_special_tokens=False)["input_ids"]  # noqa: E731
            self.order = passage_store.row_order(texts, tokenize)
        order = self.order
        # The store's identity leaves the rows out: each shard records and checks its own.
        store_config = plan.identity("passage", k, rows=False).fields()
        header = {"backbone": config.backbone, "encoder": config.encoder, "side": "passage", "k": k,
                  "max_length": config.max_length, "options": store_config, "n_items": len(ids)}
        t0 = time.perf_counter()
        n_new, arrays = passage_store.build(
            stem, ids, texts, plan.layout, lambda i, t: self._encode("passage", k, i, t, False), order,
            store_config, header, _reports_signals(self.encode_fn), self.progress, self._encode_many("passage", k))
        seconds = time.perf_counter() - t0
        sig = signals_path(stem)
        if arrays is not None and not n_new and sig.exists() and not sealed(sig):
            warnings.warn(f"cached signals {sig} do not match their sha256; rewriting them from the store's "
                          "per-shard signals", stacklevel=2)
        if arrays is not None and (n_new or not sealed(sig)):
            self._write_signals("passage", k, stem, ids, arrays)
        if n_new:
            self._timed("passage", k, n_new, seconds)
        return stem

    def _encode_many(self, side: str, k: int) -> Callable | None:
        """The engine's way to encode several store shards at once (its encode_fn's `encode_parts`), as
        passage_store.build takes it; None: one shard after another in this process."""
        parts = getattr(self.encode_fn, "encode_parts", None)
        if parts is None:
            return None
        config, opts = self.plan.config, self.plan.config.encode_options(side, k)
        signals = _reports_signals(self.encode_fn)
        fields = {name: getattr(opts, name) for name in ("k", "side", "batch_size", "max_length",
                                                         *method_names(type(opts)))}

        def encode_many(rows: list[tuple[list[str], list[str]]]) -> Any:
            for j, result in parts(rows, config.encoder, signals, **fields):
                # an encoder that reports no signals gives {}: as absent, like encode's on_signals never called
                yield j, ((result[0], result[1] or None) if signals else (result, None))

        return encode_many

    def _encode(self, side: str, k: int, ids: list[str], texts: list[str], progress: bool
                ) -> tuple[Representations, dict | None]:
        """One call of encode_fn: the representations and (when reported) the signal arrays, in input order."""
        config = self.plan.config
        got: list = []
        extra = {"on_signals": lambda i, a: got.append((i, a))} if _reports_signals(self.encode_fn) else {}
        # Only the method options set away from their defaults are passed, so an encode_fn that knows just
        # the common ones (k, side, batch_size, max_length) still serves a default sweep.
        opts = config.encode_options(side, k)
        extra.update({name: getattr(opts, name) for name in opts.non_default() if name in method_names(type(opts))})
        reps = self.encode_fn(self.backbone, list(texts), ids=list(ids), encoder=config.encoder, k=k, side=side,
                              batch_size=config.batch_size, max_length=config.max_length, progress=progress,
                              **extra)
        if list(reps.ids) != list(ids):
            raise RepbenchError(f"the encoder returned {len(reps)} items in another order than the {len(ids)} given")
        return reps, (got[0][1] if got else None)

    def _write_signals(self, side: str, k: int, stem: Path, ids: list[str], arrays: dict,
                       block: int = 20_000) -> None:
        """The side's signals table, written signal by signal and `block` ids at a time: signals_frame's rows
        in its order (every row of one signal, then the next), never the whole table in memory."""
        config = self.plan.config
        tags = {"dataset": self.plan.collection.name, "backbone": config.backbone, "encoder": config.encoder,
                "side": side, "k": k}
        frames = (signals_frame(ids[lo:lo + block], {name: arrays[name][lo:lo + block]}, **tags)
                  for name in (*TEXT_SIGNALS, *SLOT_SIGNALS) if name in arrays
                  for lo in range(0, len(ids), block))
        write_signals_blocks(signals_path(stem), frames)
        seal(signals_path(stem))

    def _timed(self, side: str, k: int, n: int, seconds: float) -> None:
        self.times[f"{side}:k{k}"] = {"side": side, "k": k, "n": n, "seconds": seconds,
                                       "items_per_s": n / seconds if seconds > 0 else None}
        atomic_write_json(self.times_file, self.times)
