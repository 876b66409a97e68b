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


def split_run_spec(spec: str | os.PathLike) -> tuple[str | None, str]:
    """`NAME=PATH` -> (NAME, PATH); a plain path (or one whose whole text is an existing file) -> (None, path)."""
    text = str(spec)
    name, sep, path = text.partition("=")
    if not sep or not name or not path or Path(text).exists() or "/" in name:
        return None, text
    return name, path


def run_names(paths: Sequence[str | os.PathLike]) -> list[str]:
    """System names for run files: NAME of a `NAME=PATH` spec, else the file stem, or the whole file name
    where two stems coincide (`results.test`, `results.trunc`); the same name twice is refused."""
    specs = [split_run_spec(p) for p in paths]
    paths = [path for _, path in specs]
    stems = [given or run_name(p) for (given, _), p in zip(specs, paths, strict=True)]
    names = [Path(p).name if stems.count(s) > 1 else s for p, s in zip(paths, stems, strict=True)]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise RepbenchError(f"two runs are named {name!r}; rename one of them")
    return names


def read_runs(paths: Sequence[str | os.PathLike]) -> dict[str, Run]:
    """Read run files (paths or `NAME=PATH`) keyed by system name (run_names), in the given order."""
    return {name: read_run(split_run_spec(path)[1]) for name, path in zip(run_names(paths), paths, strict=True)}


def dataset_name(qrels: str | os.PathLike) -> str:
    """The collection a qrels file belongs to: `<dataset>/qrels/test.tsv` (BEIR layout) -> `<dataset>`,
    else the file name without its extensions."""
    path = Path(qrels)
    if path.parent.name == "qrels" and path.parent.parent.name:
        return path.parent.parent.name
    return path.name.split(".")[0]


def read_qrels_file(path: str | os.PathLike) -> Qrels:
    if not Path(path).exists():
        raise RepbenchError(f"{path}: no such qrels file")
    return read_qrels(path)


def is_run_spec(spec: str | os.PathLike) -> bool:
    """A TREC run given as NAME=RUN, or a file whose first line reads as a run."""
    from repbench.evaluation.sniff import file_kind

    name, path = split_run_spec(spec)
    return name is not None or (Path(path).is_file() and file_kind(path) == "run")


def run_per_query(spec: str | os.PathLike, qrels_path: str | os.PathLike, measures: Sequence[str]):
    """A TREC run (path or NAME=RUN) evaluated on `qrels_path` as a per-query table `repbench compare` reads:
    dataset from the collection, one cell (backbone 'external', encoder 'run', mode 'trec'), so two runs of
    the same system on two machines or versions compare cell for cell."""
    from repbench.analysis.baselines import PerQueryRun

    _, path = split_run_spec(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingQueriesWarning)
        values = evaluate(read_run(path), read_qrels_file(qrels_path), list(measures))
    table = values.assign(dataset=dataset_name(qrels_path), backbone="external", family="external",
                          encoder="run", k_q=0, k_p=0, mode="trec")
    return PerQueryRun(path=Path(path), table=table, header=None)
