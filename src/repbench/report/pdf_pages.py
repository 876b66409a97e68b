"""report.pdf without TeX: the sections, figures, tables, captions and environment of report.tex, laid out
with matplotlib's PdfPages (A4 portrait), so a machine without pdflatex still gets a PDF a person can open.

It reads what the recipes already wrote: each figure's PNG (figures/<stem>.png, beside the PDF that
report.tex includes) and each table's Markdown form (tables/<stem>.md, beside the .tex), so both PDFs
show the same numbers. Tables are drawn as matplotlib tables, split over pages when long.
"""

from __future__ import annotations

import io
import re
import textwrap
from pathlib import Path

from repbench.io import atomic_write_bytes
from repbench.report import style  # also selects the headless Agg backend before pyplot
from repbench.report.latex import Section

PAGE_IN = (8.27, 11.69)  # A4 portrait
LEFT, RIGHT, TOP, BOTTOM = 0.08, 0.92, 0.95, 0.05
BODY_PT = 8.5
CHARS_PER_LINE = 112  # DejaVu Sans at BODY_PT over the text width (0.84 * 8.27 in)
LINE_FRAC = 1.45 * BODY_PT / 72.0 / PAGE_IN[1]  # one body line as a fraction of the page height
ROW_FRAC = 0.0165  # one table row
TABLE_ROWS_PER_PAGE = 48
FIGURE_MAX_FRAC = 0.46  # of the page height, so two figures can share a page as in report.tex


def _wrap(text: str, width: int = CHARS_PER_LINE) -> list[str]:
    lines: list[str] = []
    for para in str(text).splitlines() or [""]:
        lines += textwrap.wrap(para, width=width) or [""]
    return lines


class _Page:
    """One A4 page filled top to bottom; `y` is the next free line, in figure fraction."""

    def __init__(self, pdf, number: int) -> None:
        import matplotlib.pyplot as plt

        self.pdf, self.plt = pdf, plt
        self.fig = plt.figure(figsize=PAGE_IN)
        self.y = TOP
        self.fig.text(0.5, 0.025, str(number), ha="center", va="center", fontsize=7, color="0.4")

    def text(self, text: str, size: float = BODY_PT, weight: str = "normal", gap: float = 0.35,
             width: int = CHARS_PER_LINE, boxed: bool = False) -> None:
        scale = size / BODY_PT
        lines = _wrap(text, int(width / scale))
        box = {"boxstyle": "square,pad=0.6", "facecolor": "#fff3cd", "edgecolor": "#b00000", "linewidth": 1.2}
        self.fig.text(LEFT, self.y, "\n".join(lines), ha="left", va="top", fontsize=size, weight=weight,
                      linespacing=1.3, bbox=box if boxed else None)
        self.y -= LINE_FRAC * scale * (len(lines) + gap)

    def room(self) -> float:
        return self.y - BOTTOM

    def close(self) -> None:
        self.pdf.savefig(self.fig)
        self.plt.close(self.fig)


def _lines_needed(text: str, size: float = BODY_PT) -> float:
    scale = size / BODY_PT
    return LINE_FRAC * scale * (len(_wrap(text, int(CHARS_PER_LINE / scale))) + 0.35)


def read_markdown_table(path: Path) -> tuple[list[str], list[list[str]], str, str]:
    """(header, rows, caption, alignment letters) of a table written by latex.to_markdown; `**x**` cells
    stay marked bold."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    table = [ln for ln in lines if ln.startswith("|")]
    caption = " ".join(ln for ln in lines if ln.strip() and not ln.startswith("|")).strip()

    def cells(line: str) -> list[str]:
        parts = re.split(r"(?<!\\)\|", line.strip()[1:-1])
        return [p.strip().replace(r"\|", "|").replace("\\\\", "\\") for p in parts]

    if len(table) < 2:
        return [], [], caption, ""
    align = "".join("l" if a.startswith(":") and not a.endswith(":") else "r" for a in cells(table[1]))
    return cells(table[0]), [cells(ln) for ln in table[2:]], caption, align


def _draw_table(page: _Page, header: list[str], rows: list[list[str]], align: str) -> None:
    height = ROW_FRAC * (len(rows) + 1)
    ax = page.fig.add_axes((LEFT, page.y - height, RIGHT - LEFT, height))
    ax.axis("off")
    page.y -= height + LINE_FRAC
    bold = [[c.startswith("**") and "**" in c[2:] for c in row] for row in rows]
    text = [[c.replace("**", "") for c in row] for row in rows] or None
    size = 7.0
    tab = ax.table(cellText=text, colLabels=header, loc="upper left", cellLoc="right", colLoc="right")
    tab.auto_set_font_size(False)
    tab.set_fontsize(size)
    tab.auto_set_column_width(list(range(len(header))))
    for (r, c), cell in tab.get_celld().items():
        cell.set_linewidth(0.5)
        cell.visible_edges = "B" if r == 0 else "open"
        cell.set_height(1.0 / (len(rows) + 1))
        loc = "left" if align[c:c + 1] == "l" else "right"
        cell._loc = loc  # matplotlib.table.Cell has no public setter for a cell's alignment
        cell.get_text().set_horizontalalignment(loc)
        if r == 0 or bold[r - 1][c]:
            cell.get_text().set_weight("bold")
    # Shrink the font until the widest table fits the text width (auto column widths follow the font;
    # Table.get_window_extent lays the cells out, so no full-page draw is needed to measure).
    renderer = page.fig.canvas.get_renderer()
    for _ in range(6):
        width = tab.get_window_extent(renderer).width / page.fig.bbox.width
        if width <= (RIGHT - LEFT) * 1.001 or size <= 3.5:
            break
        size = max(3.5, size * (RIGHT - LEFT) / width * 0.98)
        tab.set_fontsize(size)
        tab.auto_set_column_width(list(range(len(header))))


def _figure_size(png: Path) -> tuple[float, float]:
    """Width and height (page fractions) of a figure at its own size (the PNG's dpi), capped to the text."""
    from PIL import Image

    with Image.open(png) as im:
        w_px, h_px = im.size
        dpi = float((im.info.get("dpi") or (style.PNG_DPI,))[0]) or style.PNG_DPI
    width = min(w_px / dpi / PAGE_IN[0], RIGHT - LEFT)
    height = width * (h_px / w_px) * (PAGE_IN[0] / PAGE_IN[1])
    if height > FIGURE_MAX_FRAC:
        width, height = width * FIGURE_MAX_FRAC / height, FIGURE_MAX_FRAC
    return width, height


def _figure(page: _Page, png: Path, label: str, caption: str, size: tuple[float, float]) -> None:
    import matplotlib.image as mpimg

    width, height = size
    ax = page.fig.add_axes((0.5 - width / 2, page.y - height, width, height))
    ax.imshow(mpimg.imread(png), interpolation="none")  # "none": the PNG's own pixels go in, not a resampling
    ax.axis("off")
    page.y -= height + 0.012
    page.text(f"{label}: {caption}", gap=1.2)


def render_pdf(path: Path, title: str, intro: list[str], sections: list[Section], skipped: list[str],
               environment: list[str], base: Path | None = None, banner: str | None = None) -> tuple[Path, int]:
    """Write the report to `path` (atomically); returns (path, page count).

    Section figure and table paths are relative to `base` (default: the PDF's directory), as in report.tex.
    Each section starts a page (report.tex's clearpage); figures and tables flow, a new page when the next
    one does not fit.
    """
    from matplotlib.backends.backend_pdf import PdfPages

    path = Path(path)
    base = Path(base) if base is not None else path.parent
    buf = io.BytesIO()
    pages = 0
    fig_no = tab_no = 0
    with PdfPages(buf, metadata={"Title": title, "Creator": "repbench (matplotlib fallback, no pdflatex)"}) as pdf:
        def new_page() -> _Page:
            nonlocal pages
            pages += 1
            return _Page(pdf, pages)

        def fitting(page: _Page, need: float) -> _Page:
            if need <= page.room() or page.y >= TOP - 2 * LINE_FRAC:
                return page
            page.close()
            return new_page()

        page = new_page()
        page.text(title, size=16, weight="bold", gap=0.8)
        if banner:  # what the numbers are and are not, first on page 1
            page.text(banner, size=9.5, weight="bold", gap=2.0, width=CHARS_PER_LINE - 8, boxed=True)
        for para in intro:
            page.text(para, gap=0.8)
        page.text("Typeset without pdflatex: figures are the recipes' PNGs, tables their Markdown form; "
                  "install texlive-latex-base texlive-latex-recommended for the LaTeX version of the same report.",
                  size=7.5, gap=1.0)
        if environment:
            page.text("Environment", size=11, weight="bold")
            for line in environment:
                page.text("- " + line, size=7.5, gap=0.3)
            page.y -= LINE_FRAC
        page.text("Contents", size=11, weight="bold")
        for i, sec in enumerate(sections, start=1):
            page.text(f"{i}  {sec.title}: {len(sec.figures)} figure(s), {len(sec.tables)} table(s)", gap=0.2)
        if skipped:
            page.y -= LINE_FRAC
            page.text("Skipped", size=11, weight="bold")
            for s in skipped:
                page.text("- " + s, size=7.5, gap=0.3)
        page.close()
        for i, sec in enumerate(sections, start=1):
            page = new_page()
            page.text(f"{i}  {sec.title}", size=12, weight="bold", gap=0.6)
            for note in sec.notes:
                page.text(note)
            for rel, caption in sec.figures:
                fig_no += 1
                png = (base / rel).with_suffix(".png")
                size = _figure_size(png)
                label = f"Figure {fig_no}"
                page = fitting(page, size[1] + 0.012 + _lines_needed(f"{label}: {caption}"))
                _figure(page, png, label, caption, size)
            for rel in sec.tables:
                tab_no += 1
                header, rows, caption, align = read_markdown_table((base / rel).with_suffix(".md"))
                chunks = [rows[j:j + TABLE_ROWS_PER_PAGE] for j in range(0, len(rows), TABLE_ROWS_PER_PAGE)] or [[]]
                for j, chunk in enumerate(chunks):
                    label = f"Table {tab_no}" + (" (continued)" if j else "")
                    need = _lines_needed(f"{label}: {caption}") + ROW_FRAC * (len(chunk) + 1)
                    page = fitting(page, need)
                    page.text(f"{label}: {caption}", gap=0.5)
                    if header:
                        _draw_table(page, header, chunk, align)
            page.close()
    return atomic_write_bytes(path, buf.getvalue()), pages
