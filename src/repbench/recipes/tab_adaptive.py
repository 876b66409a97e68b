"""Table: cross-validated adaptive K per query vs the best fixed cell and the oracle."""

from pathlib import Path

from repbench.report import adaptive, inputs, latex, provenance

KIND, SECTION, TITLE = "table", "Oracle K", "Adaptive K per query"
INPUTS = ("adaptive",)


def run(results: Path, out: Path) -> list[Path]:
    table = inputs.require(inputs.load_csv_kind(results, "adaptive"), "adaptive", results)
    return latex.write_table(adaptive.adaptive_table(table, provenance.synthetic_datasets(results)), out, "tab_adaptive")
