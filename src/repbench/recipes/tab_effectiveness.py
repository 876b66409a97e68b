"""Table: effectiveness by dataset and system, best bold, significance marks vs the baseline (Holm)."""

from pathlib import Path

import pandas as pd

from repbench.report import inputs, latex, provenance, tables

KIND, SECTION, TITLE = "table", "Effectiveness", "Effectiveness by dataset and system"
INPUTS = ("effectiveness",)  # optional: significance.csv; repbench/recipes/paper/{model_card,promptreps_nfcorpus}.csv


def run(results: Path, out: Path) -> list[Path]:
    means = inputs.require(inputs.effectiveness_means(results), "effectiveness", results)
    significance = inputs.load_csv_kind(results, "significance")
    refs = [f for f in (inputs.load_paper(results, "model_card"), inputs.load_paper(results, "promptreps_nfcorpus"))
            if f is not None]
    paper = pd.concat(refs, ignore_index=True) if refs else None
    table = tables.effectiveness_table(means, significance, paper)
    table.caption.append(provenance.provenance_note(means["dataset"], means["backbone"],
                                                    provenance.synthetic_datasets(results)))
    return latex.write_table(table, out, "tab_effectiveness")
