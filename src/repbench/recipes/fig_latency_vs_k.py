"""Figure: encoding latency vs K, sequential vs parallel, per backbone, with bootstrap 95% CI bands."""

from pathlib import Path

from repbench.report import figures, inputs, style

KIND, SECTION, TITLE = "figure", "Latency", "Encoding latency vs K"
INPUTS = ("bench",)


def run(results: Path, out: Path) -> list[Path]:
    bench = inputs.require(inputs.bench_table(results), "bench", results)
    fig, caption = figures.latency_vs_k(inputs.encode_cells(bench))
    return style.save_figure(fig, out, "fig_latency_vs_k", caption)
