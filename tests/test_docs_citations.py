"""The specs live in docs/, and every citation of them points at a section or rule that exists.

A clone must be readable on its own: no text file in the package cites a document outside the
repository, and a comment saying `docs/method.md §3.6` or `docs/methodology.md rule 5` names a heading
or rule those pages really have.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# Documents that exist only outside the checkout, and the path that led to them.
FORBIDDEN_IN_SRC = ("method-spec", "shared/reference", "native-backbones", "DESIGN.md", "../shared")

# The numbering the pages must keep (the upstream specification's, which the comments were written
# against): written out here rather than read from the pages, so a renumbered page fails.
METHOD_SECTIONS = (
    "0 1 2 3 3.1 3.2 3.3 3.4 3.5 3.6 3.7 3.8 3.9 3.10 4 4.1 4.2 4.3 5 5.1 5.2 "
    "6 6.1 6.2 6.3 6.4 6.5 6.6 7 7.1 7.2 7.3 8 9 10 11 11.1 11.2 11.3 11.4 11.5 12 13 14"
).split()
METHODOLOGY_RULES = [str(n) for n in range(1, 17)]
BACKBONE_SECTIONS_CITED = ["2.2", "5.3"]  # what src/repbench/backbones relies on

_NUM = r"\d+(?:\.\d+)?"
_SECTION_CITE = re.compile(rf"docs/(method|backbones)\.md §({_NUM})(?:\s*-\s*§?({_NUM}))?")
_RULE_CITE = re.compile(r"docs/methodology\.md rules? (\d+(?:\s*(?:-|,|and)\s*\d+)*)")


def _text_files(base: Path) -> list[Path]:
    out = []
    for path in sorted(base.rglob("*")):
        # build output (pip's egg-info copies the README) is not the project's source
        if not path.is_file() or "__pycache__" in path.parts or any(p.endswith(".egg-info") for p in path.parts):
            continue
        data = path.read_bytes()
        if b"\0" in data:
            continue
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        out.append(path)
    return out


def _headings(page: Path) -> list[str]:
    return re.findall(rf"^#{{2,3}}\s+({_NUM})[.\s]", page.read_text(encoding="utf-8"), re.M)


def _rules(page: Path) -> list[str]:
    return re.findall(r"^(\d+)\.\s+\*\*", page.read_text(encoding="utf-8"), re.M)


def _expand(numbers: str) -> list[str]:
    out: list[str] = []
    for part in re.split(r"\s*(?:,|and)\s*", numbers):
        lo, _, hi = part.partition("-")
        out += [str(n) for n in range(int(lo), int(hi or lo) + 1)]
    return out


def dangling_citations(text: str, known: dict[str, set[str]]) -> list[str]:
    """Citations in `text` naming a section or rule that `known` (page -> numbers) does not have."""
    bad = []
    for m in _SECTION_CITE.finditer(text):
        page = m.group(1)
        bad += [f"docs/{page}.md §{n}" for n in (m.group(2), m.group(3)) if n and n not in known[page]]
    for m in _RULE_CITE.finditer(text):
        bad += [f"docs/methodology.md rule {n}" for n in _expand(m.group(1)) if n not in known["methodology"]]
    return bad


def _known() -> dict[str, set[str]]:
    return {"method": set(_headings(DOCS / "method.md")), "backbones": set(_headings(DOCS / "backbones.md")),
            "methodology": set(_rules(DOCS / "methodology.md"))}


def test_no_package_file_cites_a_document_outside_the_repository() -> None:
    hits = []
    for path in _text_files(ROOT / "src"):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            hits += [f"{path.relative_to(ROOT)}:{lineno}: {word}" for word in FORBIDDEN_IN_SRC if word in line]
    assert not hits, "\n".join(hits)


def test_pages_keep_the_cited_numbering() -> None:
    assert _headings(DOCS / "method.md") == METHOD_SECTIONS
    assert _rules(DOCS / "methodology.md") == METHODOLOGY_RULES
    assert set(BACKBONE_SECTIONS_CITED) <= set(_headings(DOCS / "backbones.md"))


def test_every_citation_names_an_existing_section_or_rule() -> None:
    known = _known()
    files = [ROOT / "README.md", *_text_files(ROOT / "src"), *_text_files(ROOT / "bench"),
             *_text_files(ROOT / "tests"), *_text_files(DOCS)]
    bad, cited = [], 0
    for path in files:
        if path.resolve() == Path(__file__).resolve():
            continue  # this file's own cases cite missing sections on purpose
        text = path.read_text(encoding="utf-8")
        cited += len(_SECTION_CITE.findall(text)) + len(_RULE_CITE.findall(text))
        bad += [f"{path.relative_to(ROOT)}: {b}" for b in dangling_citations(text, known)]
    assert not bad, "\n".join(bad)
    assert cited > 50  # the package's comments do cite the pages (a broken pattern would find none)


@pytest.mark.parametrize(("text", "expected"), [
    ("see docs/method.md §3.6", []),
    ("see docs/method.md §3.11", ["docs/method.md §3.11"]),
    ("docs/method.md §3.6-3.7 and docs/method.md §3.1-§3.2", []),
    ("docs/method.md §14-15", ["docs/method.md §15"]),
    ("docs/backbones.md §2.2", []),
    ("docs/backbones.md §9.1", ["docs/backbones.md §9.1"]),
    ("docs/methodology.md rules 8-10, 13", []),
    ("docs/methodology.md rules 5 and 6", []),
    ("docs/methodology.md rules 15-17", ["docs/methodology.md rule 17"]),
    ("docs/methodology.md rule 0", ["docs/methodology.md rule 0"]),
])
def test_the_check_catches_a_dangling_citation(text: str, expected: list[str]) -> None:
    assert dangling_citations(text, _known()) == expected
