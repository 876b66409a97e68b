"""Figure: measured encoding latency vs its roofline floor, against K, one panel per backbone (both families)."""

from pathlib import Path

from repbench.report import figures_roofline, inputs, style

KIND, SECTION, TITLE = "figure", "Latency", "Measured latency vs the hardware floor"
INPUTS = ("bench",)


def run(results: Path, out: Path) -> list[Path]:
    bench = inputs.require(inputs.bench_table(results), "bench", results)
    fig, caption = figures_roofline.measured_vs_floor(inputs.encode_cells(bench))
    return style.save_figure(fig, out, "fig_roofline", caption)
