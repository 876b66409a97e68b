"""Figure: per-query oracle vs the best fixed cell, with bootstrap 95% CIs."""

from pathlib import Path

from repbench.report import figures_oracle, inputs, style

KIND, SECTION, TITLE = "figure", "Oracle K", "Oracle vs best fixed cell"
INPUTS = ("oracle",)


def run(results: Path, out: Path) -> list[Path]:
    oracle = inputs.require(inputs.load_csv_kind(results, "oracle"), "oracle", results)
    fig, caption = figures_oracle.oracle_vs_fixed(oracle)
    return style.save_figure(fig, out, "fig_oracle_vs_fixed", caption)
