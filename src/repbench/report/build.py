"""Run every recipe over a results directory and assemble report/report.tex (+ PDF).

The recipes ship inside the package (`repbench.recipes`, found with importlib.resources, so a
non-editable install has them); `--recipes DIR` or $REPBENCH_RECIPES runs a directory of them instead.
A recipe is a module `<name>.py` with `run(results: Path, out: Path) -> list[Path]`, `INPUTS`
(input kinds it needs, see inputs.INPUT_DESCRIPTIONS), `KIND` ("figure" | "table"), `TITLE` and `SECTION`.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import traceback
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import ModuleType

from repbench import __version__
from repbench.errors import RepbenchError
from repbench.io import atomic_write_json, atomic_write_text
from repbench.report import latex, pdf_pages
from repbench.report.inputs import INPUT_DESCRIPTIONS, SkipRecipe, available_inputs
from repbench.report.provenance import demo_banner, environment_lines, synthetic_datasets

SECTIONS = ("Effectiveness", "Latency", "Oracle K", "Memory and energy")


@dataclass
class Recipe:
    name: str
    path: Path
    module: ModuleType

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(getattr(self.module, "INPUTS", ()))

    @property
    def kind(self) -> str:
        return getattr(self.module, "KIND", "figure")

    @property
    def title(self) -> str:
        return getattr(self.module, "TITLE", self.name)

    @property
    def section(self) -> str:
        return getattr(self.module, "SECTION", "Other")


RECIPE_PACKAGE = "repbench.recipes"


def _check(module: ModuleType, path: Path) -> None:
    if not callable(getattr(module, "run", None)):
        raise RepbenchError(f"{path}: a recipe must define run(results, out) -> list[Path]")


def _packaged_recipes() -> list[Recipe]:
    recipes = []
    names = sorted(entry.name for entry in resources.files(RECIPE_PACKAGE).iterdir()
                   if entry.name.endswith(".py") and not entry.name.startswith("_"))
    for name in names:
        module = importlib.import_module(f"{RECIPE_PACKAGE}.{name[:-3]}")
        path = Path(module.__file__ or name)
        _check(module, path)
        recipes.append(Recipe(name[:-3], path, module))
    return recipes


def discover_recipes(directory: Path | None = None) -> list[Recipe]:
    """The recipes of `directory` (or $REPBENCH_RECIPES), else the ones shipped in repbench.recipes."""
    directory = directory or os.environ.get("REPBENCH_RECIPES") or None
    if directory is None:
        return _packaged_recipes()
    directory = Path(directory)
    if not directory.is_dir():
        raise RepbenchError(f"recipe directory {directory} not found (omit --recipes / REPBENCH_RECIPES to use "
                            "the recipes shipped with repbench)")
    recipes = []
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        spec = importlib.util.spec_from_file_location(f"repbench_recipe_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _check(module, path)
        recipes.append(Recipe(path.stem, path, module))
    return recipes


def missing_inputs(recipe: Recipe, found: dict[str, list[Path]]) -> list[str]:
    return [kind for kind in recipe.inputs if not found.get(kind)]


def _external_runs(results: Path, out: Path, runs: dict[str, str] | None, qrels: Path | None,
                   dataset: str | None) -> None:
    """Evaluate `runs` into out/external/per_query.csv, or remove a previous report's table when none."""
    from repbench.report import external

    if not runs:
        (out / external.EXTERNAL_FILE).unlink(missing_ok=True)
        return
    from repbench.evaluation.metrics import DEFAULT_MEASURES
    from repbench.report.inputs import sweep_per_query

    swept = sweep_per_query(results)
    measures = list(dict.fromkeys(swept["measure"])) if swept is not None else list(DEFAULT_MEASURES)
    external.write_external(out, external.evaluate_runs(runs, results, measures, qrels, dataset))


def build_report(results: Path, out: Path, compile_pdf: bool = True, recipes: Path | None = None,
                 runs: dict[str, str] | None = None, run_qrels: Path | None = None,
                 run_dataset: str | None = None) -> dict:
    """Run every recipe, write out/report.tex (and report.md) and report.pdf: compiled by pdflatex when it
    exists, else laid out by matplotlib (pdf_pages) from the same sections, figures and tables.

    Returns {"produced": {recipe: [paths]}, "skipped": {recipe: reason}, "failed": {recipe: error},
    "tex": path, "markdown": path, "pdf": path | None, "pdf_engine": "pdflatex" | "matplotlib" | None,
    "pdf_pages": int | None (matplotlib only), "pdf_message": str}.
    """
    results, out = Path(results), Path(out)
    if not results.is_dir():
        raise RepbenchError(f"results directory {results} does not exist")
    out.mkdir(parents=True, exist_ok=True)
    _external_runs(results, out, runs, run_qrels, run_dataset)
    found = available_inputs(results)
    produced: dict[str, list[str]] = {}
    skipped: dict[str, str] = {}
    failed: dict[str, str] = {}
    sections = {name: latex.Section(name) for name in SECTIONS}
    banner = demo_banner(synthetic_datasets(results))
    md_parts: list[str] = ["# repbench report\n\n" + (f"> **{banner}**\n\n" if banner else "") + f"From `{results}`.\n"]
    all_recipes = discover_recipes(recipes)
    for recipe in all_recipes:
        missing = missing_inputs(recipe, found)
        if missing:
            skipped[recipe.name] = "no " + " and no ".join(INPUT_DESCRIPTIONS.get(m, m) for m in missing) + \
                f" under {results}"
            continue
        try:
            paths = [Path(p) for p in recipe.module.run(results, out)]
        except SkipRecipe as exc:
            skipped[recipe.name] = str(exc)
            continue
        except RepbenchError:
            raise  # malformed input: the message names the file; a report from bad data is worse than none
        except Exception as exc:  # a bug in one recipe must not hide the others' output
            failed[recipe.name] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
            continue
        produced[recipe.name] = [str(p) for p in paths]
        section = sections.setdefault(recipe.section, latex.Section(recipe.section))
        for p in paths:
            if p.suffix == ".pdf" and p.parent.name == "figures":
                cap_file = p.with_suffix(".caption.txt")
                caption = cap_file.read_text(encoding="utf-8").strip() if cap_file.is_file() else recipe.title
                section.figures.append((f"figures/{p.name}", caption))
                md_parts.append(f"## {recipe.title}\n\n![{recipe.title}](figures/{p.stem}.png)\n\n{caption}\n")
            elif p.suffix == ".tex" and p.parent.name == "tables":
                section.tables.append(f"tables/{p.name}")
            elif p.suffix == ".md" and p.parent.name == "tables":
                md_parts.append(f"## {recipe.title}\n\n{p.read_text(encoding='utf-8')}")
    notes = [f"{name}: skipped, {reason}" for name, reason in skipped.items()]
    notes += [f"{name}: failed, {err.splitlines()[0]}" for name, err in failed.items()]
    intro = [f"Generated by repbench {__version__} from {results.resolve()}. Every number and figure comes "
             "from the result files found there; rows and series marked 'paper' are the paper's reported values "
             "(the paper tables shipped in repbench/recipes/paper/*.csv, or <results>/paper/, each with its source)."]
    environment = environment_lines(results)
    shown = [s for s in sections.values() if s.figures or s.tables]
    tex = atomic_write_text(out / "report.tex", latex.document("repbench report", intro, shown, notes, environment,
                                                               banner=banner))
    markdown = atomic_write_text(out / "report.md", "\n".join(md_parts + (
        ["## Environment\n", *[f"- {line}" for line in environment], ""] if environment else []) + (
        ["## Skipped\n", *[f"- {n}" for n in notes], ""] if notes else [])))
    pdf, engine, pages, message = None, None, None, ""
    if not compile_pdf:
        message = "PDF not requested (--no-pdf)"
    elif not latex.pdflatex_available():
        pdf, pages = pdf_pages.render_pdf(out / "report.pdf", "repbench report", intro, shown, notes, environment,
                                          banner=banner)
        engine = "matplotlib"
        message = (f"pdflatex not found: {pdf} laid out with matplotlib ({pages} pages); for the LaTeX version "
                   "install texlive-latex-base texlive-latex-recommended")
    else:
        pdf, engine = latex.compile_pdf(tex), "pdflatex"
        message = f"compiled {pdf}"
    summary = {"produced": produced, "skipped": skipped, "failed": failed, "tex": str(tex),
               "markdown": str(markdown), "pdf": str(pdf) if pdf else None, "pdf_engine": engine,
               "pdf_pages": pages, "pdf_message": message, "banner": banner}
    atomic_write_json(out / "report.json", summary)
    return summary
