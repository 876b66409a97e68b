"""Table: paper-style, datasets as columns and systems as rows, with external runs, marks and W/T/L."""

from pathlib import Path

import pandas as pd

from repbench.report import external, inputs, latex, provenance, wide

KIND, SECTION, TITLE = "table", "Effectiveness", "Paper-style comparison with external runs"
INPUTS = ("per_query",)  # optional: external runs (repbench report --run NAME=RUN), significance.csv


def run(results: Path, out: Path) -> list[Path]:
    per_query = inputs.require(inputs.sweep_per_query(results), "per_query", results)
    ext = external.load_external(out)
    tidy = pd.concat([per_query[external.COLUMNS], ext], ignore_index=True) if ext is not None else \
        per_query[external.COLUMNS]
    measures = [m for m in ("ndcg_cut_10", "map") if m in set(tidy["measure"])] or [str(tidy["measure"].iloc[0])]
    runs = list(dict.fromkeys(ext["system"])) if ext is not None else []
    sweeps = list(dict.fromkeys(per_query.sort_values(["backbone", "encoder", "k_q", "k_p", "mode_order"])["system"]))
    significance = inputs.load_csv_kind(results, "significance")
    baseline = runs[0] if runs else (significance["baseline"].value_counts().index[0]
                                     if significance is not None and len(significance) else sweeps[0])
    table = wide.wide_table(tidy, runs + sweeps, baseline, measures)
    table.caption.append(provenance.provenance_note(tidy["dataset"], per_query["backbone"],
                                                    provenance.synthetic_datasets(results)))
    return latex.write_table(table, out, "tab_wide")
