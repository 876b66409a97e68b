"""Figure (the paper's teaser): nDCG@10 vs encoding + search ms/query, single and multi linked."""

from pathlib import Path

from repbench.report import figures, inputs, style
from repbench.report.tables import pick_measure

KIND, SECTION, TITLE = "figure", "Effectiveness", "Effectiveness vs latency"
INPUTS = ("effectiveness", "bench")  # paper: repbench/recipes/paper/teaser_beir7.csv (optional)


def run(results: Path, out: Path) -> list[Path]:
    means = inputs.require(inputs.effectiveness_means(results), "effectiveness", results)
    bench = inputs.require(inputs.bench_table(results), "bench", results)
    measure = pick_measure(means["measure"])
    search = inputs.search_cells(bench)
    points, how = figures.teaser_points(means, inputs.encode_cells(bench), search if len(search) else None, measure)
    paper = inputs.load_paper(results, "teaser_beir7")
    fig, caption = figures.teaser(points, how, measure, inputs.device_labels(bench), paper)
    return style.save_figure(fig, out, "fig_effectiveness_vs_latency", caption)
