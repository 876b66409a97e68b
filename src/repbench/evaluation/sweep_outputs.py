"""The files a finished sweep writes: each cell's runs and rows, then per_query.csv, summary.csv,
signals.csv and metadata.json (the layout is in repbench.evaluation.sweep)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from repbench import schema
from repbench.encoders.options import batch_rule
from repbench.errors import RepbenchError
from repbench.evaluation.collections import Collection
from repbench.evaluation.metrics import summarize
from repbench.evaluation.repcache import seal, sealed, signals_path
from repbench.evaluation.trec import write_run
from repbench.io import atomic_write_json
from repbench.retrieval.search import modes_for
from repbench.schema import system_name
from repbench.schema.signals import copy_signals
from repbench.schema.tables import read_per_query, write_per_query, write_summary

# `config` below is the sweep's SweepConfig (not imported: the sweep imports this module).
SweepConfig = Any


def run_file_name(system: str) -> str:
    """`backbone/encoder/qKpK/mode` as a file name: '/' -> '__', and no ':' (variant names such as
    `:bidirectional`), which Windows, scp and make all read as something else."""
    return system.replace("/", "__").replace(":", "_") + ".trec"


def write_outputs(out: Path, collection: Collection, config: SweepConfig, family: str, cells: list[tuple[int, int]],
                  cell_path: dict[tuple[int, int], Path], stem_for: Callable[[str, int], Path], times: dict,
                  dtype: str, given: dict[int, tuple[Path, str]] | None = None) -> pd.DataFrame:
    """The whole sweep's tables from its cell files; returns the per-query table. `given`: the stores
    scored instead of encoding (K_p -> (path, hashes)), recorded in metadata.json."""
    per_query = pd.concat([read_per_query(cell_path[c]) for c in cells], ignore_index=True)[list(schema.PER_QUERY_COLUMNS)]
    summary = summarize(per_query, by=list(schema.SUMMARY_COLUMNS[:7]))[list(schema.SUMMARY_COLUMNS)]
    write_per_query(out / "per_query.csv", per_query)
    write_summary(out / "summary.csv", summary)
    _write_signals(out, collection, config, stem_for, set(given or ()))
    _write_metadata(out, collection, config, family, times, cells, dtype, given or {})
    return per_query


def _write_signals(out: Path, collection: Collection, config: SweepConfig,
                   stem_for: Callable[[str, int], Path], given: set[int] = frozenset()) -> None:
    """out/signals.csv from the cached encodings' signal files (query side at every K_q, passage side at
    every K_p); encodings cached without signals (an older cache, or an encoder that reports none) are
    left out with a warning; a given store's passage side (`given` K_p) has none to give."""
    frames, lacking = [], []
    for side, k in config.encodings():
        if side == "passage" and k in given:
            continue
        path = signals_path(stem_for(side, k))
        if path.is_file():
            if not sealed(path):
                raise RepbenchError(f"{path}: a cached signals table that does not match its recorded sha256 "
                                    f"(damaged, edited or cached by an older repbench); delete it and the "
                                    f"encoding {path.name.removesuffix('.signals.csv')}.* beside it, then rerun")
            frames.append(path)
        else:
            lacking.append(f"{side} K={k}")
    if lacking and frames:
        warnings.warn(f"no encode-time signals for {', '.join(lacking)} (cached before signals were recorded?); "
                      "delete those cached encodings to record them", stacklevel=3)
    if frames:  # copied block by block: a passage side's table is ~70 rows per passage at K_p = 16
        copy_signals(out / "signals.csv", frames, collection.name)


def write_cell(out: Path, config: SweepConfig, kq: int, kp: int, cell_file: Path, runs: dict[str, dict],
                table: pd.DataFrame) -> None:
    # The runs first, the cell file last: its presence marks the cell done.
    for mode, run in runs.items():
        system = system_name(config.backbone, config.encoder, kq, kp, mode)
        write_run(out / "runs" / run_file_name(system), run, tag=system)  # the tag names the whole system
    write_per_query(cell_file, table)
    seal(cell_file)


def _write_metadata(out: Path, collection: Collection, config: SweepConfig, family: str,
                    times: dict, cells: list[tuple[int, int]], dtype: str = "",
                    given: dict[int, tuple[Path, str]] | None = None) -> None:
    from repbench.telemetry.environment import result_header

    # The dtype decides whether a text's numbers can depend on its batch (options.batch_rule)
    run = {"family": family, "dataset": collection.name, "dtype": dtype or None,
           "batch_rule": batch_rule(dtype) if dtype else None}
    header = result_header({**config.flat(), **run}, "effectiveness_sweep")
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
    if given:
        header["passage_stores"] = [{"k_p": k, "path": str(Path(path).resolve()), "hashes": digest}
                                    for k, (path, digest) in sorted(given.items())]
    atomic_write_json(out / "metadata.json", header)
