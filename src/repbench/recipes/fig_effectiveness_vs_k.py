"""Figure: effectiveness vs K_q and K_p per score mode, both families, with CIs (and external runs)."""

from pathlib import Path

from repbench.report import external, inputs, k_axis, provenance, style

KIND, SECTION, TITLE = "figure", "Effectiveness", "Effectiveness vs K"
INPUTS = ("per_query",)  # optional: external runs (repbench report --run NAME=RUN)


def run(results: Path, out: Path) -> list[Path]:
    per_query = inputs.require(inputs.sweep_per_query(results), "per_query", results)
    fig, caption = k_axis.effectiveness_vs_k(per_query, external.load_external(out),
                                             provenance.synthetic_datasets(results))
    return style.save_figure(fig, out, "fig_effectiveness_vs_k", caption)
