"""Figure: peak memory and energy per query (where measured) vs K."""

from pathlib import Path

from repbench.report import figures, inputs, style

KIND, SECTION, TITLE = "figure", "Memory and energy", "Memory and energy vs K"
INPUTS = ("bench",)


def run(results: Path, out: Path) -> list[Path]:
    bench = inputs.require(inputs.bench_table(results), "bench", results)
    fig, caption = figures.memory_energy_vs_k(inputs.encode_cells(bench))
    return style.save_figure(fig, out, "fig_memory_energy", caption)
