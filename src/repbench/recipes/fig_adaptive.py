"""Figure: cross-validated adaptive K per query vs the best fixed cell and the oracle."""

from pathlib import Path

from repbench.report import adaptive, inputs, provenance, style

KIND, SECTION, TITLE = "figure", "Oracle K", "Adaptive K per query (cross-validated)"
INPUTS = ("adaptive",)


def run(results: Path, out: Path) -> list[Path]:
    table = inputs.require(inputs.load_csv_kind(results, "adaptive"), "adaptive", results)
    fig, caption = adaptive.adaptive_figure(table, provenance.synthetic_datasets(results))
    return style.save_figure(fig, out, "fig_adaptive", caption)
