"""`repbench compare` on two per_query.csv tables: mean differences, paired test, OK/OKish/FAIL."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from repbench.analysis.baselines import PerQueryRun, load_per_query
from repbench.analysis.compare import compare_effectiveness, effectiveness_verdict
from repbench.cli import main
from repbench.errors import InputError, RepbenchError
from repbench.schema import PER_QUERY_COLUMNS

QIDS = ["q1", "q2", "q3", "q4", "q5"]
# Hand-built per-query nDCG@10 for three systems (multi_dense at k_q=k_p=4, sparse_max, single_dense).
BASE = {"multi_dense": [0.50, 0.40, 0.70, 0.20, 0.90],
        "sparse_max": [0.30, 0.60, 0.10, 0.80, 0.50],
        "single_dense": [0.25, 0.35, 0.45, 0.55, 0.65]}
NEW = {"multi_dense": [0.50, 0.40, 0.70, 0.20, 0.9004],   # mean +0.00008          -> OK
       "sparse_max": [0.32, 0.61, 0.12, 0.80, 0.52],      # mean +0.014 (0.07 / 5) -> OKish at 0.02, FAIL at 0.01
       "single_dense": [0.10, 0.20, 0.30, 0.50, 0.40]}    # mean -0.15             -> FAIL


def table(values: dict[str, list[float]], backbone: str = "tiny-ar", extra_mode: str | None = None) -> pd.DataFrame:
    rows = []
    for mode, vals in values.items():
        for qid, v in zip(QIDS, vals, strict=True):
            rows.append(("synthetic", backbone, "ar", "sequential", 4, 4, mode, qid, "ndcg_cut_10", v))
    if extra_mode:
        rows += [("synthetic", backbone, "ar", "sequential", 4, 4, extra_mode, q, "ndcg_cut_10", 0.5) for q in QIDS]
    return pd.DataFrame(rows, columns=list(PER_QUERY_COLUMNS))


def write(path: Path, frame: pd.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def pair(tmp_path):
    base = write(tmp_path / "base" / "per_query.csv", table(BASE, extra_mode="fusion_single_sparse_max"))
    new = write(tmp_path / "new" / "per_query.csv", table(NEW))
    return base, new


def test_mean_differences_pvalues_and_verdicts(pair):
    base, new = pair
    comp = compare_effectiveness(load_per_query(base), load_per_query(new), test="t", tolerance=0.02)
    t = comp.table.set_index("mode")
    assert t.loc["multi_dense", "mean_diff"] == pytest.approx(0.0004 / 5, abs=1e-12)
    assert t.loc["sparse_max", "mean_diff"] == pytest.approx(0.07 / 5, abs=1e-12)
    assert t.loc["single_dense", "mean_diff"] == pytest.approx(-0.75 / 5, abs=1e-12)
    assert t.loc["single_dense", "mean_base"] == pytest.approx(0.45)
    assert t.loc["single_dense", "mean_new"] == pytest.approx(0.30)
    for mode in ("sparse_max", "single_dense"):
        ref = scipy.stats.ttest_rel(NEW[mode], BASE[mode])
        assert t.loc[mode, "p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert t["verdict"].to_dict() == {"multi_dense": "OK", "sparse_max": "OKish", "single_dense": "FAIL"}
    # Holm across the three comparisons, by hand: sorted p ascending times (3, 2, 1), made monotone.
    p = t["p_value"].sort_values()
    expected = np.maximum.accumulate(np.minimum(p.to_numpy() * np.array([3, 2, 1]), 1.0))
    assert t.loc[p.index, "p_holm"].to_numpy() == pytest.approx(expected)
    assert comp.only_base == ["synthetic/tiny-ar/sequential/q4p4/fusion_single_sparse_max/ndcg_cut_10"]
    assert comp.only_new == []


def test_default_tolerance_fails_sparse(pair):
    base, new = pair
    comp = compare_effectiveness(load_per_query(base), load_per_query(new))
    assert comp.table.set_index("mode").loc["sparse_max", "verdict"] == "FAIL"


def test_verdict_boundaries():
    assert effectiveness_verdict(0.0005, 0.01) == "OK"
    assert effectiveness_verdict(-0.0006, 0.01) == "OKish"
    assert effectiveness_verdict(0.01, 0.01) == "OKish"
    assert effectiveness_verdict(-0.0101, 0.01) == "FAIL"


def test_wilcoxon_matches_scipy(pair):
    base, new = pair
    comp = compare_effectiveness(load_per_query(base), load_per_query(new), test="wilcoxon")
    got = comp.table.set_index("mode").loc["single_dense", "p_value"]
    assert got == pytest.approx(scipy.stats.wilcoxon(NEW["single_dense"], BASE["single_dense"]).pvalue, rel=1e-9)


def test_cli_on_csvs_and_dirs(pair, tmp_path, capsys):
    base, new = pair
    out = tmp_path / "cmp.json"
    assert main(["compare", str(base), str(new), "--eff-tolerance", "0.02", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "FAIL" in text and "OKish" in text and "only in BASE" in text
    cells = {c["mode"]: c for c in json.loads(out.read_text())["effectiveness"]["cells"]}
    assert cells["single_dense"]["verdict"] == "FAIL"
    # Directories work too, and --fail-on-eff turns a FAIL into exit status 1.
    assert main(["compare", str(base.parent), str(new.parent), "--fail-on-eff"]) == 1


def test_by_backbone(tmp_path):
    both = pd.concat([table(BASE, backbone="tiny-ar"), table(NEW, backbone="tiny-dlm")])
    path = write(tmp_path / "per_query.csv", both)
    run = load_per_query(path)
    comp = compare_effectiveness(run, run, by="backbone", base_backbone="tiny-ar", new_backbone="tiny-dlm")
    assert comp.table.set_index("mode").loc["single_dense", "mean_diff"] == pytest.approx(-0.15)
    assert comp.table["label"].str.startswith("tiny-ar -> tiny-dlm: ").all()


def test_query_sets_differ_pairs_on_shared_queries(tmp_path):
    base = table(BASE)
    new = table(NEW)
    new = new[new["qid"] != "q5"]
    comp = compare_effectiveness(load_per_query(write(tmp_path / "b.csv", base)),
                                 load_per_query(write(tmp_path / "n.csv", new)))
    sd = comp.table.set_index("mode").loc["single_dense"]
    assert sd["n"] == 4 and sd["mean_diff"] == pytest.approx((-0.15 - 0.15 - 0.15 - 0.05) / 4)
    assert any("1 BASE-only" in w for w in comp.warnings)


def test_bad_tables_refused(tmp_path):
    bad = table(BASE).astype({"value": object})
    bad.loc[3, "value"] = "abc"
    with pytest.raises(InputError, match=r"bad\.csv:5: expected a numeric 'value'"):
        load_per_query(write(tmp_path / "bad.csv", bad))
    with pytest.raises(InputError, match="missing measure, value"):
        load_per_query(write(tmp_path / "cols.csv", table(BASE).drop(columns=["measure", "value"])))
    dup = pd.concat([table(BASE), table(BASE).iloc[:1]])
    # The one per-query reader refuses the repeated row itself, naming its line and the first one ...
    with pytest.raises(InputError, match=r"dup\.csv:17: expected one row per \(system, query, measure\); "
                                         r"query q1 of tiny-ar/sequential/q4p4/multi_dense repeats line 2"):
        load_per_query(write(tmp_path / "dup.csv", dup))
    # ... and a table built in memory with a repeated query is still refused by the comparison.
    run = PerQueryRun(path=tmp_path / "dup.csv", table=dup.reset_index(drop=True), header=None)
    with pytest.raises(RepbenchError, match="dup.csv: query 'q1' appears twice"):
        compare_effectiveness(run, run)
