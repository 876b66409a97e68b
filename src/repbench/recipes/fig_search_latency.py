"""Figure: search latency vs index size (log-log) per score mode / K_p, plus the paper's readings."""

from pathlib import Path

from repbench.report import figures, inputs, style

KIND, SECTION, TITLE = "figure", "Latency", "Search latency vs index size"
INPUTS = ("bench",)  # paper: repbench/recipes/paper/search_latency_vs_index_size.csv (optional)


def run(results: Path, out: Path) -> list[Path]:
    bench = inputs.require(inputs.bench_table(results), "bench", results)
    paper = inputs.load_paper(results, "search_latency_vs_index_size")
    fig, caption = figures.search_latency(inputs.search_cells(bench), paper)
    return style.save_figure(fig, out, "fig_search_latency", caption)
