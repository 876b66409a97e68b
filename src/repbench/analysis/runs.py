"""Per-query values of several TREC runs on one qrels, as a tidy (system, qid, value) table."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from repbench.errors import RepbenchError
from repbench.evaluation.metrics import MissingQueriesWarning, evaluate
from repbench.evaluation.trec import Qrels, Run, read_qrels, read_run


def run_name(path: str | os.PathLike) -> str:
    """A run's system name: its file stem (`runs/bm25.trec` -> `bm25`)."""
    return Path(path).stem


def runs_table(
    runs: Mapping[str, Run],
    qrels: Qrels,
    measure: str,
    relevance_level: int = 1,
    retrieved_only: bool = False,
) -> tuple[pd.DataFrame, list[str]]:
    """Evaluate each run on every judged query (missing -> 0, as in evaluation).

    `retrieved_only` drops, per run, the judged queries it retrieved nothing for, so that
    `align(..., intersect=True)` keeps just the queries every run answered. Returns the tidy table and
    one note per run that lacked judged queries.
    """
    frames: list[pd.DataFrame] = []
    notes: list[str] = []
    for name, run in runs.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", MissingQueriesWarning)
            values = evaluate(run, qrels, measures=[measure], relevance_level=relevance_level)
        notes += [f"{name}: {w.message}" for w in caught if issubclass(w.category, MissingQueriesWarning)]
        if retrieved_only:
            values = values[values["qid"].isin([q for q, docs in run.items() if docs])]
        frames.append(pd.DataFrame({"system": name, "qid": values["qid"].astype(str), "value": values["value"]}))
    return pd.concat(frames, ignore_index=True), notes


def read_runs(paths: Sequence[str | os.PathLike]) -> dict[str, Run]:
    """Read run files keyed by file stem, in the given order; two runs with one stem are refused."""
    runs: dict[str, Run] = {}
    for path in paths:
        name = run_name(path)
        if name in runs:
            raise RepbenchError(f"two runs are named {name!r} (file stem); rename one of them")
        runs[name] = read_run(path)
    return runs


def read_qrels_file(path: str | os.PathLike) -> Qrels:
    if not Path(path).exists():
        raise RepbenchError(f"{path}: no such qrels file")
    return read_qrels(path)
