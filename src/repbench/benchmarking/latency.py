"""The latency benchmark cells behind `pytest bench/`: grids, ordering, and how one cell is run.

bench/conftest.py only parses options and wires these into pytest-benchmark; everything reusable
(and testable without pytest-benchmark) lives here.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from repbench.benchmarking.harness import CellMeasurement, CellPlan, RoundsRunner, cold_start, is_oom
from repbench.benchmarking.memory import cell_memory
from repbench.benchmarking.workloads import ordinary_token_ids, sparse_rows, synthetic_text_ids, unit_vectors
from repbench.errors import RepbenchError
from repbench.telemetry.nvml import NvmlDevice

SEARCH_KINDS = ("dense", "maxsim", "sparse")
SEARCH_MODES = {"dense": "single_dense", "maxsim": "multi_dense", "sparse": "sparse_max"}


def parse_int_list(text: str, name: str) -> list[int]:
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise RepbenchError(f"--{name}: expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values) or max(values) > 2**31 - 1:
        raise RepbenchError(f"--{name}: expected positive integers up to 2**31 - 1, got {text!r}")
    return values


def parse_str_list(text: str) -> list[str]:
    return [v.strip() for v in str(text).split(",") if v.strip()]


@dataclass(frozen=True)
class EncodeCell:
    backbone: str
    family: str
    encoder: str
    k: int
    input_tokens: int
    batch_size: int

    @property
    def id(self) -> str:
        return f"{self.backbone}-{self.encoder}-k{self.k}-L{self.input_tokens}-b{self.batch_size}"


@dataclass(frozen=True)
class SearchCell:
    kind: str  # dense | maxsim | sparse
    index_size: int
    k_p: int
    k_q: int
    query_batch: int
    dim: int

    @property
    def encoder(self) -> str:
        return f"search:{self.kind}"

    @property
    def id(self) -> str:
        return f"{self.kind}-N{self.index_size}-kp{self.k_p}-q{self.query_batch}-H{self.dim}"


def encode_cells(
    backbones: Sequence[tuple[str, str]],
    encoders_for: Callable[[str], Sequence[str]],
    ks: Sequence[int],
    lengths: Sequence[int],
    batches: Sequence[int],
    order: str = "interleave",
    seed: int = 0,
) -> list[EncodeCell]:
    """Every (backbone, encoder, K, length, batch) cell, in a drift-cancelling order (docs/methodology.md rule 14).

    `interleave`: for each shape, the backbones in turn (ABAB...), so AR and diffusion cells alternate.
    `shuffle`: a seeded random permutation of all cells. A single-pass encoder (registry max K of 1)
    gives one vector whatever K is asked for, so it is measured at K=1 only.
    """
    from repbench.encoders.registry import get_encoder

    cells = []
    for length in lengths:
        for b in batches:
            for k in ks:
                for name, family in backbones:
                    for enc in encoders_for(family):
                        if get_encoder(enc).max_k == 1 and k > 1:
                            continue
                        cells.append(EncodeCell(name, family, enc, k, length, b))
    if order == "shuffle":
        random.Random(seed).shuffle(cells)
    elif order != "interleave":
        raise RepbenchError(f"--order: expected 'interleave' or 'shuffle', got {order!r}")
    return cells


def search_cells(
    sizes: Sequence[int], k_ps: Sequence[int], k_q: int, batches: Sequence[int], dims: Sequence[int],
    kinds: Sequence[str] = SEARCH_KINDS,
) -> list[SearchCell]:
    """The search grid. K_p only varies MaxSim; single-vector and sparse cells carry k_p = 1."""
    out = []
    for dim in dims:
        for n in sizes:
            for qb in batches:
                for kind in kinds:
                    if kind not in SEARCH_KINDS:
                        raise RepbenchError(f"unknown search kind {kind!r}; use {', '.join(SEARCH_KINDS)}")
                    for kp in (k_ps if kind == "maxsim" else [1]):
                        out.append(SearchCell(kind, n, kp, k_q if kind == "maxsim" else 1, qb, dim))
    return out


def search_index_bytes(cell: SearchCell, sparse_terms: int) -> int:
    """Bytes the synthetic index for a cell needs (a conservative estimate used for the memory cap)."""
    if cell.kind == "dense":
        return cell.index_size * cell.dim * 4 * 2  # numpy copy + faiss's own copy
    if cell.kind == "maxsim":
        return cell.index_size * cell.k_p * cell.dim * 4 * 2
    return cell.index_size * sparse_terms * (8 + 4) * 4  # ids + weights, CSR copies inside search


SKIPPED_GROUP = "skipped"
_NAN_STATS = ("min", "max", "mean", "stddev", "median", "iqr", "q1", "q3", "ld15iqr", "hd15iqr", "ops")


@dataclass
class Skipped:
    """A cell that could not run (out of memory, over the memory cap, failed load) and why."""

    name: str
    extra_info: dict[str, Any]

    def as_benchmark(self) -> dict[str, Any]:
        """The cell as a `benchmarks[]` entry that `pytest-benchmark compare` loads and tabulates.

        pytest-benchmark needs every stats field as a number; a skipped cell has no timing, so its times
        are NaN (shown as "nan", never ranked best) over 0 rounds, in its own group so it never sets
        the scale of measured cells. repbench readers recognise it by `extra_info.status == "skipped"`.
        """
        stats: dict[str, Any] = dict.fromkeys(_NAN_STATS, float("nan"))
        stats.update(rounds=0, iterations=1, total=0.0, iqr_outliers=0, stddev_outliers=0, outliers="0;0")
        return {"group": SKIPPED_GROUP, "name": self.name, "fullname": self.name, "params": None, "param": None,
                "extra_info": self.extra_info, "options": {}, "stats": stats}


@dataclass
class LoadedBackbone:
    backbone: Any
    cold_start: dict[str, Any]
    pool: np.ndarray


@dataclass
class BenchContext:
    """Session state: device, plan, telemetry, loaded backbones, per-cell results for the summary."""

    device: torch.device
    dtype: str
    attn: str
    plan: CellPlan
    nvml: NvmlDevice | None = None
    telemetry_note: str | None = None
    seed: int = 0
    search_depth: int = 100
    search_sparse_terms: int = 128
    search_max_bytes: int = 0
    backbones: dict[str, LoadedBackbone | BaseException] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    # ---- common -------------------------------------------------------------------------------
    def base_info(self) -> dict[str, Any]:
        return {"device": str(self.device), "dtype": self.dtype, "attn": self.attn}

    def skip(self, name: str, info: dict[str, Any], reason: str) -> dict[str, Any]:
        extra = {**info, "status": "skipped", "reason": reason, "samples_s": [],
                 "peak_memory_bytes": None, "tokens_per_s": None, "queries_per_s": None,
                 "energy_j_per_query": None, "telemetry_note": self.telemetry_note}
        self.skipped.append(Skipped(name, extra))
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        return extra

    def measure(self, fn: Callable[[Any], Any], runner: RoundsRunner, batch_size: int,
                tokens_per_query: int | None, plan: CellPlan | None = None) -> tuple[dict[str, Any], Any]:
        """extra_info fields of one measured cell, and the result of its first (warm-up) call."""
        m = CellMeasurement(fn, self.device, plan or self.plan, nvml=self.nvml,
                            telemetry_note=self.telemetry_note)
        m.run(runner)
        return m.fields(batch_size=batch_size, tokens_per_query=tokens_per_query), m.first_result

    # ---- encoding -----------------------------------------------------------------------------
    def backbone(self, name: str, first_length: int) -> LoadedBackbone:
        """Load once per session; the load and the first call are timed as cold start."""
        if name in self.backbones:
            got = self.backbones[name]
            if isinstance(got, BaseException):
                raise got
            return got
        from repbench.backbones import load_backbone
        from repbench.encoders import EncodeOptions, default_encoder, encode_ids

        pool_box: dict[str, np.ndarray] = {}

        def first_call(bb: Any) -> None:
            pool_box["pool"] = ordinary_token_ids(bb.tokenizer)
            ids = synthetic_text_ids(pool_box["pool"], 1, first_length, seed=self.seed)
            encode_ids(bb, ids, encoder=default_encoder(bb.spec.family),
                       options=EncodeOptions(k=1, side="query", batch_size=1, max_length=first_length + 512))

        try:
            bb, times = cold_start(
                lambda: load_backbone(name, device=str(self.device), dtype=self.dtype, attn=self.attn),
                first_call, self.device,
            )
        except BaseException as exc:
            if is_oom(exc):
                self.backbones[name] = exc
            raise
        cs = {**times, "first_call": {"encoder": default_encoder(bb.spec.family), "k": 1,
                                      "input_tokens": first_length, "batch_size": 1}, "weights": bb.weights}
        loaded = LoadedBackbone(bb, cs, pool_box["pool"])
        self.backbones[name] = loaded
        return loaded

    def run_encode_cell(self, cell: EncodeCell, runner: RoundsRunner) -> dict[str, Any]:
        """Measure one encoding cell; returns extra_info. Raises on anything but OOM (-> skipped)."""
        from repbench.encoders import EncodeOptions, encode_ids

        info = {"backbone": cell.backbone, "family": cell.family, "encoder": cell.encoder, "k": cell.k,
                "input_tokens": cell.input_tokens, "batch_size": cell.batch_size, **self.base_info()}
        try:
            loaded = self.backbone(cell.backbone, cell.input_tokens)
            bb = loaded.backbone
            ids = synthetic_text_ids(loaded.pool, cell.batch_size, cell.input_tokens, seed=self.seed)
            # Room for the whole synthetic text plus prompt, K slots and tail: never truncate it.
            opts = EncodeOptions(k=cell.k, side="query", batch_size=cell.batch_size,
                                 max_length=cell.input_tokens + 512)

            def fn(cb: Any) -> Any:
                return encode_ids(bb, ids, encoder=cell.encoder, options=opts, step_callback=cb)

            fields, first = self.measure(fn, runner, cell.batch_size, cell.input_tokens)
            produced = int(first.dense.shape[1])
            if produced != cell.k:
                raise RepbenchError(f"{cell.id}: encoder produced {produced} slots, expected exactly K={cell.k}")
            model_tokens = int(first.input_tokens[0])
        except Exception as exc:
            if is_oom(exc):
                return self.skip(cell.id, info, f"out of memory: {str(exc).splitlines()[0][:300]}")
            raise
        out = {**info, **fields, "model_input_tokens": model_tokens, "cold_start": loaded.cold_start,
               "forward_path": encoder_forward_path(bb, cell.encoder),
               **cell_memory(bb.model, fields, self.device)}
        self.results.append({**info, "median_s": fields["stats"]["median"],
                             "ci_low": fields["stats"]["median_ci_low"],
                             "ci_high": fields["stats"]["median_ci_high"], "flag": fields["stats"]["flag"]})
        return out

    # ---- search -------------------------------------------------------------------------------
    def run_search_cell(self, cell: SearchCell, runner: RoundsRunner) -> dict[str, Any]:
        info = {"backbone": None, "family": None, "encoder": cell.encoder, "mode": SEARCH_MODES[cell.kind],
                "k": cell.k_p, "k_p": cell.k_p, "k_q": cell.k_q, "index_size": cell.index_size,
                "query_batch": cell.query_batch, "batch_size": cell.query_batch, "input_tokens": None,
                "dim": cell.dim, "depth": self.search_depth, **self.base_info()}
        need = search_index_bytes(cell, self.search_sparse_terms)
        if self.search_max_bytes and need > self.search_max_bytes:
            return self.skip(cell.id, info, f"index needs ~{need / 2**30:.2f} GiB, over the memory cap "
                             f"{self.search_max_bytes / 2**30:.2f} GiB (--search-max-gib)")
        try:
            fn, extra = self._search_fn(cell)
            plan = CellPlan(**{**asdict(self.plan), "block_below_s": 1e-3})
            fields, _ = self.measure(fn, runner, cell.query_batch, None, plan=plan)
        except Exception as exc:
            if is_oom(exc):
                return self.skip(cell.id, info, f"out of memory: {str(exc).splitlines()[0][:300]}")
            raise
        fields["ms_per_query"] = fields["stats"]["median"] / cell.query_batch * 1e3
        out = {**info, **extra, **fields}
        self.results.append({**info, "median_s": fields["stats"]["median"], "flag": fields["stats"]["flag"]})
        return out

    def _search_fn(self, cell: SearchCell) -> tuple[Callable[[Any], Any], dict[str, Any]]:
        depth = self.search_depth
        seed = self.seed
        if cell.kind == "dense":
            from repbench.retrieval.dense import FlatIPIndex

            docs = unit_vectors(cell.index_size, 1, cell.dim, seed=seed)[:, 0]
            queries = unit_vectors(cell.query_batch, 1, cell.dim, seed=seed + 1)[:, 0]
            index = FlatIPIndex(docs)
            del docs
            return (lambda cb: index.search(queries, depth)), {"search_device": "cpu (faiss-cpu)"}
        if cell.kind == "maxsim":
            from repbench.retrieval.multivector import maxsim_search

            docs_t = torch.from_numpy(unit_vectors(cell.index_size, cell.k_p, cell.dim, seed=seed)).to(self.device)
            q_t = torch.from_numpy(unit_vectors(cell.query_batch, cell.k_q, cell.dim, seed=seed + 1)).to(self.device)
            return (lambda cb: maxsim_search(q_t, docs_t, depth)), {"search_device": str(self.device)}
        from repbench.retrieval.sparse import SparseIndex

        vocab = 1 << 16
        d_ids, d_w = sparse_rows(cell.index_size, self.search_sparse_terms, vocab, seed=seed)
        q_ids, q_w = sparse_rows(cell.query_batch, self.search_sparse_terms, vocab, seed=seed + 1)
        sparse_index = SparseIndex(d_ids, d_w, vocab)  # built once, outside the timed region
        return (lambda cb: sparse_index.search(q_ids, q_w, depth)), {
            "search_device": "cpu (scipy)", "sparse_terms": self.search_sparse_terms, "vocab_size": vocab,
        }


def encoder_forward_path(bb: Any, encoder: str) -> str:
    """Which backbone forward an encoder's cell timed: the read-columns adapter or the full forward, and why."""
    from repbench.backbones.adapters import forward_path
    from repbench.encoders.registry import get_encoder

    if not get_encoder(encoder).reads_columns:
        return f"full forward ({encoder} reads every position)"
    return forward_path(bb.model.model).describe()


NOISE_FLAGS = ("noisy", "invalid")  # stats.flag values whose medians are not read as results


def relative_latency_table(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (backbone, family, encoder, input length, batch): median latency at each K over K=1."""
    groups: dict[tuple, dict[int, float]] = {}
    for r in results:
        if r.get("input_tokens") is None:
            continue
        key = (r["family"], r["backbone"], r["encoder"], r["input_tokens"], r["batch_size"])
        groups.setdefault(key, {})[r["k"]] = (r["median_s"], r.get("flag"))
    rows = []
    for (family, backbone, encoder, length, bs), by_k in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0]))):
        base, base_flag = by_k.get(1, (None, None))
        for k in sorted(by_k):
            median, flag = by_k[k]
            # A ratio resting on a cell whose samples are too spread (stats.flag) is noise, not a result.
            noisy = [f for f in (flag, base_flag) if f in NOISE_FLAGS]
            rows.append({"family": family, "backbone": backbone, "encoder": encoder, "input_tokens": length,
                         "batch_size": bs, "k": k, "median_ms": median * 1e3,
                         "rel_k1": (median / base) if base else None,
                         "noise": "invalid" if "invalid" in noisy else (noisy[0] if noisy else None)})
    return rows


def format_relative_table(rows: list[dict[str, Any]]) -> str:
    """Text table: one line per (family, backbone, encoder, L, batch), columns K with latency / K=1; a ratio
    resting on a cell flagged noisy or invalid (at K or at K=1) shows the flag instead of a number."""
    if not rows:
        return "(no encoding cells measured)"
    ks = sorted({r["k"] for r in rows})
    lines = []
    header = f"{'family':<10}{'backbone':<38}{'encoder':<11}{'L':>5}{'B':>4}{'K=1 ms':>10}" + "".join(
        f"{'x K=' + str(k):>9}" for k in ks)
    lines.append(header)
    lines.append("-" * len(header))
    seen: dict[tuple, dict[int, dict[str, Any]]] = {}
    for r in rows:
        seen.setdefault((r["family"], r["backbone"], r["encoder"], r["input_tokens"], r["batch_size"]), {})[r["k"]] = r
    for (family, backbone, encoder, length, bs), by_k in seen.items():
        k1 = by_k.get(1)
        cells = []
        for k in ks:
            rel, noise = by_k.get(k, {}).get("rel_k1"), by_k.get(k, {}).get("noise")
            if noise:
                cells.append(f"{noise:>9}")
            else:
                cells.append(f"{rel:>9.2f}" if rel is not None and not math.isnan(rel) else f"{'-':>9}")
        k1_ms = f"{k1['median_ms']:>10.2f}" if k1 else f"{'-':>10}"
        lines.append(f"{family:<10}{backbone:<38}{encoder:<11}{length:>5}{bs:>4}{k1_ms}" + "".join(cells))
    return "\n".join(lines)
