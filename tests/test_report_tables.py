"""Report tables: bold best cell, significance marks, escaping, on hand-built fixtures."""

from __future__ import annotations

import re

import pandas as pd

from repbench.report import latex, tables

BASE = "ar/sequential/q1p1/single_dense"
S1 = "diff/parallel/q4p4/multi_dense"
S2 = "diff/parallel/q1p1/single_dense"


def _summary() -> pd.DataFrame:
    # Hand-chosen means: best on alpha is S1 (0.612), best on beta is BASE (0.500).
    values = {("alpha", BASE): 0.400, ("alpha", S1): 0.612, ("alpha", S2): 0.350,
              ("beta", BASE): 0.500, ("beta", S1): 0.480, ("beta", S2): 0.300}
    rows = []
    for (dataset, system), mean in values.items():
        backbone, encoder, cell, mode = system.split("/")
        k_q, k_p = (int(x) for x in re.match(r"q(\d+)p(\d+)", cell).groups())
        rows.append({"dataset": dataset, "backbone": backbone, "family": "x", "encoder": encoder, "k_q": k_q,
                     "k_p": k_p, "mode": mode, "measure": "ndcg_cut_10", "mean": mean, "n": 10, "system": system})
    return pd.DataFrame(rows)


def _significance() -> pd.DataFrame:
    rows = [
        ("alpha", S1, 0.612, 0.400, True),   # better, significant
        ("alpha", S2, 0.350, 0.400, False),  # worse, not significant
        ("beta", S1, 0.480, 0.500, False),   # not significant
        ("beta", S2, 0.300, 0.500, True),    # worse, significant
    ]
    return pd.DataFrame([{
        "dataset": d, "system": s, "baseline": BASE, "measure": "ndcg_cut_10", "n": 10, "mean_system": m,
        "mean_baseline": b, "mean_diff": m - b, "ci_low": m - b - 0.05, "ci_high": m - b + 0.05, "test": "t",
        "p_value": 0.001 if sig else 0.5, "p_adjusted": 0.003 if sig else 0.9, "correction": "holm",
        "significant": sig} for d, s, m, b, sig in rows])


def _row(tex: str, label: str, k_q: int, k_p: int, mode: str) -> str:
    mode_tex = latex.escape(mode)
    lines = [line for line in tex.splitlines()
             if line.startswith(label + " ") and f"& {k_q} & {k_p} & {mode_tex} &" in line]
    assert len(lines) == 1, (label, lines)
    return lines[0]


def test_effectiveness_table_bold_and_marks():
    table = tables.effectiveness_table(_summary(), _significance())
    tex = latex.to_latex(table)
    base = _row(tex, "ar/sequential (baseline)", 1, 1, "single_dense")
    s1 = _row(tex, "diff/parallel", 4, 4, "multi_dense")
    s2 = _row(tex, "diff/parallel", 1, 1, "single_dense")
    assert s1.endswith(r"& \textbf{0.612}$^{\dagger}$ & 0.480 \\")
    assert base.endswith(r"& 0.400 & \textbf{0.500} \\")
    assert s2.endswith(r"& 0.350 & 0.300$^{\ddagger}$ \\")
    assert tex.count(r"\textbf{") == 2
    assert tex.count(r"$^{\dagger}$") == 2  # one in the table, one in the caption's legend
    assert "holm-adjusted" in tex and "baseline ar/sequential/q1p1/single\\_dense" in tex
    for needle in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert tex.count(needle) == 1


def test_effectiveness_markdown_has_same_marks():
    md = latex.to_markdown(tables.effectiveness_table(_summary(), _significance()))
    assert "| diff/parallel | 4 | 4 | multi_dense | **0.612**† | 0.480 |" in md
    assert "| diff/parallel | 1 | 1 | single_dense | 0.350 | 0.300‡ |" in md


def test_no_significance_file_means_no_marks():
    tex = latex.to_latex(tables.effectiveness_table(_summary(), None))
    assert r"\dagger" not in tex and r"\ddagger" not in tex
    assert "No significance tests" in tex


def test_paper_rows_only_for_measured_datasets():
    paper = pd.DataFrame([
        {"reference": "paper: X", "k_q": 1, "k_p": 1, "dataset": "alpha", "measure": "ndcg_cut_10",
         "mode": "single_dense", "value": 0.9, "source": "s"},
        {"reference": "paper: Y", "k_q": 1, "k_p": 1, "dataset": "gamma", "measure": "ndcg_cut_10",
         "mode": "single_dense", "value": 0.8, "source": "s"},
    ])
    tex = latex.to_latex(tables.effectiveness_table(_summary(), None, paper))
    assert "paper: X & 1 & 1 & single\\_dense & 0.900 & -- \\\\" in tex
    assert "paper: Y" not in tex
    assert r"\textbf{0.900}" not in tex  # paper values never compete for bold
    assert tex.count(r"\midrule") == 2


def test_escape_specials():
    assert latex.escape("a_b & 50% $x #1 {y} ~^\\") == (
        r"a\_b \& 50\% \$x \#1 \{y\} \textasciitilde{}\textasciicircum{}\textbackslash{}")
    assert latex.escape("≈ 5 × 3 — §8") == r"$\approx$ 5 $\times$ 3 --- \S{}8"
    assert latex.escape("café") == "cafe"


def test_oracle_table_rows():
    oracle = pd.DataFrame([{
        "dataset": "d_1", "backbone": "b", "encoder": "parallel", "mode": "multi_dense", "measure": "ndcg_cut_10",
        "scope": "kq", "fixed_k": 4, "budget_q": 4, "budget_p": None, "n": 30, "oracle_mean": 0.61234,
        "oracle_ci_low": 0.55, "oracle_ci_high": 0.67, "best_cell": "q2p4", "best_mean": 0.5, "best_ci_low": 0.44,
        "best_ci_high": 0.56, "gap": 0.11234, "gap_ci_low": 0.08, "gap_ci_high": 0.15,
        "label": "optimistic upper bound (per-query best cell selected on the test queries)"}])
    tex = latex.to_latex(tables.oracle_table(oracle))
    assert (r"d\_1 & b/parallel/multi\_dense & K\_q varies, K\_p=4 (K\_q\textless{}=4) & 30 & "
            r"0.612 [0.550, 0.670] & q2p4 & 0.500 [0.440, 0.560] & 0.112 [0.080, 0.150] \\") in tex
    assert "optimistic upper bound" in tex
