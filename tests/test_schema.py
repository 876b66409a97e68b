"""The one reader/writer per file kind (repbench.schema), the mode registry, and the import layering."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from repbench import SCHEMA_VERSION, schema
from repbench.errors import InputError, RepbenchError
from repbench.schema import bench, tables

SRC = Path(__file__).resolve().parents[1] / "src" / "repbench"


def _significance(**over) -> pd.DataFrame:
    row = {"dataset": "scifact", "system": "a/parallel/q4p4/multi_dense", "baseline": "a/sequential/q1p1/single_dense",
           "measure": "ndcg_cut_10", "n": 30, "mean_system": 0.5, "mean_baseline": 0.4, "mean_diff": 0.1,
           "ci_low": 0.02, "ci_high": 0.18, "test": "t", "p_value": 0.01, "p_adjusted": 0.02,
           "correction": "holm", "significant": True}
    return pd.DataFrame([{**row, **over}])


def test_significance_round_trip_keeps_dataset_and_types(tmp_path):
    frame = pd.concat([_significance(), _significance(dataset="nfcorpus", mean_system=1 / 3, significant=False)])
    path = tables.write_significance(tmp_path / "significance.csv", frame)
    back = tables.read_significance(path)
    assert tuple(back.columns) == schema.SIGNIFICANCE_COLUMNS and schema.SIGNIFICANCE_COLUMNS[0] == "dataset"
    assert back["dataset"].tolist() == ["scifact", "nfcorpus"]
    assert back["significant"].tolist() == [True, False] and back["n"].tolist() == [30, 30]
    assert back["mean_system"].iat[1] == 1 / 3  # exact float round trip


@pytest.mark.parametrize("kind, over, message", [
    ("significance", {"p_value": "nan"}, r"significance\.csv:2: expected a finite numeric p_value for "
                                         r"a/parallel/q4p4/multi_dense vs .* on scifact"),
    ("significance", {"significant": "maybe"}, r"significance\.csv:2: expected significant true or false"),
    ("significance", {"n": "-1"}, r"significance\.csv:2: expected a non-negative integer n, got '-1'"),
])
def test_significance_reader_refuses(tmp_path, kind, over, message):
    path = tmp_path / "significance.csv"
    _significance().astype(object).assign(**over).to_csv(path, index=False)
    with pytest.raises(InputError, match=message):
        tables.read_table(path, kind)


def test_duplicate_rows_named_with_both_lines(tmp_path):
    path = tmp_path / "significance.csv"
    pd.concat([_significance(), _significance(dataset="x"), _significance()]).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"significance\.csv:4: expected one row per \(dataset, system, "
                                         r"baseline, measure\); .* repeats line 2"):
        tables.read_significance(path)


def test_summary_and_oracle_cells_need_integer_k(tmp_path):
    summary = pd.DataFrame([{"dataset": "d", "backbone": "b", "family": "ar", "encoder": "sequential", "k_q": 1.5,
                             "k_p": 1, "mode": "single_dense", "measure": "ndcg_cut_10", "mean": 0.3, "n": 4}])
    summary.to_csv(tmp_path / "summary.csv", index=False)
    with pytest.raises(InputError, match=r"summary\.csv:2: expected a positive integer k_q, got '1.5'"):
        tables.read_summary(tmp_path / "summary.csv")
    cells = pd.DataFrame([{"dataset": "d", "backbone": "b", "encoder": "e", "mode": "multi_dense", "measure": "m",
                           "scope": "everything", "k_q": 1, "k_p": 4, "n_queries": 3, "share": 0.5}])
    cells.to_csv(tmp_path / "oracle_cells.csv", index=False)
    with pytest.raises(InputError, match=r"oracle_cells\.csv:2: expected scope one of kq, kp, grid"):
        tables.read_oracle_cells(tmp_path / "oracle_cells.csv")


def test_oracle_optional_integers(tmp_path):
    row = {c: 0.5 for c in schema.ORACLE_COLUMNS}
    row.update(dataset="d", backbone="b", encoder="e", mode="multi_dense", measure="m", scope="grid",
               fixed_k=None, budget_q=4, budget_p=None, n=8, best_cell="q4p4", label="upper bound")
    tables.write_oracle(tmp_path / "oracle.csv", pd.DataFrame([row]))
    back = tables.read_oracle(tmp_path / "oracle.csv")
    assert back["fixed_k"].isna().all() and back["budget_q"].tolist() == [4] and back["n"].tolist() == [8]


def test_writer_refuses_and_keeps_the_old_file(tmp_path):
    path = tables.write_significance(tmp_path / "significance.csv", _significance())
    before = path.read_text()
    with pytest.raises(InputError, match="expected a finite numeric ci_low"):
        tables.write_significance(path, _significance(ci_low=float("nan")))
    with pytest.raises(RepbenchError, match="missing dataset"):
        tables.write_significance(path, _significance().drop(columns="dataset"))
    assert path.read_text() == before


def _cell(**over) -> dict:
    info = {"backbone": "tiny-ar", "family": "ar", "encoder": "sequential", "k": 4, "input_tokens": 32,
            "batch_size": 1, "samples_s": [0.01, 0.012, 0.011], **over}
    return {"name": "test_encode[x]", "extra_info": info}


def _header(**over) -> dict:
    return {"schema_version": SCHEMA_VERSION, "kind": "latency", "environment": {"gpu": None}, **over}


def test_bench_round_trip_and_skipped_cell(tmp_path):
    skipped = {"name": "test_encode[oom]", "extra_info": {"backbone": "tiny-ar", "encoder": "sequential", "k": 16,
                                                          "status": "skipped", "reason": "out of memory"}}
    path = bench.write_bench(tmp_path / "b.json", _header(), [_cell(), skipped])
    run = bench.read_bench(path)
    assert run.cells["status"].tolist() == ["ok", "skipped"] and run.cells["n"].tolist() == [3, 0]
    assert run.cells["median_s"].iat[0] == pytest.approx(0.011)
    assert run.records[0]["family"] == "ar" and run.records[1]["skipped"]
    assert bench.read_bench(tmp_path).path == path  # a directory holding one JSON


def test_bench_writer_refuses_bad_cells_and_versions(tmp_path):
    path = bench.write_bench(tmp_path / "b.json", _header(), [_cell()])
    before = path.read_text()
    with pytest.raises(InputError, match=r"benchmarks\[0\] \(test_encode\[x\]\): extra_info lacks k"):
        bench.write_bench(path, _header(), [_cell(k=None)])
    with pytest.raises(InputError, match="samples_s must be positive finite seconds"):
        bench.write_bench(path, _header(), [_cell(samples_s=[0.1, -1.0])])
    with pytest.raises(RepbenchError, match="schema_version"):
        bench.write_bench(path, _header(schema_version=SCHEMA_VERSION + 1), [_cell()])
    assert path.read_text() == before
    obj = json.loads(before)
    obj["machine_info"]["repbench"]["schema_version"] = SCHEMA_VERSION + 1
    path.write_text(json.dumps(obj))
    with pytest.raises(RepbenchError, match=f"schema_version {SCHEMA_VERSION + 1}"):
        bench.read_bench(path)


def test_mode_registry_is_the_one_list_of_modes():
    import subprocess
    import sys

    from repbench.retrieval import search
    from repbench.retrieval.modes import MODES, MULTI_MODES, SCORERS

    # the paper's five modes (docs/method.md §6.2), in its order; search re-exports the registry, not a copy
    assert MODES == ("single_dense", "multi_dense", "sparse_max", "fusion_single_sparse_max",
                     "fusion_multi_sparse_max")
    assert tuple(SCORERS) == MODES and search.SCORERS is SCORERS and search.MODES is MODES
    assert not hasattr(schema, "MODES")
    # the registry itself loads no numeric back end, so the report can read it cheaply
    probe = "import sys, repbench.retrieval.modes; print(sorted({'torch', 'faiss', 'numpy'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"
    assert MULTI_MODES == {"multi_dense", "fusion_multi_sparse_max"}
    for scorer in SCORERS.values():  # a fusion reads modes of the registry, and exactly one way is given
        assert (scorer.search is None) != (scorer.fuse is None)
        assert scorer.fuse is None or set(scorer.fuse) <= set(SCORERS)


# ------------------------------------------------------------------------------------------- layering

def _imports() -> dict[str, set[str]]:
    """Module -> the repbench modules it imports (top level and inside functions)."""
    modules = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        modules[name] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            deps |= {t for t in targets if t in modules and t != name}
        graph[name] = deps
    return graph


BOTTOM = ("repbench", "repbench.errors", "repbench.io")


@pytest.mark.parametrize("package", ["repbench.schema", "repbench.stats"])
def test_schema_and_stats_are_at_the_bottom(package):
    for module, deps in _imports().items():
        if module == package or module.startswith(package + "."):
            above = {d for d in deps if d not in BOTTOM and d != package and not d.startswith(package + ".")}
            assert not above, f"{module} imports {sorted(above)} from above the bottom layer"


def test_schema_package_imports_only_the_standard_library():
    tree = ast.parse((SRC / "schema" / "__init__.py").read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert names <= {"__future__", "repbench"}


def test_no_upward_arrows_from_analysis_and_report():
    graph = _imports()
    stage_above = {"repbench.analysis": ("repbench.report", "repbench.commands", "repbench.recipes"),
                   "repbench.report": ("repbench.commands",), "repbench.evaluation": ("repbench.analysis",
                                                                                       "repbench.report")}
    for module, deps in graph.items():
        for stage, above in stage_above.items():
            if module.startswith(stage + ".") or module == stage:
                bad = sorted(d for d in deps if d.startswith(above))
                assert not bad, f"{module} imports {bad}"


def test_no_import_cycle_through_the_consolidated_packages():
    graph = _imports()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.add(w)
                if w == v:
                    break
            if len(scc) > 1:
                cycles.append(sorted(scc))

    for v in graph:
        if v not in index:
            visit(v)
    mine = ("repbench.schema", "repbench.stats", "repbench.analysis", "repbench.report", "repbench.recipes",
            "repbench.evaluation.sweep", "repbench.telemetry.environment_diff")
    # A package __init__ re-exporting its submodules is not a cycle at run time; everything else is.
    real = [c for c in cycles if any(m.startswith(mine) for m in c)
            and not all(m.startswith(c[0].rsplit(".", 1)[0]) for m in c)]
    assert not real, real


def test_no_module_over_400_lines():
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long


def test_float_columns_survive_the_writer_exactly(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.random(50)
    frame = pd.DataFrame({"dataset": "d", "backbone": "b", "family": "ar", "encoder": "sequential", "k_q": 1,
                          "k_p": 2, "mode": "single_dense", "qid": [f"q{i}" for i in range(50)],
                          "measure": "ndcg_cut_10", "value": values})
    back = tables.read_per_query(tables.write_per_query(tmp_path / "per_query.csv", frame))
    assert (back["value"].to_numpy() == values).all() and back["k_p"].dtype == np.int64


def test_significance_rows_name_their_dataset():
    from repbench.analysis.significance import compare_per_query

    rng = np.random.default_rng(1)
    rows = [{"dataset": ds, "backbone": "b", "family": "ar", "encoder": "sequential", "k_q": 1, "k_p": kp,
             "mode": "single_dense", "qid": f"q{i}", "measure": "ndcg_cut_10", "value": float(rng.random())}
            for ds in ("adi", "scifact") for kp in (1, 4) for i in range(6)]
    table = pd.DataFrame(rows)
    base = "b/sequential/q1p1/single_dense"
    sig, _ = compare_per_query(table, "ndcg_cut_10", baseline=base, dataset="scifact", n_bootstrap=200)
    assert sig["dataset"].tolist() == ["scifact"]
    sig, _ = compare_per_query(table[table["dataset"] == "adi"], "ndcg_cut_10", baseline=base, n_bootstrap=200)
    assert sig["dataset"].tolist() == ["adi"]
    mine = table[(table["dataset"] == "adi") & (table["k_p"] == 4)]["value"].mean()
    assert sig["mean_system"].iat[0] == pytest.approx(mine)
