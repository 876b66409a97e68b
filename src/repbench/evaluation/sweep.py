"""The (K_q, K_p) x score-mode effectiveness sweep (docs/method.md §7.2), resumable per cell.

Layout of an output directory:
  reps/                    cached Representations, one stem per (backbone, encoder, side, K, max_length,
                           + a hash of the input rows and of every option that changes them: every
                           EncodeOptions field (readout, prompt variant, denoise steps, confidence, early
                           stop, truncate, sparse top-k, batch size), dtype and device type), each
                           verified against the sha256 in its sidecar; reused by any later sweep
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

import inspect
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from repbench import schema
from repbench.encoders.digest import rows_hash
from repbench.encoders.options import SPARSE_TOP_K, EncodeOptions, batch_rule
from repbench.encoders.types import Representations
from repbench.errors import RepbenchError
from repbench.evaluation.collections import Collection
from repbench.evaluation.metrics import DEFAULT_MEASURES, check_measures, evaluate, summarize
from repbench.evaluation.repcache import RepCache, cache_options, seal, sealed, signals_path
from repbench.evaluation.trec import round_scores, write_run
from repbench.io import atomic_write_json, read_json
from repbench.retrieval.search import DEFAULT_DEPTH, MODES, modes_for, parse_modes, retrieve
from repbench.schema import system_name
from repbench.schema.signals import read_signals, signals_frame, write_signals
from repbench.schema.tables import read_per_query, write_per_query, write_summary

# Settings that change any number in a cell: a resumed sweep must match them.
# The encode options (ENCODE_FIELDS) are among them; a state file written before they were recorded
# holds none of them and is read as having their defaults.
# Every EncodeOptions field the sweep sets once for both sides (K and side vary per encoding; batch size and
# max length are sweep settings of their own).
ENCODE_FIELDS = tuple(f.name for f in fields(EncodeOptions) if f.name not in ("k", "side", "batch_size", "max_length"))
_IDENTITY = ("backbone", "encoder", "dataset", "modes", "depth", "max_length", "remove_self", "measures",
             "corpus_fingerprint", "queries_fingerprint", *ENCODE_FIELDS, "relevance_level")

EncodeFn = Callable[..., Representations]


@dataclass
class SweepConfig:
    backbone: str
    encoder: str
    kq: list[int]
    kp: list[int]
    modes: list[str] = field(default_factory=lambda: list(MODES))
    depth: int = DEFAULT_DEPTH
    max_length: int = 256
    batch_size: int = 8
    remove_self: bool = True
    measures: list[str] = field(default_factory=lambda: list(DEFAULT_MEASURES))
    # How both sides are encoded (see EncodeOptions); each one keys the representation cache.
    readout: str = "paper"
    denoise_steps: int = 1
    confidence: str = "entropy"
    early_stop: str = "off"  # "off" | "upstream" | "strict" (EncodeOptions.early_stop; True means "upstream")
    adapt_prompt: bool = False
    prompt_variant: str | None = None
    truncate: bool = True
    sparse_top_k: int = SPARSE_TOP_K
    relevance_level: int = 1  # minimum grade binary measures count as relevant (pytrec_eval)

    def __post_init__(self) -> None:
        if isinstance(self.early_stop, bool):  # the pre-issue-24 flag
            self.early_stop = "upstream" if self.early_stop else "off"
        self.modes = parse_modes(self.modes)
        for name in ("kq", "kp"):
            ks = list(getattr(self, name))
            if not ks or any(int(k) < 1 for k in ks) or len(set(ks)) != len(ks):
                raise RepbenchError(f"--{name} needs distinct positive integers, got {ks}")
            setattr(self, name, [int(k) for k in ks])
        if self.depth < 1:
            raise RepbenchError(f"depth must be positive, got {self.depth}")
        for name in ("batch_size", "max_length"):
            if int(getattr(self, name)) < 1:
                raise RepbenchError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        self.measures = check_measures(self.measures)
        self.encode_options("query", 1).validate()

    def encode_options(self, side: str, k: int) -> EncodeOptions:
        """The EncodeOptions one side is encoded with at this K."""
        return EncodeOptions(k=k, side=side, batch_size=self.batch_size, max_length=self.max_length,
                             **{name: getattr(self, name) for name in ENCODE_FIELDS})


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


def run_file_name(system: str) -> str:
    """`backbone/encoder/qKpK/mode` as a file name: '/' -> '__', and no ':' (variant names such as
    `:bidirectional`), which Windows, scp and make all read as something else."""
    return system.replace("/", "__").replace(":", "_") + ".trec"


def _reports_signals(encode_fn: EncodeFn) -> bool:
    """Whether `encode_fn` takes on_signals (repbench.encoders.encode does; test fakes may not)."""
    try:
        params = inspect.signature(encode_fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "on_signals" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _check_encoder(config: SweepConfig, backbone: Any) -> None:
    """Refuse before any encoding: an option the encoder would ignore, K out of its range, no mask token."""
    from repbench.encoders.registry import check

    for side, ks in (("query", config.kq), ("passage", config.kp)):
        for k in ks:
            check(config.encoder, config.encode_options(side, k), getattr(backbone, "mask_token_id", None),
                  config.backbone)

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
) -> pd.DataFrame:
    """Score every (K_q, K_p) cell and mode on `collection`; returns the per-query table.

    `backbone` is a loaded backbone (``bb.spec.name``, ``bb.spec.family``, ``bb.vocab_size``);
    `encode_fn` defaults to ``repbench.encoders.encode``. Queries are the judged ones, encoded with
    side="query"; documents with side="passage". `after_cell(k_q, k_p)` runs after each newly finished
    cell (a test hook, and a place to stop a sweep). Re-running on the same `out_dir` skips finished cells.
    `run_cells(score_cell, jobs)`, when given (an engine), scores the cells elsewhere, yielding
    (job index, result) as they finish; the files are still written here, once per cell.
    """
    from tqdm.auto import tqdm

    # The real encoder in this process (not a test's stand-in, not remote workers): check every K on both
    # sides before the first write, since an output directory's settings are then fixed.
    in_process = encode_fn is None or getattr(encode_fn, "__module__", "") == "repbench.engines.local"
    if encode_fn is None:
        from repbench.encoders import encode as encode_fn  # heavy import, only when really encoding
    if in_process:
        from repbench.encoders import check_fits

        for side, ks in (("query", config.kq), ("passage", config.kp)):
            for k in ks:  # the options the side is encoded with: the prompt variant changes the prompt's length
                check_fits(backbone, config.encoder, config.encode_options(side, k))
    out = Path(out_dir)
    cache = RepCache(Path(cache_dir) if cache_dir is not None else out / "reps")
    family = str(backbone.spec.family)
    vocab_size = int(backbone.vocab_size)
    _check_encoder(config, backbone)
    qids, qtexts = collection.judged_queries()
    if not qids:
        raise RepbenchError(f"{collection.name}: no judged query has a text")
    unmatched = collection.unmatched_qrels_queries()
    if unmatched:
        warnings.warn(f"{collection.name}: {len(unmatched)} judged queries have no text and will score 0",
                      stacklevel=2)
    qfp, dfp = collection.queries_fingerprint(), collection.corpus_fingerprint()
    shared = set(qids) & set(collection.corpus_ids)
    if config.remove_self and shared:
        # Right for ArguAna/Quora (the query is in the corpus); wrong for collections such as ADI whose
        # query and document numbers merely coincide.
        warnings.warn(
            f"{collection.name}: {len(shared)} of {len(qids)} query ids are also doc ids; each such document is "
            "removed from its own query's ranking (self-hit removal). If the ids only coincide, rerun with "
            "--keep-self-hits (remove_self=False)",
            stacklevel=2,
        )

    state = {**asdict(config), "dataset": collection.name, "corpus_fingerprint": dfp, "queries_fingerprint": qfp}
    state_file = out / "sweep_state.json"
    if state_file.exists():
        old = read_json(state_file, "the sweep_state.json of an earlier run")
        defaults = asdict(SweepConfig(backbone="", encoder="", kq=[1], kp=[1]))
        differ = [k for k in _IDENTITY if old.get(k, defaults.get(k)) != state.get(k)]
        if differ:
            raise RepbenchError(
                f"{out} holds a sweep with other settings ({', '.join(differ)}); use another --out directory"
            )
    atomic_write_json(state_file, {k: state[k] for k in _IDENTITY})
    # Settings outside SweepConfig that change the encoded numbers, so they key the cache too.
    encoding_options = {"batch_size": config.batch_size,
                        "dtype": str(getattr(backbone, "dtype", "")).removeprefix("torch."),
                        "device_type": str(getattr(backbone, "device", "cpu")).split(":")[0]}
    times_file = out / "encoding_times.json"
    times: dict[str, dict] = read_json(times_file, "encoding times") if times_file.exists() else {}

    def stem_for(side: str, k: int) -> Path:
        ids, texts = (qids, qtexts) if side == "query" else (collection.corpus_ids, collection.corpus_texts)
        return cache.stem(config.backbone, config.encoder, side, k, config.max_length, rows_hash(ids, texts),
                          **{**encoding_options, **cache_options(config.encode_options(side, k))})

    def reps_for(side: str, k: int) -> Representations:
        ids, texts = (qids, qtexts) if side == "query" else (collection.corpus_ids, collection.corpus_texts)
        stem = stem_for(side, k)
        cached = cache.get(stem, ids)
        if cached is not None and signals_path(stem).exists() and not sealed(signals_path(stem)):
            warnings.warn(f"cached signals {signals_path(stem)} do not match their sha256; re-encoding", stacklevel=2)
            cached = None
        if cached is not None:
            return cached
        got: list = []
        extra = {"on_signals": lambda i, a: got.append((i, a))} if _reports_signals(encode_fn) else {}
        # Only the method options set away from their defaults are passed, so an encode_fn that knows just
        # the common ones (k, side, batch_size, max_length) still serves a default sweep.
        opts = config.encode_options(side, k)
        extra.update({name: getattr(opts, name) for name in opts.non_default() if name in ENCODE_FIELDS})
        t0 = time.perf_counter()
        reps = encode_fn(backbone, list(texts), ids=list(ids), encoder=config.encoder, k=k, side=side,
                         batch_size=config.batch_size, max_length=config.max_length, progress=progress, **extra)
        seconds = time.perf_counter() - t0
        if list(reps.ids) != list(ids):
            raise RepbenchError(f"the encoder returned {len(reps)} items in another order than the {len(ids)} given")
        if got:
            write_signals(signals_path(stem), signals_frame(
                got[0][0], got[0][1], dataset=collection.name, backbone=config.backbone, encoder=config.encoder,
                side=side, k=k))
            seal(signals_path(stem))
        reps.save(stem)
        times[f"{side}:k{k}"] = {"side": side, "k": k, "n": len(ids), "seconds": seconds,
                                  "items_per_s": len(ids) / seconds if seconds > 0 else None}
        atomic_write_json(times_file, times)
        return reps

    cells = [(kq, kp) for kq in config.kq for kp in config.kp]
    cell_path = {c: out / "cells" / f"q{c[0]}p{c[1]}.csv" for c in cells}
    # A cell counts as done only when its file matches the sha256 recorded when it was written: a damaged or
    # edited cell (or one written before cells were sealed) is computed again, never merged as it is.
    todo = [c for c in cells if not sealed(cell_path[c])]
    unsealed = [cell_path[c].name for c in todo if cell_path[c].exists()]
    if unsealed:
        warnings.warn(f"{len(unsealed)} cell file(s) in {out / 'cells'} do not match their recorded sha256 (damaged, "
                      f"edited, or written by an older repbench: {', '.join(unsealed[:3])}); recomputing them",
                      stacklevel=2)
    query_reps: dict[int, Representations] = {}
    bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc=f"{collection.name} cells",
               disable=not progress, unit="cell")
    qrels = collection.qrels

    def finish(kq: int, kp: int, result: tuple[dict, pd.DataFrame]) -> None:
        _write_cell(out, config, kq, kp, cell_path[(kq, kp)], *result)
        bar.update(1)
        if after_cell is not None:
            after_cell(kq, kp)

    jobs: list[tuple] = []
    # Corpus outer, queries inner: each corpus encoding (the expensive side) is held once.
    for kp in config.kp:
        pending = [kq for kq in config.kq if (kq, kp) in todo]
        if not pending:
            continue
        docs = reps_for("passage", kp)
        for kq in pending:
            if kq not in query_reps:
                query_reps[kq] = reps_for("query", kq)
            args = (qrels, collection.name, config, family, vocab_size, query_reps[kq], docs, kq, kp)
            if run_cells is None:
                finish(kq, kp, score_cell(*args))
            else:
                jobs.append(args)
    if jobs:
        for j, result in run_cells(score_cell, jobs):
            finish(jobs[j][7], jobs[j][8], result)
    bar.close()

    per_query = pd.concat([read_per_query(cell_path[c]) for c in cells], ignore_index=True)[list(schema.PER_QUERY_COLUMNS)]
    summary = summarize(per_query, by=list(schema.SUMMARY_COLUMNS[:7]))[list(schema.SUMMARY_COLUMNS)]
    write_per_query(out / "per_query.csv", per_query)
    write_summary(out / "summary.csv", summary)
    _write_signals(out, collection, config, stem_for)
    _write_metadata(out, collection, config, family, times, cells, encoding_options["dtype"])
    return per_query


def _write_signals(out: Path, collection: Collection, config: SweepConfig,
                   stem_for: Callable[[str, int], Path]) -> None:
    """out/signals.csv from the cached encodings' signal files (query side at every K_q, passage side at
    every K_p); encodings cached without signals (an older cache, or an encoder that reports none) are
    left out with a warning."""
    frames, lacking = [], []
    for side, ks in (("query", config.kq), ("passage", config.kp)):
        for k in ks:
            path = signals_path(stem_for(side, k))
            if path.is_file():
                if not sealed(path):
                    raise RepbenchError(f"{path}: a cached signals table that does not match its recorded sha256 "
                                        f"(damaged, edited or cached by an older repbench); delete it and the "
                                        f"encoding {path.name.removesuffix('.signals.csv')}.* beside it, then rerun")
                frames.append(read_signals(path).assign(dataset=collection.name))
            else:
                lacking.append(f"{side} K={k}")
    if lacking and frames:
        warnings.warn(f"no encode-time signals for {', '.join(lacking)} (cached before signals were recorded?); "
                      "delete those cached encodings to record them", stacklevel=3)
    if frames:
        write_signals(out / "signals.csv", pd.concat(frames, ignore_index=True))


def score_cell(qrels: Any, dataset: str, config: SweepConfig, family: str, vocab_size: int,
               queries: Representations, docs: Representations, kq: int, kp: int
               ) -> tuple[dict[str, dict], pd.DataFrame]:
    """One cell's rounded runs per mode and its per-query rows (pure: an engine may run it anywhere)."""
    modes = modes_for(kq, kp, config.modes)
    runs = retrieve(queries, docs, modes, depth=config.depth, vocab_size=vocab_size,
                    remove_self=config.remove_self)
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


def _write_cell(out: Path, config: SweepConfig, kq: int, kp: int, cell_file: Path, runs: dict[str, dict],
                table: pd.DataFrame) -> None:
    # The runs first, the cell file last: its presence marks the cell done.
    for mode, run in runs.items():
        system = system_name(config.backbone, config.encoder, kq, kp, mode)
        write_run(out / "runs" / run_file_name(system), run, tag=system)  # the tag names the whole system
    write_per_query(cell_file, table)
    seal(cell_file)


def _write_metadata(out: Path, collection: Collection, config: SweepConfig, family: str,
                    times: dict, cells: list[tuple[int, int]], dtype: str = "") -> None:
    from repbench.telemetry.environment import result_header

    # The dtype decides whether a text's numbers can depend on its batch (options.batch_rule)
    run = {"family": family, "dataset": collection.name, "dtype": dtype or None,
           "batch_rule": batch_rule(dtype) if dtype else None}
    header = result_header({**asdict(config), **run}, "effectiveness_sweep")
    header["collection"] = {
        "name": collection.name, "source": collection.source, "split": collection.split,
        "n_docs": len(collection.corpus_ids), "n_judged_queries": len(collection.qrels),
        "n_encoded_queries": len(collection.judged_queries()[0]),
        "corpus_fingerprint": collection.corpus_fingerprint(),
        "queries_fingerprint": collection.queries_fingerprint(), "info": collection.info,
        "query_ids_also_doc_ids": len(set(collection.judged_queries()[0]) & set(collection.corpus_ids)),
    }
    header["cells"] = [{"k_q": kq, "k_p": kp, "modes": modes_for(kq, kp, config.modes)} for kq, kp in cells]
    header["encoding"] = sorted(times.values(), key=lambda t: (t["side"], t["k"]))
    atomic_write_json(out / "metadata.json", header)
