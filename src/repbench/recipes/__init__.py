"""The report's recipes, one module per paper figure or table, shipped inside the package so that
`repbench report` works from any install. Each defines `run(results, out) -> list[Path]`, `INPUTS`,
`KIND`, `TITLE` and `SECTION` (see repbench.report.build); `paper/` holds the paper's reported numbers."""
