"""The matplotlib layout of report.pdf: Markdown tables are read back faithfully, and a table wider than
the page is shrunk until it fits the text width."""

from __future__ import annotations

import io

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.table import Table

from repbench.report import pdf_pages
from repbench.report.latex import Cell, Raw, to_markdown
from repbench.report.latex import Table as ReportTable


def test_markdown_table_round_trip(tmp_path):
    table = ReportTable(columns=["system", Raw("$K_q$", "K_q"), "mean"],
                        rows=[[Cell("x|y"), Cell("1"), Cell("0.500", bold=True, marks=(Raw("$^1$", "†"),))],
                              [Cell("z"), Cell("4"), Cell("--")]],
                        caption=["Caption with | a pipe."], label="t", align="llr")
    path = tmp_path / "t.md"
    path.write_text(to_markdown(table))
    header, rows, caption, align = pdf_pages.read_markdown_table(path)
    assert header == ["system", "K_q", "mean"]
    assert rows == [["x|y", "1", "**0.500**†"], ["z", "4", "--"]]
    assert caption == "Caption with | a pipe." and align == "llr"


def test_a_wide_table_is_shrunk_to_the_text_width():
    header = ["system"] + [f"dataset{i}" for i in range(11)]  # ~200 characters a row: too wide at 7 pt
    rows = [["tiny-diffusion/parallel/q4p4/fusion"] + [f"0.{j}{i:02d} [0.1, 0.9]" for i in range(11)]
            for j in range(5)]
    with PdfPages(io.BytesIO()) as pdf:
        page = pdf_pages._Page(pdf, 1)
        pdf_pages._draw_table(page, header, rows, "l" + "r" * 11)
        (tab,) = [c for ax in page.fig.axes for c in ax.get_children() if isinstance(c, Table)]
        renderer = page.fig.canvas.get_renderer()
        width = tab.get_window_extent(renderer).width / page.fig.bbox.width
        assert width <= (pdf_pages.RIGHT - pdf_pages.LEFT) * 1.01
        sizes = {cell.get_text().get_fontsize() for cell in tab.get_celld().values()}
        assert max(sizes) < 7.0  # it had to shrink from the 7 pt default
        page.close()
