"""Figure: encoding latency vs input length, single (K=1) vs multi, plus the paper's H100 readings."""

from pathlib import Path

from repbench.report import figures, inputs, style

KIND, SECTION, TITLE = "figure", "Latency", "Encoding latency vs input length"
INPUTS = ("bench",)  # paper: repbench/recipes/paper/encoding_latency_vs_length.csv (optional)


def run(results: Path, out: Path) -> list[Path]:
    bench = inputs.require(inputs.bench_table(results), "bench", results)
    paper = inputs.load_paper(results, "encoding_latency_vs_length")
    fig, caption = figures.latency_vs_length(inputs.encode_cells(bench), paper)
    return style.save_figure(fig, out, "fig_latency_vs_length", caption)
