"""report.pdf: compiled by pdflatex where it exists (mandatory when CI=true), else laid out by matplotlib;
either way its pages hold every figure and page 1 is not blank."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest
import report_fixtures as fx
from matplotlib import image as mpimg

from repbench.report import build_report, latex

TOOLS = ("pdflatex", "pdftoppm")
MISSING = [t for t in TOOLS if shutil.which(t) is None]


@pytest.fixture
def need_tools():
    if MISSING:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {', '.join(MISSING)} missing (.ci/run installs texlive and poppler-utils)")
        pytest.skip(f"{', '.join(MISSING)} not installed (texlive-latex-base/recommended, poppler-utils)")


def test_report_pdf_compiles_and_page_one_is_not_blank(need_tools, built_report, tmp_path):
    # The session's report (every recipe on the full fixture) compiled by pdflatex from a copy of its sources.
    out = tmp_path / "report"
    shutil.copytree(built_report.out, out, ignore=shutil.ignore_patterns("report.pdf"))
    summary = built_report.summary
    assert not summary["failed"] and not summary["skipped"]
    pdf = latex.compile_pdf(out / "report.tex")
    assert pdf == out / "report.pdf" and pdf.read_bytes().startswith(b"%PDF")
    assert not list(out.glob("*.aux")) and not list(out.glob("*.log"))  # compiled in a temp dir
    tex = (out / "report.tex").read_text()
    for name, paths in summary["produced"].items():
        for p in paths:
            if p.endswith(".pdf"):
                assert f"figures/{Path(p).name}" in tex, name
            if p.endswith(".tex"):
                assert f"tables/{Path(p).name}" in tex, name
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")],
                   check=True, capture_output=True)
    page = mpimg.imread(next(tmp_path.glob("page*.png")))
    gray = page[..., :3].mean(axis=2)
    assert gray.std() > 0.05  # text and a figure, not an empty page
    assert (gray < 0.95).mean() > 0.01  # a measurable share of the page is ink, not paper


def test_a_dataset_name_full_of_latex_specials_still_compiles(need_tools, tmp_path):
    results = tmp_path / "results"
    fx.effectiveness(results, datasets=("my_set#1 & 50% {x}",), n_queries=4)
    summary = build_report(results, tmp_path / "report")  # pdflatex exists here, so build_report picks it
    assert not summary["failed"] and summary["pdf_engine"] == "pdflatex"
    assert Path(summary["pdf"]).read_bytes().startswith(b"%PDF")
    assert "my\\_set\\#1 \\& 50\\% \\{x\\}" in (tmp_path / "report" / "tables" / "tab_effectiveness.tex").read_text()


def _pdf_objects(pdf: bytes) -> dict[int, bytes]:
    """Object number -> body (dictionary and raw stream) of an uncompressed-xref PDF such as matplotlib's."""
    return {int(m.group(1)): m.group(2) for m in re.finditer(rb"(\d+) 0 obj\s*(.*?)\s*endobj", pdf, re.S)}


def _stream(body: bytes) -> bytes:
    # The data starts after the one end-of-line that follows `stream`; its own last byte may be \n or \r, so the
    # end is where the compressed stream says it ends (stripping line ends there truncated some pages' data).
    start = body.index(b"stream") + 6
    start += 2 if body[start:start + 2] == b"\r\n" else 1
    raw = body[start:body.rindex(b"endstream")]
    if b"/FlateDecode" not in body[:body.index(b"stream")]:
        return raw.removesuffix(b"\n").removesuffix(b"\r")
    inflate = zlib.decompressobj()
    data = inflate.decompress(raw)
    assert inflate.eof, "a page's content stream ends before its compressed data does"
    return data


def _render_page(pdftoppm: str, pdf: Path, page: int, prefix: Path):
    subprocess.run([pdftoppm, "-png", "-r", "40", "-f", str(page), "-l", str(page), str(pdf), str(prefix)],
                   check=True, capture_output=True)
    image = mpimg.imread(next(prefix.parent.glob(f"{prefix.name}*.png")))
    return image[..., :3].mean(axis=2)


def test_without_pdflatex_the_pdf_is_laid_out_by_matplotlib(built_report, tmp_path):
    # built_report ran `repbench report` with PATH empty (no pdflatex), so build_report laid the PDF out itself.
    pdftoppm = shutil.which("pdftoppm")
    summary, out = built_report.summary, built_report.out
    assert not summary["failed"] and not summary["skipped"], (summary["failed"], summary["skipped"])
    pdf = out / "report.pdf"
    assert summary["pdf"] == str(pdf) and summary["pdf_engine"] == "matplotlib"
    assert "pdflatex not found" in summary["pdf_message"] and (out / "report.tex").is_file()
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and data.rstrip().endswith(b"%%EOF")
    objects = _pdf_objects(data)
    pages = [body for body in objects.values() if re.match(rb"<<\s*/Type\s*/Page\b(?!s)", body)]
    assert len(pages) == summary["pdf_pages"]
    # Every figure's PNG is embedded once, at its own pixel size (not a downsampled copy).
    figures = sorted(Path(p) for paths in summary["produced"].values() for p in paths if p.endswith(".png"))
    # the fixture feeds every recipe, so each figure recipe draws exactly one PNG
    recipes = Path(__file__).resolve().parents[1] / "src" / "repbench" / "recipes"
    assert len(figures) == len(list(recipes.glob("fig_*.py"))) >= 7
    images = sorted((int(w), int(h)) for w, h in re.findall(
        rb"/Subtype /Image /Width (\d+) /Height (\d+)", data))
    assert images == sorted(mpimg.imread(f).shape[1::-1] for f in figures)
    # A title page, one page per section, and no section page without content: at most one page per item.
    n_tables = sum(p.endswith(".md") for paths in summary["produced"].values() for p in paths)
    assert 1 + 4 <= len(pages) <= 1 + len(figures) + n_tables
    first = _stream(objects[int(re.search(rb"/Contents (\d+) 0 R", pages[0]).group(1))])
    assert first.count(b" Tj") + first.count(b" TJ") >= 10  # title, intro, environment, contents
    if pdftoppm:
        for page in (1, 2):
            gray = _render_page(pdftoppm, pdf, page, tmp_path / f"p{page}")
            assert gray.std() > 0.05 and (gray < 0.95).mean() > 0.01


def test_no_pdf_requested_writes_tex_only(tmp_path):
    results = tmp_path / "results"
    fx.effectiveness(results, n_queries=3)
    summary = build_report(results, tmp_path / "report", compile_pdf=False)
    assert summary["pdf"] is None and summary["pdf_engine"] is None
    assert not (tmp_path / "report" / "report.pdf").exists() and (tmp_path / "report" / "report.tex").is_file()
