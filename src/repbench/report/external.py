"""External TREC runs in the report (`repbench report --run bm25=path.trec`): each run is evaluated on
the qrels of the dataset it answers, with the measures of the sweeps, into a tidy per-query table that
the paper-style table and the K figure's reference lines read (`<out>/external/per_query.csv`)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from repbench.errors import RepbenchError
from repbench.io import atomic_write_csv, read_csv
from repbench.report.inputs import find_named
from repbench.report.provenance import _header

EXTERNAL_FILE = Path("external") / "per_query.csv"
COLUMNS = ["dataset", "system", "qid", "measure", "value"]


def dataset_qrels(results: Path) -> dict[str, Path]:
    """Dataset name -> its qrels file, from the sweeps' metadata.json (collection source and split)."""
    out: dict[str, Path] = {}
    for path in find_named(Path(results), "metadata.json"):
        header = _header(path)
        coll = header.get("collection") if header else None
        if isinstance(coll, dict) and coll.get("name") and coll.get("source"):
            qrels = Path(str(coll["source"])) / "qrels" / f"{coll.get('split') or 'test'}.tsv"
            if qrels.is_file():
                out[str(coll["name"])] = qrels
    return out


def evaluate_runs(runs: dict[str, str], results: Path, measures: list[str], qrels: Path | None = None,
                  dataset: str | None = None) -> pd.DataFrame:
    """Per-query values of each named run, on `qrels` (named `dataset`), or else on the qrels of the dataset
    under `results` whose judged queries the run answers most of."""
    from repbench.evaluation.metrics import MissingQueriesWarning, evaluate
    from repbench.evaluation.trec import read_qrels, read_run

    candidates = {dataset or Path(qrels).parent.parent.name: Path(qrels)} if qrels else dataset_qrels(results)
    if not candidates:
        raise RepbenchError(f"--run: no collection found for the external runs: no sweep metadata.json under "
                            f"{results} names its dataset folder; give --run-qrels QRELS (and --run-dataset NAME)")
    judged = {name: read_qrels(path) for name, path in candidates.items()}
    frames = []
    for name, path in runs.items():
        run = read_run(path)
        overlap = {d: len(set(run) & set(q)) for d, q in judged.items()}
        best = max(overlap, key=overlap.get)
        if overlap[best] == 0:
            raise RepbenchError(f"--run {name}={path}: none of its query ids is judged in "
                                f"{', '.join(map(str, candidates.values()))}; expected a run over one of those "
                                "collections (or give --run-qrels)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MissingQueriesWarning)
            values = evaluate(run, judged[best], measures)
        frames.append(values.assign(dataset=best, system=name)[COLUMNS])
    return pd.concat(frames, ignore_index=True)


def write_external(out: Path, table: pd.DataFrame) -> Path:
    return atomic_write_csv(Path(out) / EXTERNAL_FILE, table)


def load_external(out: Path) -> pd.DataFrame | None:
    path = Path(out) / EXTERNAL_FILE
    if not path.is_file():
        return None
    frame = read_csv(path, "the report's external-run table", dtype={"qid": str, "dataset": str, "system": str})
    return frame[COLUMNS]
