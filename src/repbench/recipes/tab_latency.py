"""Table: encoding latency, median [95% CI] ms/query, peak memory, energy per query."""

from pathlib import Path

from repbench.report import inputs, latex, tables

KIND, SECTION, TITLE = "table", "Latency", "Encoding latency, memory and energy"
INPUTS = ("bench",)  # paper: repbench/recipes/paper/encoding_latency_vs_length.csv (optional)


def run(results: Path, out: Path) -> list[Path]:
    bench = inputs.require(inputs.bench_table(results), "bench", results)
    if not inputs.is_encode(bench).any():
        raise inputs.SkipRecipe("the latency JSON holds no encoding cells")
    table = tables.latency_table(bench, inputs.load_paper(results, "encoding_latency_vs_length"))
    return latex.write_table(table, out, "tab_latency")
