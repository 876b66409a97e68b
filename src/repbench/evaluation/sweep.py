"""The (K_q, K_p) x score-mode effectiveness sweep (docs/method.md §7.2), resumable per cell.

Layout of an output directory:
  reps/                    cached encodings, one stem per (backbone, encoder, side, K, max_length,
                           + a hash of the input rows and of every option that changes them: every
                           EncodeOptions field (readout, prompt variant, denoise steps, confidence, early
                           stop, truncate, sparse top-k, batch size), dtype and device type), each
                           verified against the sha256 in its sidecar; reused by any later sweep. The query
                           side is a Representations file pair (<stem>.safetensors/.json; judged queries are
                           few); the passage side a store directory <stem>/ (repbench.encoders.store, written
                           shard by shard, see evaluation.passage_store), scored by streaming search, so
                           memory is bounded by a shard and --max-memory, not by the corpus
  runs/<system>.trec       one TREC run per cell and mode; system = backbone/encoder/q{K_q}p{K_p}/mode
                           with "/" written as "__"
  cells/q{K_q}p{K_p}.csv   per-query rows of one finished cell; written atomically after its runs, so its
                           presence marks the cell done and a restarted sweep skips it
  sweep_state.json         the settings a resumed sweep must share with the first one
  encoding_times.json      seconds spent encoding each (side, K), kept across restarts
  reps/<stem>.signals.csv  encode-time signals of one cached encoding (schema.signals), when the encoder
                           reports them; written before the representations, so a cached encoding has them
  per_query.csv, summary.csv, signals.csv, metadata.json   written when every cell is done
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import pandas as pd

from repbench.encoders.digest import rows_hash
from repbench.encoders.identity import EncodingIdentity, identity_of
from repbench.encoders.options import EncodeOptions
from repbench.encoders.types import Representations
from repbench.errors import RepbenchError
from repbench.evaluation.collections import Collection
from repbench.evaluation.metrics import DEFAULT_MEASURES, check_measures, evaluate
from repbench.evaluation.passage_store import Layout, plan_layout
from repbench.evaluation.repcache import RepCache, sealed
from repbench.evaluation.sweep_encode import Encodings
from repbench.evaluation.sweep_outputs import write_cell, write_outputs
from repbench.evaluation.trec import round_scores
from repbench.io import atomic_write_json, read_json
from repbench.retrieval.search import DEFAULT_DEPTH, MODES, modes_for, parse_modes, retrieve

# The sweep's own settings that change any number in a cell (beside the encoding identity's sweep fields).
SCORING_FIELDS = ("dataset", "modes", "depth", "remove_self", "measures", "corpus_fingerprint",
                  "queries_fingerprint", "relevance_level")


EncodeFn = Callable[..., Representations]


@dataclass
class SweepConfig:
    """What one sweep runs: the grid, the scoring, and how both sides are encoded (`options`, whose k and
    side are set per encoding; every other field keys the representation cache)."""

    backbone: str
    encoder: str
    kq: list[int]
    kp: list[int]
    modes: list[str] = field(default_factory=lambda: list(MODES))
    depth: int = DEFAULT_DEPTH
    remove_self: bool = True
    measures: list[str] = field(default_factory=lambda: list(DEFAULT_MEASURES))
    relevance_level: int = 1  # minimum grade binary measures count as relevant (pytrec_eval)
    options: EncodeOptions = field(default_factory=EncodeOptions)

    def __post_init__(self) -> None:
        self.modes = parse_modes(self.modes)
        for name in ("kq", "kp"):
            ks = list(getattr(self, name))
            if not ks or any(int(k) < 1 for k in ks) or len(set(ks)) != len(ks):
                raise RepbenchError(f"--{name} needs distinct positive integers, got {ks}")
            setattr(self, name, [int(k) for k in ks])
        if self.depth < 1:
            raise RepbenchError(f"depth must be positive, got {self.depth}")
        for name in ("batch_size", "max_length"):
            value = getattr(self.options, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise RepbenchError(f"--{name.replace('_', '-')} must be at least 1, got {value!r}")
        self.measures = check_measures(self.measures)
        self.options.validate()

    @property
    def max_length(self) -> int:
        return self.options.max_length

    @property
    def batch_size(self) -> int:
        return self.options.batch_size

    def encodings(self) -> list[tuple[str, int]]:
        """Every (side, K) the sweep encodes: the queries at each K_q, the passages at each K_p."""
        return [("query", k) for k in self.kq] + [("passage", k) for k in self.kp]

    def encode_options(self, side: str, k: int) -> EncodeOptions:
        """The EncodeOptions one side is encoded with at this K."""
        return replace(self.options, k=k, side=side)

    def flat(self) -> dict[str, Any]:
        """The settings as one flat mapping (sweep_state.json, metadata.json): the options' fields beside
        the sweep's own, without the per-encoding k and side."""
        own = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "options"}
        opts = {f.name: getattr(self.options, f.name) for f in fields(self.options) if f.name not in ("k", "side")}
        return {**own, **opts}


def parse_ks(text: str, option: str = "K") -> list[int]:
    """'1,2,4' -> [1, 2, 4]."""
    try:
        ks = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise RepbenchError(f"{option}: expected a comma-separated list of integers, got {text!r}") from None
    if not ks or any(k < 1 for k in ks) or len(set(ks)) != len(ks):
        raise RepbenchError(f"{option}: K values must be distinct positive integers, got {text!r}")
    from repbench.option_checks import INT_MAX

    if max(ks) > INT_MAX:  # torch and faiss hold K in a C int: a larger one would wrap, not fail
        raise RepbenchError(f"{option}: K values must be at most {INT_MAX}, got {max(ks)}")
    return ks


def _check_encoder(config: SweepConfig, backbone: Any) -> None:
    """Refuse before any encoding: an option the encoder would ignore, K out of its range, no mask token."""
    from repbench.encoders.registry import check

    for side, k in config.encodings():
        check(config.encoder, config.encode_options(side, k), getattr(backbone, "mask_token_id", None),
              config.backbone)


@dataclass
class SweepPlan:
    """What a sweep will do, decided before anything is written: its settings, cells and cache keys."""

    out: Path
    collection: Collection
    config: SweepConfig
    family: str
    vocab_size: int
    queries: tuple[list[str], list[str]]  # the judged queries' ids and texts
    state: dict[str, Any]  # what sweep_state.json records: what a resumed sweep must match
    cells: list[tuple[int, int]]
    cell_path: dict[tuple[int, int], Path]
    todo: list[tuple[int, int]]  # cells not done: no file, or one that fails its recorded sha256
    cache: RepCache
    encoding: EncodingIdentity  # of the sweep's encodings, before K, side and rows are set
    layout: Layout  # how the passage store's rows are ordered and sharded (keys the passage stems)
    # K_p -> (a store `repbench encode` wrote, its hashes): scored instead of encoding (evaluate --passages-store)
    given: dict[int, tuple[Path, str]] = field(default_factory=dict)

    def rows(self, side: str) -> tuple[list[str], list[str]]:
        return self.queries if side == "query" else (self.collection.corpus_ids, self.collection.corpus_texts)

    def identity(self, side: str, k: int, rows: bool = True) -> EncodingIdentity:
        """One encoding's identity: the passage side's names its store layout; `rows` adds the input's hash
        (the cache key; a store checks its rows per shard instead)."""
        return replace(self.encoding, options=self.config.encode_options(side, k),
                       store_layout=self.layout.key() if side == "passage" else None,
                       rows=rows_hash(*self.rows(side)) if rows else None)

    def stem(self, side: str, k: int) -> Path:
        return self.cache.stem(self.identity(side, k))


def plan_sweep(collection: Collection, backbone: Any, config: SweepConfig, out_dir: str | Path,
               cache_dir: str | Path | None = None, shard_size: int | None = None,
               by_length: bool = False, passage_stores: Sequence[str | Path] = ()) -> SweepPlan:
    """Every check a sweep makes before its first write, and what it will do (writes nothing).
    `shard_size` and `by_length` lay out the passage store (evaluation.passage_store.plan_layout);
    `passage_stores` are stores `repbench encode` wrote, scored instead of encoding (evaluation.given_store)."""
    _check_encoder(config, backbone)
    qids, qtexts = collection.judged_queries()
    if not qids:
        raise RepbenchError(f"{collection.name}: no judged query has a text")
    unmatched = collection.unmatched_qrels_queries()
    if unmatched:
        warnings.warn(f"{collection.name}: {len(unmatched)} judged queries have no text and will score 0",
                      stacklevel=3)
    shared = set(qids) & set(collection.corpus_ids)
    if config.remove_self and shared:
        # Right for ArguAna/Quora (the query is in the corpus); wrong for collections such as ADI whose
        # query and document numbers merely coincide.
        warnings.warn(
            f"{collection.name}: {len(shared)} of {len(qids)} query ids are also doc ids; each such document is "
            "removed from its own query's ranking (self-hit removal). If the ids only coincide, rerun with "
            "--keep-self-hits (remove_self=False)",
            stacklevel=3,
        )
    out = Path(out_dir)
    encoding = identity_of(backbone, config.encoder, config.options, name=config.backbone)
    sweep = {"dataset": collection.name, "corpus_fingerprint": collection.corpus_fingerprint(),
             "queries_fingerprint": collection.queries_fingerprint(), **config.flat()}
    state = {**{k: sweep[k] for k in SCORING_FIELDS}, **encoding.sweep_fields()}
    cells = [(kq, kp) for kq in config.kq for kp in config.kp]
    cell_path = {c: out / "cells" / f"q{c[0]}p{c[1]}.csv" for c in cells}
    # A cell counts as done only when its file matches the sha256 recorded when it was written: a damaged or
    # edited cell (or one written before cells were sealed) is computed again, never merged as it is.
    todo = [c for c in cells if not sealed(cell_path[c])]
    unsealed = [cell_path[c].name for c in todo if cell_path[c].exists()]
    if unsealed:
        warnings.warn(f"{len(unsealed)} cell file(s) in {out / 'cells'} do not match their recorded sha256 (damaged, "
                      f"edited, or written by an older repbench: {', '.join(unsealed[:3])}); recomputing them",
                      stacklevel=3)
    plan = SweepPlan(
        out=out, collection=collection, config=config, family=str(backbone.spec.family),
        vocab_size=int(backbone.vocab_size), queries=(qids, qtexts), state=state, cells=cells,
        cell_path=cell_path, todo=todo,
        cache=RepCache(Path(cache_dir) if cache_dir is not None else out / "reps"),
        encoding=encoding,
        layout=plan_layout(config.batch_size, shard_size, by_length, len(collection.corpus_ids)))
    if passage_stores:
        from repbench.evaluation.given_store import given_stores

        plan.given = given_stores(passage_stores, lambda k: plan.identity("passage", k, rows=False),
                                  *plan.rows("passage"))
        extra = sorted(set(plan.given) - set(config.kp))
        if extra:
            raise RepbenchError(f"--passages-store: a store of K={extra[0]}, which --kp {config.kp} does not list")
    # Always recorded (empty when none): a resumed sweep cannot score another store, or switch to one.
    plan.state["passage_stores"] = {str(k): digest for k, (_, digest) in sorted(plan.given.items())}
    return plan


def _claim(plan: SweepPlan) -> None:
    """The first write: sweep_state.json, after refusing a directory that holds a sweep with other settings."""
    state_file = plan.out / "sweep_state.json"
    if state_file.exists():
        old = read_json(state_file, "the sweep_state.json of an earlier run")
        defaults = SweepConfig(backbone="", encoder="", kq=[1], kp=[1]).flat()
        if isinstance(old.get("early_stop"), bool):  # the flag before it named a rule: True was today's strict
            old["early_stop"] = "strict" if old["early_stop"] else "off"
        # A field an older state file lacks reads as its default; one without a default (a setting recorded
        # since, e.g. the dtype) is not held against it.
        differ = [k for k, v in plan.state.items() if k in old or k in defaults if old.get(k, defaults.get(k)) != v]
        if differ:
            raise RepbenchError(
                f"{plan.out} holds a sweep with other settings ({', '.join(differ)}); use another --out directory"
            )
    atomic_write_json(state_file, plan.state)


def _score(plan: SweepPlan, encodings: Encodings, finish: Callable[[int, int, Any], None],
           run_cells: Callable[..., Iterator[tuple[int, Any]]] | None, max_memory: int | None) -> None:
    """Score every cell not done yet, corpus outer and queries inner, each against the passage store (a
    path: streamed in chunks of at most `max_memory` bytes, and picklable for an engine); with `run_cells`
    (an engine) the cells are scored elsewhere, written here."""
    config, todo = plan.config, plan.todo
    query_reps: dict[int, Representations] = {}
    jobs: list[tuple] = []
    for kp in config.kp:
        pending = [kq for kq in config.kq if (kq, kp) in todo]
        if not pending:
            continue
        docs = str(encodings.passages(kp))
        for kq in pending:
            if kq not in query_reps:
                query_reps[kq] = encodings.get("query", kq)
            args = (plan.collection.qrels, plan.collection.name, config, plan.family, plan.vocab_size,
                    query_reps[kq], docs, kq, kp, max_memory)
            if run_cells is None:
                finish(kq, kp, score_cell(*args))
            else:
                jobs.append(args)
    if jobs:
        for j, result in run_cells(score_cell, jobs):
            finish(jobs[j][7], jobs[j][8], result)


def run_sweep(
    collection: Collection,
    backbone: Any,
    config: SweepConfig,
    out_dir: str | Path,
    *,
    encode_fn: EncodeFn | None = None,
    cache_dir: str | Path | None = None,
    after_cell: Callable[[int, int], None] | None = None,
    progress: bool = True,
    run_cells: Callable[..., Iterator[tuple[int, Any]]] | None = None,
    max_memory: int | None = None,
    shard_size: int | None = None,
    passage_stores: Sequence[str | Path] = (),
) -> pd.DataFrame:
    """Score every (K_q, K_p) cell and mode on `collection`; returns the per-query table.

    `backbone` is a loaded backbone (``bb.spec.name``, ``bb.spec.family``, ``bb.vocab_size``);
    `encode_fn` defaults to ``repbench.encoders.encode``. Queries are the judged ones, encoded with
    side="query"; documents with side="passage". `after_cell(k_q, k_p)` runs after each newly finished
    cell (a test hook, and a place to stop a sweep). Re-running on the same `out_dir` skips finished cells.
    `run_cells(score_cell, jobs)`, when given (an engine), scores the cells elsewhere, yielding
    (job index, result) as they finish; the files are still written here, once per cell.
    `max_memory` bounds one search chunk's working set (bytes; default streaming.DEFAULT_MAX_MEMORY);
    `shard_size` splits the passage store in input order (the in-memory `--shard-size` split) instead of
    whole batches longest first (evaluation.passage_store). `passage_stores`: stores `repbench encode` wrote
    over this corpus, scored at their K_p instead of encoding it (evaluation.given_store).
    Stages: plan (every check, nothing written), claim the directory, encode and score each cell, write.
    """
    from tqdm.auto import tqdm

    if encode_fn is None or getattr(encode_fn, "in_process", False):
        # The real encoder in this process (not a test's stand-in, not remote workers): every K on both sides
        # must fit --max-length before the first write, since an output directory's settings are then fixed.
        from repbench.encoders import check_fits

        for side, k in config.encodings():  # the side's own options: the prompt variant changes its length
            check_fits(backbone, config.encoder, config.encode_options(side, k))
    # Passage rows in encode's own batch order where that order is known: the real encoder, its tokenizer here.
    by_length = encode_fn is None and hasattr(backbone, "tokenizer")
    if encode_fn is None:
        from repbench.encoders import encode as encode_fn  # heavy import, only when really encoding
    plan = plan_sweep(collection, backbone, config, out_dir, cache_dir, shard_size, by_length, passage_stores)
    if max_memory is not None:  # a limit no chunk fits, refused before the first write (no sparse row counted)
        from repbench.retrieval.streaming import chunk_docs_for

        chunk_docs_for(max_memory, max(config.kp), int(getattr(backbone, "hidden_size", 0) or 0), 0, 4)
    _claim(plan)
    encodings = Encodings(plan, backbone, encode_fn, progress)
    bar = tqdm(total=len(plan.cells), initial=len(plan.cells) - len(plan.todo), desc=f"{collection.name} cells",
               disable=not progress, unit="cell")

    def finish(kq: int, kp: int, result: tuple[dict, pd.DataFrame]) -> None:
        write_cell(plan.out, config, kq, kp, plan.cell_path[(kq, kp)], *result)
        bar.update(1)
        if after_cell is not None:
            after_cell(kq, kp)

    _score(plan, encodings, finish, run_cells, max_memory)
    bar.close()
    return write_outputs(plan.out, collection, config, plan.family, plan.cells, plan.cell_path, plan.stem,
                         encodings.times, plan.encoding.dtype, plan.given)


def score_cell(qrels: Any, dataset: str, config: SweepConfig, family: str, vocab_size: int,
               queries: Representations, docs: Representations | str | Path, kq: int, kp: int,
               max_memory: int | None = None) -> tuple[dict[str, dict], pd.DataFrame]:
    """One cell's rounded runs per mode and its per-query rows (pure: an engine may run it anywhere).
    `docs` in memory are searched whole; a store directory is streamed (the same lists, ties included)."""
    modes = modes_for(kq, kp, config.modes)
    if isinstance(docs, Representations):
        runs = retrieve(queries, docs, modes, depth=config.depth, vocab_size=vocab_size,
                        remove_self=config.remove_self)
    else:
        from repbench.retrieval.streaming import stream_retrieve

        runs = stream_retrieve(queries, docs, modes, depth=config.depth, vocab_size=vocab_size,
                               remove_self=config.remove_self, max_memory=max_memory)
    rounded, frames = {}, []
    for mode in modes:
        # Evaluate exactly what is written, so `repbench eval-run -c` on the file reproduces these numbers.
        rounded[mode] = round_scores(runs[mode])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # missing queries are reported once by run_sweep
            df = evaluate(rounded[mode], qrels, config.measures, relevance_level=config.relevance_level)
        df.insert(0, "mode", mode)
        frames.append(df)
    table = pd.concat(frames, ignore_index=True)
    for col, value in reversed(list({"dataset": dataset, "backbone": config.backbone, "family": family,
                                     "encoder": config.encoder, "k_q": kq, "k_p": kp}.items())):
        table.insert(0, col, value)
    return rounded, table


