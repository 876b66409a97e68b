"""Figures (matplotlib/seaborn) and LaTeX/Markdown tables from result files; `build_report` runs the
recipes shipped in repbench.recipes and assembles report.tex / report.pdf; `compare` renders
`repbench compare`."""

from repbench.report.build import build_report, discover_recipes
from repbench.report.inputs import SkipRecipe

__all__ = ["SkipRecipe", "build_report", "discover_recipes"]
