"""Oracle over K against a direct per-query maximum written here, budget and tie rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from repbench.analysis.oracle import ORACLE_CELL_COLUMNS, ORACLE_COLUMNS, ORACLE_LABEL, oracle_tables

KS = (1, 2, 4, 8)


def _table(seed: int = 0, n: int = 40, ks=KS, modes=("multi_dense", "sparse_max")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for mode in modes:
        for kq in ks:
            for kp in ks:
                for q in range(n):
                    # coarse values so that ties between cells happen
                    rows.append(("nfcorpus", "tiny-dlm", "diffusion", "parallel", kq, kp, mode, f"q{q}",
                                 "ndcg_cut_10", float(rng.integers(0, 5)) / 4))
    return pd.DataFrame(rows, columns=["dataset", "backbone", "family", "encoder", "k_q", "k_p", "mode", "qid",
                                       "measure", "value"])


def _direct(df: pd.DataFrame, mode: str, cells: list[tuple[int, int]]):
    """Reference: loop over queries, take the max over cells; best fixed cell by mean."""
    sub = df[df["mode"] == mode]
    qids = sorted(set(sub["qid"]))
    val = {(r.k_q, r.k_p, r.qid): r.value for r in sub.itertuples()}
    per_query_max = [max(val[(kq, kp, q)] for kq, kp in cells) for q in qids]
    means = {c: np.mean([val[(c[0], c[1], q)] for q in qids]) for c in cells}
    best_mean = max(means.values())
    return float(np.mean(per_query_max)), best_mean, means


def test_oracle_equals_direct_per_query_max():
    df = _table()
    oracle, cells = oracle_tables(df, measure="ndcg_cut_10", n_bootstrap=500)
    assert tuple(oracle.columns) == ORACLE_COLUMNS and tuple(cells.columns) == ORACLE_CELL_COLUMNS
    assert (oracle["label"] == ORACLE_LABEL).all()
    for mode in ("multi_dense", "sparse_max"):
        grid = oracle[(oracle["mode"] == mode) & (oracle["scope"] == "grid")].iloc[0]
        o, b, _ = _direct(df, mode, [(q, p) for q in KS for p in KS])
        assert grid["oracle_mean"] == pytest.approx(o)
        assert grid["best_mean"] == pytest.approx(b)
        assert grid["gap"] == pytest.approx(o - b)
        assert grid["n"] == 40
        assert grid["oracle_ci_low"] <= o <= grid["oracle_ci_high"]
        for kp in KS:  # K_q-only oracle with K_p fixed
            row = oracle[(oracle["mode"] == mode) & (oracle["scope"] == "kq") & (oracle["fixed_k"] == kp)].iloc[0]
            o, b, _ = _direct(df, mode, [(q, kp) for q in KS])
            assert (row["oracle_mean"], row["best_mean"]) == (pytest.approx(o), pytest.approx(b))
        for kq in KS:
            row = oracle[(oracle["mode"] == mode) & (oracle["scope"] == "kp") & (oracle["fixed_k"] == kq)].iloc[0]
            o, b, _ = _direct(df, mode, [(kq, p) for p in KS])
            assert (row["oracle_mean"], row["best_mean"]) == (pytest.approx(o), pytest.approx(b))
    assert len(oracle) == 2 * (1 + len(KS) + len(KS))
    shares = cells.groupby(["mode", "scope", cells["k_p"].where(cells["scope"] == "kq", -1),
                            cells["k_q"].where(cells["scope"] == "kp", -1)])["share"].sum()
    np.testing.assert_allclose(shares, 1.0)


def test_budget_restricts_cells():
    df = _table(seed=1)
    oracle, cells = oracle_tables(df, measure="ndcg_cut_10", budget_q=2, budget_p=4, n_bootstrap=200)
    grid = oracle[(oracle["mode"] == "multi_dense") & (oracle["scope"] == "grid")].iloc[0]
    o, b, _ = _direct(df, "multi_dense", [(q, p) for q in (1, 2) for p in (1, 2, 4)])
    assert grid["oracle_mean"] == pytest.approx(o) and grid["best_mean"] == pytest.approx(b)
    assert (grid["budget_q"], grid["budget_p"]) == (2, 4)
    assert cells["k_q"].max() == 2 and cells["k_p"].max() == 4
    assert set(oracle.loc[oracle["scope"] == "kq", "fixed_k"]) == {1, 2, 4}


def test_ties_go_to_the_cheapest_cell():
    rows = []
    # q0: every cell ties at 0.5; q1: (4,1) and (1,4) and (2,2) tie at 1.0 (same k_q + k_p = 5 vs 4)
    values = {
        "q0": {(1, 1): 0.5, (1, 4): 0.5, (4, 1): 0.5, (2, 2): 0.5, (4, 4): 0.5},
        "q1": {(1, 1): 0.0, (1, 4): 1.0, (4, 1): 1.0, (2, 2): 1.0, (4, 4): 1.0},
        "q2": {(1, 1): 0.0, (1, 4): 1.0, (4, 1): 1.0, (2, 2): 0.0, (4, 4): 0.0},
    }
    for q, by_cell in values.items():
        for (kq, kp), v in by_cell.items():
            rows.append(("d", "b", "ar", "sequential", kq, kp, "single_dense", q, "ndcg_cut_10", v))
    df = pd.DataFrame(rows, columns=["dataset", "backbone", "family", "encoder", "k_q", "k_p", "mode", "qid",
                                     "measure", "value"])
    oracle, cells = oracle_tables(df, scopes=("grid",), n_bootstrap=100)
    picked = cells.set_index(["k_q", "k_p"])["n_queries"]
    # q0 -> (1,1), the cheapest of all; q1 -> (2,2) (k_q + k_p = 4 < 5); q2 -> (1,4) vs (4,1) tie on
    # k_q + k_p = 5, and (4,1) has the smaller k_p
    assert picked[(1, 1)] == 1 and picked[(2, 2)] == 1 and picked[(4, 1)] == 1
    assert picked[(1, 4)] == 0 and picked[(4, 4)] == 0
    # best fixed cell: (1,4) and (4,1) both average 2.5/3; the cheaper is (4,1) (smaller k_p)
    assert oracle.iloc[0]["best_cell"] == "q4p1"
    assert oracle.iloc[0]["oracle_mean"] == pytest.approx((0.5 + 1.0 + 1.0) / 3)


def test_missing_queries_zero_or_intersect():
    df = _table(seed=2, n=10, ks=(1, 2), modes=("multi_dense",))
    df = df[~((df["k_q"] == 2) & (df["k_p"] == 2) & (df["qid"] == "q3"))]
    full, _ = oracle_tables(df, scopes=("grid",), n_bootstrap=100)
    inter, _ = oracle_tables(df, scopes=("grid",), intersect=True, n_bootstrap=100)
    assert full.iloc[0]["n"] == 10 and inter.iloc[0]["n"] == 9
    zero = pd.DataFrame([("nfcorpus", "tiny-dlm", "diffusion", "parallel", 2, 2, "multi_dense", "q3",
                          "ndcg_cut_10", 0.0)], columns=df.columns)
    filled = pd.concat([df, zero], ignore_index=True)
    o, _, _ = _direct(filled, "multi_dense", [(1, 1), (1, 2), (2, 1), (2, 2)])
    assert full.iloc[0]["oracle_mean"] == pytest.approx(o)


def test_single_cell_groups_give_empty_tables():
    df = _table(n=5, ks=(4,))
    oracle, cells = oracle_tables(df, n_bootstrap=50)
    assert oracle.empty and cells.empty and tuple(oracle.columns) == ORACLE_COLUMNS
