"""Noisy cells are drawn distinctly and named: figures get a hollow marker and a caption naming the cell,
the latency table marks it, and the machine's load recorded by the harness is stated."""

from __future__ import annotations

import json

import numpy as np
import pytest
import report_fixtures as fx
from matplotlib import pyplot as plt

from repbench.report import figures, inputs, tables
from repbench.report.latex import to_markdown

NOISY_NAME = "test_encode[tiny-ar-sequential-k4-L32]"
SEARCH_NOISY = "test_search[flat_ip-10000]"


@pytest.fixture
def results(tmp_path):
    """A bench JSON whose samples are evenly spaced: IQR/median is exactly 0.03 (quiet) for every cell, and
    0.20 (noisy: > 10%) for one encoding and one search cell; load averages recorded per cell."""
    path = fx.bench_json(tmp_path / "bench" / "out.json")
    obj = json.loads(path.read_text())
    for i, bench in enumerate(obj["benchmarks"]):
        info = bench["extra_info"]
        if not info.get("samples_s") or info.get("encoder", "").startswith("analysis"):
            continue
        centre = float(np.median(info["samples_s"]))
        # linspace(1 - h, 1 + h) has q25 = 1 - h/2 and q75 = 1 + h/2 (linear interpolation): IQR/median = h.
        half = 0.2 if bench["name"] in (NOISY_NAME, SEARCH_NOISY) else 0.03
        info["samples_s"] = (centre * np.linspace(1 - half, 1 + half, 21)).tolist()
        info["load_avg_before"], info["load_avg_after"] = 1.5 + 0.01 * i, 3.25
    obj["machine_info"]["repbench"]["environment"]["cpu"]["logical_cores"] = 2
    path.write_text(json.dumps(obj))
    return tmp_path


def _hollow(ax):
    return [ln for ln in ax.get_lines() if ln.get_markerfacecolor() == "none" and len(ln.get_xdata())]


def test_latency_vs_k_draws_the_noisy_cell_hollow_and_names_it(results):
    bench = inputs.bench_table(results)
    noisy = bench[bench["name"] == NOISY_NAME].iloc[0]
    expected_ms = float(np.median(noisy["samples_s"])) * 1000.0
    fig, caption = figures.latency_vs_k(inputs.encode_cells(bench))
    by_title = {ax.get_title(): ax for ax in fig.axes}
    hollow = _hollow(by_title["input length 32 tokens"])
    assert len(hollow) == 1
    assert list(hollow[0].get_xdata()) == [4] and hollow[0].get_ydata()[0] == pytest.approx(expected_ms)
    assert not _hollow(by_title["input length 128 tokens"])  # every cell there is quiet
    # The series' own line carries filled markers everywhere except at K=4 (index 2 of K 1, 2, 4, 8).
    series = [ln for ln in by_title["input length 32 tokens"].get_lines() if ln.get_label() == "tiny-ar / sequential"]
    assert series[0].get_markevery() == [0, 1, 3] and series[0].get_markerfacecolor() != "none"
    assert "tiny-ar/sequential K=4 L=32 (20%)" in caption and "1 of 16 cells flagged noisy" in caption
    assert "not a finding" in caption
    # load: before 1.5 + 0.01 i over the cells, after 3.25; the median and range follow from those values
    assert "range 1.50 to 3.25" in caption and "2 logical cores" in caption and "Above the core count" in caption
    legend = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert any(t.startswith("hollow marker: cell flagged noisy") for t in legend)
    plt.close(fig)


def test_search_and_length_figures_mark_their_noisy_cells(results):
    bench = inputs.bench_table(results)
    fig, caption = figures.search_latency(inputs.search_cells(bench), None)
    hollow = [ln for ax in fig.axes for ln in _hollow(ax)]
    assert len(hollow) == 1 and list(hollow[0].get_xdata()) == [10000]
    assert "single_dense K_p=1 N=10,000 batch 1 (20%)" in caption
    plt.close(fig)
    fig, caption = figures.latency_vs_length(inputs.encode_cells(bench), None)
    hollow = [ln for ax in fig.axes for ln in _hollow(ax)]
    assert [list(ln.get_xdata()) for ln in hollow] == [[32]]  # K=4 is the multi series, at L=32
    assert "tiny-ar/sequential K=4 L=32" in caption
    plt.close(fig)


def test_quiet_cells_are_said_to_be_quiet(results):
    bench = inputs.bench_table(results)
    quiet = inputs.encode_cells(bench)
    quiet = quiet[quiet["input_tokens"] == 128]
    fig, caption = figures.latency_vs_k(quiet)
    assert not [ln for ax in fig.axes for ln in _hollow(ax)]
    assert "No cell shown is flagged noisy" in caption
    plt.close(fig)


def test_latency_table_marks_the_noisy_cell(results):
    bench = inputs.bench_table(results)
    table = tables.latency_table(bench)
    md = to_markdown(table)
    header = [str(c) for c in table.columns]
    iqr_col = header.index("IQR/median")
    ms_col = header.index("ms/query median [95% CI]")
    rows = {(r[0].text, r[2].text, r[3].text): r for r in table.rows}
    noisy = rows[("tiny-ar", "4", "32")]
    assert noisy[iqr_col].text == "20% noisy" and noisy[iqr_col].bold
    assert [m.markdown for m in noisy[ms_col].marks] == ["°"]
    quiet = rows[("tiny-ar", "4", "128")]
    assert quiet[iqr_col].text == "3%" and not quiet[ms_col].marks
    assert "1 of 16 cells" in md and "Machine load during the run" in md
