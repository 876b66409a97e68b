"""Figure: heatmap of the (K_q, K_p) cells the per-query oracle picks."""

from pathlib import Path

from repbench.report import figures_oracle, inputs, style

KIND, SECTION, TITLE = "figure", "Oracle K", "Cells picked by the oracle"
INPUTS = ("oracle_cells",)


def run(results: Path, out: Path) -> list[Path]:
    cells = inputs.require(inputs.load_csv_kind(results, "oracle_cells"), "oracle_cells", results)
    fig, caption = figures_oracle.oracle_heatmap(cells)
    return style.save_figure(fig, out, "fig_oracle_cells", caption)
