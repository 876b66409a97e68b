"""LaTeX (booktabs) and Markdown rendering of report tables, the report document, and its compilation.

Every string that comes from data goes through `escape`; LaTeX markup is only ever produced here, from
the `Cell`/`Raw` structure, never by concatenating user strings into templates elsewhere.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from repbench.errors import RepbenchError
from repbench.io import atomic_write_bytes, atomic_write_text

_LINE_BREAKS = re.compile(r"\r\n|[\r\n\v\f\x85\u2028\u2029]")
_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
    "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
    ">": r"\textgreater{}", "|": r"\textbar{}", '"': "''",
}
# Non-ASCII characters that appear in names and captions; anything else is transliterated to ASCII so
# pdflatex (without extra fonts) always compiles.
_UNICODE = {
    "≈": r"$\approx$", "–": "--", "—": "---", "×": r"$\times$", "±": r"$\pm$", "§": r"\S{}",
    "µ": r"$\mu$", "≤": r"$\leq$", "≥": r"$\geq$", "→": r"$\rightarrow$", "†": r"$^{\dagger}$",
    "‡": r"$^{\ddagger}$", "·": r"$\cdot$", "’": "'", "‘": "`", "“": "``", "”": "''",
}


def md_cell(text: object) -> str:
    """Text safe inside one Markdown table cell: a `|` escaped (it would split the cell), a backslash
    doubled (so a name ending in one cannot escape the next `|`), each line break a space (one breaks
    the row)."""
    return _LINE_BREAKS.sub(" ", str(text).replace("\\", "\\\\").replace("|", r"\|"))


def md_text(text: object) -> str:
    """A Markdown line (caption, note) with its line breaks as spaces, so a name cannot end the line."""
    return _LINE_BREAKS.sub(" ", str(text))


def escape(text: object) -> str:
    """`text` as LaTeX: specials escaped, non-ASCII transliterated, line breaks as spaces (a blank line
    inside a tabular or caption is a paragraph break, which LaTeX refuses there)."""
    out = []
    for ch in _LINE_BREAKS.sub(" ", str(text)):
        if ch in _SPECIAL:
            out.append(_SPECIAL[ch])
        elif ch in _UNICODE:
            out.append(_UNICODE[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:
            out.append(unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode("ascii") or "?")
    return "".join(out)


@dataclass(frozen=True)
class Raw:
    """A fragment with its own LaTeX and Markdown forms (e.g. a significance mark or math)."""

    latex: str
    markdown: str


@dataclass
class Cell:
    text: str
    bold: bool = False
    marks: tuple[Raw, ...] = ()


Fragment = str | Raw


def _frag_tex(parts: list[Fragment] | Fragment) -> str:
    parts = parts if isinstance(parts, list) else [parts]
    return "".join(p.latex if isinstance(p, Raw) else escape(p) for p in parts)


def _frag_md(parts: list[Fragment] | Fragment, cell: bool = True) -> str:
    """Markdown of fragments: escaped for a table cell (`cell`), else (a caption) only kept on its line."""
    parts = parts if isinstance(parts, list) else [parts]
    plain = md_cell if cell else md_text
    return "".join(p.markdown if isinstance(p, Raw) else plain(p) for p in parts)


@dataclass
class Table:
    columns: list[Fragment]
    rows: list[list[Cell]]
    caption: list[Fragment]
    label: str
    align: str = ""  # one letter per column; default: first column left, others right
    rule_before: set[int] = field(default_factory=set)  # row indices preceded by a \midrule
    small: bool = False

    def alignment(self) -> str:
        return self.align or "l" + "r" * (len(self.columns) - 1)


def _cell_tex(cell: Cell) -> str:
    body = escape(cell.text)
    if cell.bold:
        body = rf"\textbf{{{body}}}"
    return body + "".join(m.latex for m in cell.marks)


def _cell_md(cell: Cell) -> str:
    body = md_cell(cell.text)
    if cell.bold:
        body = f"**{body}**"
    return body + "".join(m.markdown for m in cell.marks)


def to_latex(table: Table) -> str:
    lines = [r"\begin{table}[htbp]", r"\centering"]
    if table.small or len(table.columns) > 7 or len(table.rows) > 25:
        lines.append(r"\footnotesize")
    lines += [rf"\caption{{{_frag_tex(table.caption)}}}", rf"\label{{{table.label}}}",
              r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%",
              rf"\begin{{tabular}}{{{table.alignment()}}}", r"\toprule",
              " & ".join(_frag_tex(c) for c in table.columns) + r" \\", r"\midrule"]
    for i, row in enumerate(table.rows):
        if i in table.rule_before and i > 0:
            lines.append(r"\midrule")
        lines.append(" & ".join(_cell_tex(c) for c in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}}", r"\end{table}", ""]
    return "\n".join(lines)


def to_markdown(table: Table) -> str:
    header = "| " + " | ".join(_frag_md(c) for c in table.columns) + " |"
    align = "|" + "|".join(":---" if a == "l" else "---:" for a in table.alignment()) + "|"
    body = ["| " + " | ".join(_cell_md(c) for c in row) + " |" for row in table.rows]
    return "\n".join([header, align, *body, "", _frag_md(table.caption, cell=False), ""])


def write_table(table: Table, out: Path, stem: str) -> list[Path]:
    tables = Path(out) / "tables"
    return [atomic_write_text(tables / f"{stem}.tex", to_latex(table)),
            atomic_write_text(tables / f"{stem}.md", to_markdown(table))]


PREAMBLE = r"""\documentclass[10pt]{article}
\usepackage[margin=2cm]{geometry}
\usepackage{graphicx}
\usepackage{booktabs}
\usepackage[font=small,labelfont=bf]{caption}
\usepackage[hidelinks]{hyperref}
\setlength{\parindent}{0pt}
"""


@dataclass
class Section:
    title: str
    figures: list[tuple[str, str]] = field(default_factory=list)  # (relative pdf path, caption)
    tables: list[str] = field(default_factory=list)  # relative .tex paths
    notes: list[str] = field(default_factory=list)


def document(title: str, intro: list[str], sections: list[Section], skipped: list[str],
             environment: list[str] = (), banner: str | None = None) -> str:
    lines = [PREAMBLE, rf"\title{{{escape(title)}}}", r"\date{}", r"\begin{document}", r"\maketitle"]
    if banner:  # what the numbers are and are not, before anything else on page 1
        lines.append(rf"\noindent\fbox{{\parbox{{\dimexpr\linewidth-2\fboxsep-2\fboxrule}}{{\textbf{{{escape(banner)}}}}}}}" + "\n")
    lines += [escape(p) + "\n" for p in intro]
    for sec in sections:
        lines.append(rf"\section{{{escape(sec.title)}}}")
        lines += [escape(n) + "\n" for n in sec.notes]
        for rel, caption in sec.figures:
            lines += [r"\begin{figure}[htbp]", r"\centering",
                      rf"\includegraphics[width=\linewidth,height=0.42\textheight,keepaspectratio]{{{rel}}}",
                      rf"\caption{{{escape(caption)}}}", r"\end{figure}"]
        for rel in sec.tables:
            lines.append(rf"\input{{{rel}}}")
        lines.append(r"\clearpage")
    if environment:
        lines += [r"\section*{Environment}", r"\begin{itemize}\small"]
        lines += [rf"\item {escape(e)}" for e in environment]
        lines.append(r"\end{itemize}")
    if skipped:
        lines += [r"\section*{Skipped}", r"\begin{itemize}"]
        lines += [rf"\item {escape(s)}" for s in skipped]
        lines.append(r"\end{itemize}")
    lines += [r"\end{document}", ""]
    return "\n".join(lines)


def pdflatex_available() -> bool:
    return shutil.which("pdflatex") is not None


def compile_pdf(tex: Path, timeout_s: int = 180) -> Path:
    """Compile `tex` (with the figures/ and tables/ next to it) to a PDF beside it.

    Runs pdflatex twice (references) in a temporary copy, so a failed run leaves neither aux clutter nor
    a half-written PDF in the output directory. Raises RepbenchError with the log's tail on failure.
    """
    tex = Path(tex).resolve()
    exe = shutil.which("pdflatex")
    if exe is None:
        raise RepbenchError("pdflatex is not installed (Debian: texlive-latex-base texlive-latex-recommended)")
    with tempfile.TemporaryDirectory(prefix="repbench-tex-") as tmp:
        work = Path(tmp)
        shutil.copy2(tex, work / tex.name)
        for sub in ("figures", "tables"):
            if (tex.parent / sub).is_dir():
                shutil.copytree(tex.parent / sub, work / sub)
        for _ in range(2):
            try:
                proc = subprocess.run(
                    [exe, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", tex.name],
                    cwd=work, capture_output=True, text=True, timeout=timeout_s, errors="replace",
                )
            except subprocess.TimeoutExpired:
                raise RepbenchError(f"pdflatex timed out after {timeout_s} s on {tex}") from None
            if proc.returncode != 0:
                tail = "\n".join(proc.stdout.splitlines()[-25:])
                raise RepbenchError(f"pdflatex failed on {tex} (exit {proc.returncode}):\n{tail}")
        pdf = work / tex.with_suffix(".pdf").name
        return atomic_write_bytes(tex.with_suffix(".pdf"), pdf.read_bytes())
