"""The encode-cell runner: loads each backbone once per session (timed as cold start) and measures
query encoding per (backbone, encoder, K, input length, batch) cell."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from repbench.benchmarking.cell_results import EncodeResult
from repbench.benchmarking.cells import EncodeCell
from repbench.benchmarking.harness import RoundsRunner, cold_start, is_oom
from repbench.benchmarking.memory import cell_memory
from repbench.benchmarking.session import BenchSession, oom_reason
from repbench.benchmarking.workloads import ordinary_token_ids, synthetic_text_ids
from repbench.errors import RepbenchError


@dataclass
class LoadedBackbone:
    backbone: Any
    cold_start: dict[str, Any]
    pool: np.ndarray


@dataclass
class EncodeCellRunner:
    """`run(cell, runner)` -> the cell's extra_info. `loaded` holds the session's backbones; `failed` the
    reason a backbone could not load (out of memory), so its later cells are skipped without retrying.

    Only the reason is kept, never the exception: its traceback frames hold the half-built model, which
    would stay resident for the rest of the session and crowd every later cell.
    """

    session: BenchSession
    loaded: dict[str, LoadedBackbone] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def backbone(self, name: str, first_length: int) -> LoadedBackbone:
        """Load once per session; the load and the first call are timed as cold start."""
        if name in self.loaded:
            return self.loaded[name]
        from repbench.backbones import load_backbone
        from repbench.encoders import EncodeOptions, default_encoder, encode_ids

        s = self.session
        pool_box: dict[str, np.ndarray] = {}

        def first_call(bb: Any) -> None:
            pool_box["pool"] = ordinary_token_ids(bb.tokenizer)
            ids = synthetic_text_ids(pool_box["pool"], 1, first_length, seed=s.seed)
            encode_ids(bb, ids, encoder=default_encoder(bb.spec.family),
                       options=EncodeOptions(k=1, side="query", batch_size=1, max_length=first_length + 512))

        bb, times = cold_start(lambda: load_backbone(name, device=str(s.device), dtype=s.dtype, attn=s.attn),
                               first_call, s.device)
        cs = {**times, "first_call": {"encoder": default_encoder(bb.spec.family), "k": 1,
                                      "input_tokens": first_length, "batch_size": 1}, "weights": bb.weights}
        self.loaded[name] = LoadedBackbone(bb, cs, pool_box["pool"])
        return self.loaded[name]

    def run(self, cell: EncodeCell, runner: RoundsRunner) -> dict[str, Any]:
        """Measure one encoding cell; returns extra_info. Raises on anything but OOM (-> skipped)."""
        from repbench.encoders import EncodeOptions, encode_ids

        s = self.session
        info = {**cell.to_json(), **s.base_info()}
        if cell.backbone in self.failed:
            return s.skip(cell.id, info, self.failed[cell.backbone])
        loading = cell.backbone not in self.loaded
        try:
            loaded = self.backbone(cell.backbone, cell.input_tokens)
            loading = False
            bb = loaded.backbone
            ids = synthetic_text_ids(loaded.pool, cell.batch_size, cell.input_tokens, seed=s.seed)
            # Room for the whole synthetic text plus prompt, K slots and tail: never truncate it.
            opts = EncodeOptions(k=cell.k, side="query", batch_size=cell.batch_size,
                                 max_length=cell.input_tokens + 512)

            def fn(cb: Any) -> Any:
                return encode_ids(bb, ids, encoder=cell.encoder, options=opts, step_callback=cb)

            measurement, first = s.measure(fn, runner, cell.batch_size, cell.input_tokens)
            produced = int(first.dense.shape[1])
            if produced != cell.k:
                raise RepbenchError(f"{cell.id}: encoder produced {produced} slots, expected exactly K={cell.k}")
            model_tokens = int(first.input_tokens[0])
        except Exception as exc:
            if not is_oom(exc):
                raise
            reason = oom_reason(exc)
            if loading:
                self.failed[cell.backbone] = reason
        else:
            result = EncodeResult(cell, s.setup, measurement, model_tokens, loaded.cold_start,
                                  encoder_forward_path(bb, cell.encoder), cell_memory(bb.model, measurement.memory, s.device))
            stats = measurement.latency.stats
            s.results.append({**info, "median_s": stats["median"], "ci_low": stats["median_ci_low"],
                              "ci_high": stats["median_ci_high"], "flag": stats["flag"]})
            return result.to_json()
        # outside the except block, so the exception (and the frames holding a half-built model) is gone
        return s.skip(cell.id, info, reason)


def encoder_forward_path(bb: Any, encoder: str) -> str:
    """Which backbone forward an encoder's cell timed: the read-columns adapter or the full forward, and why."""
    from repbench.backbones.adapters import forward_path
    from repbench.encoders.registry import get_encoder

    if not get_encoder(encoder).reads_columns:
        return f"full forward ({encoder} reads every position)"
    return forward_path(bb.model.model).describe()
