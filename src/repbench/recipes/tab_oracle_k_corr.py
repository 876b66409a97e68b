"""Table: Spearman correlation of the optimal K_q with query difficulty and length, with bootstrap CIs."""

from pathlib import Path

from repbench.report import adaptive, inputs, latex, provenance

KIND, SECTION, TITLE = "table", "Oracle K", "Optimal K vs difficulty and length"
INPUTS = ("oracle_k_corr",)


def run(results: Path, out: Path) -> list[Path]:
    table = inputs.require(inputs.load_csv_kind(results, "oracle_k_corr"), "oracle_k_corr", results)
    return latex.write_table(adaptive.correlation_table(table, provenance.synthetic_datasets(results)), out, "tab_oracle_k_corr")
