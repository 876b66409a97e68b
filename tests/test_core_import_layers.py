"""The import graph of src/repbench, read with ast: no cycle, and no arrow from a lower stage up.

Imports inside functions count: a lazy import still ties the lower stage to the higher one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "repbench"

# Data flows one way (README.md, "Layout"): each stage may import its own and lower stages only.
STAGES: list[tuple[str, ...]] = [
    ("__init__", "errors", "ids", "limits", "io", "option_checks", "schema", "stats"),
    ("telemetry",),
    ("backbones",),
    ("encoders",),
    ("retrieval",),
    ("evaluation",),
    ("engines",),  # where encoding and sweep cells run (local / Ray), driven by commands
    ("benchmarking",),
    ("analysis",),
    ("report", "recipes"),  # recipes draw with the report's readers and styles
    ("commands", "cli", "__main__", "api"),  # api: the pandas facade, repbench.evaluate
]
STAGE_OF = {top: level for level, tops in enumerate(STAGES) for top in tops}


def _module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(src: Path) -> dict[str, Path]:
    return {_module_name(p, src): p for p in sorted(src.rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of a dotted name that is one of our modules."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return None


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    modules = _modules(src)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    pkg = pkg[: len(pkg) - (node.level - 1)]
                    base = ".".join(pkg + ([base] if base else []))
                # `from pkg import sub` imports the submodule when there is one
                targets = [f"{base}.{a.name}" for a in node.names] or [base]
            for t in targets:
                hit = _resolve(t, modules)
                if hit is not None and hit != mod:
                    graph[mod].add(hit)
    return graph


def stage(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    if top not in STAGE_OF:
        pytest.fail(f"{module}: no stage assigned to repbench.{top}; add it to STAGES in this test")
    return STAGE_OF[top]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in colour and (found := visit(nxt)):
                return found
        stack.pop()
        colour[node] = 2
        return None

    for node in sorted(graph):
        if node not in colour and (found := visit(node)):
            return found
    return None


def test_the_checker_sees_cycles_and_lazy_imports(tmp_path):
    # a hand-made package: a -> b at top level, b -> a inside a function
    pkg = tmp_path / "repbench"
    (pkg / "encoders").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "encoders" / "__init__.py").write_text("")
    (pkg / "encoders" / "a.py").write_text("from repbench.encoders.b import f\n")
    (pkg / "encoders" / "b.py").write_text("def f():\n    from . import a\n")
    (pkg / "io.py").write_text("def g():\n    import repbench.encoders.a\n")
    graph = import_graph(pkg)
    assert graph["repbench.encoders.a"] == {"repbench.encoders.b"}
    assert graph["repbench.encoders.b"] == {"repbench.encoders.a"}
    assert find_cycle(graph) == ["repbench.encoders.a", "repbench.encoders.b", "repbench.encoders.a"]
    assert stage("repbench.io") < stage("repbench.encoders.a") and "repbench.encoders.a" in graph["repbench.io"]


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_import_from_a_lower_stage_to_a_higher_one():
    graph = import_graph()
    upward = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets if stage(b) > stage(a))
    assert upward == [], "imports that run up the stages:\n" + "\n".join(upward)


def test_no_module_over_400_lines():
    # Small modules with one job: a module that outgrows this has taken a second one; split it by job.
    long = {str(p.relative_to(SRC)): n for p in sorted(SRC.rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert not long, f"modules over 400 lines: {long}"
