"""Figure: optimal K_q per query against query difficulty."""

from pathlib import Path

from repbench.report import adaptive, inputs, provenance, style

KIND, SECTION, TITLE = "figure", "Oracle K", "Optimal K vs query difficulty"
INPUTS = ("oracle_k",)


def run(results: Path, out: Path) -> list[Path]:
    table = inputs.require(inputs.load_csv_kind(results, "oracle_k"), "oracle_k", results)
    fig, caption = adaptive.optimal_k_scatter(table, provenance.synthetic_datasets(results))
    return style.save_figure(fig, out, "fig_oracle_k_difficulty", caption)
