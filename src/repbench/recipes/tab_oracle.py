"""Table: per-query oracle over K vs the best fixed cell (an optimistic upper bound)."""

from pathlib import Path

from repbench.report import inputs, latex, tables

KIND, SECTION, TITLE = "table", "Oracle K", "Oracle vs fixed"
INPUTS = ("oracle",)


def run(results: Path, out: Path) -> list[Path]:
    oracle = inputs.require(inputs.load_csv_kind(results, "oracle"), "oracle", results)
    return latex.write_table(tables.oracle_table(oracle), out, "tab_oracle")
