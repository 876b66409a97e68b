"""`repbench predict` and its overhead model (analysis.prediction): recovery of a known model, leave-one-K-out,
the floor of an unmeasured GPU/backbone, and the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from repbench.analysis.prediction import error_summary, fit, leave_one_k_out, model_tokens
from repbench.cli import main

BASELINE = Path(__file__).resolve().parents[1] / "results" / "baselines" / "cpu-amd-epyc-2t"


def _synthetic(c: float, e: float, noise: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for k in (1, 2, 4, 8, 16):
        for floor in (1e-4, 5e-4, 2e-3):
            for enc, fwd in (("sequential", k), ("parallel", 1)):
                lf = 2 * fwd
                t = (c * lf + floor / e) * (1 + noise * rng.standard_normal())
                rows.append({"encoder": enc, "k": k, "floor_s": floor, "layer_forwards": lf, "measured_s": t})
    return pd.DataFrame(rows)


def test_fit_recovers_a_known_overhead_and_efficiency_and_holds_out_each_k():
    cells = _synthetic(c=3e-4, e=0.25)
    model = fit(cells)
    assert model.per_layer_forward_s == pytest.approx(3e-4, rel=1e-6)
    assert model.efficiency == pytest.approx(0.25, rel=1e-6)
    held = leave_one_k_out(cells)
    assert len(held) == len(cells) and held["rel_error"].abs().max() < 1e-6
    # with 5% noise the held-out error is of the order of the noise, and each K is predicted without itself
    noisy = leave_one_k_out(_synthetic(c=3e-4, e=0.25, noise=0.05))
    s = error_summary(noisy)
    assert s["cells"] == len(cells) and 0.01 < s["median_abs_rel_error"] < 0.1


def test_leave_one_k_out_never_sees_the_held_out_k():
    cells = _synthetic(c=3e-4, e=0.25)
    cells.loc[cells["k"] == 16, "measured_s"] *= 10  # K=16 measured absurdly slow
    held = leave_one_k_out(cells)
    # fitted without K=16, its cells are predicted at the clean model (off by -90%), the others barely move
    assert held.loc[held["k"] == 16, "rel_error"].to_numpy() == pytest.approx(-0.9, abs=0.02)


def test_model_tokens_follow_the_prompt_layout():
    seq = model_tokens("tiny-ar", "sequential", 4, 128)[0]
    par = model_tokens("tiny-diffusion", "parallel", 4, 128)[0]
    assert par == seq + 4 + 3  # the K masks and the 3 tail tokens
    assert model_tokens("tiny-ar", "meanpool", 1, 128)[0] >= 128


def test_predict_on_the_stored_cpu_baseline_states_its_leave_one_k_out_error(tmp_path, capsys):
    out = tmp_path / "p.json"
    assert main(["predict", "--baseline", str(BASELINE), "--json", str(out), "--markdown", str(tmp_path / "p.md")]) == 0
    text = capsys.readouterr().out
    assert "leave-one-K-out (30 cells" in text and "overhead model" in text
    rec = json.loads(out.read_text())["baseline"]
    assert rec["cells"] == 30 and len(rec["held_out"]) == 30
    s = rec["leave_one_k_out"]
    assert 0 < s["median_abs_rel_error"] <= s["mean_abs_rel_error"] <= s["max_abs_rel_error"] < 2
    assert "leave-one-K-out" in (tmp_path / "p.md").read_text()


def test_predict_the_floor_of_an_unmeasured_gpu_and_backbone(tmp_path, capsys):
    out = tmp_path / "p.json"
    assert main(["predict", "--backbone", "qwen2.5-7b-instruct", "--gpu", "h100-sxm", "--k", "1,4,16",
                 "--input-tokens", "128", "--json", str(out)]) == 0
    cells = json.loads(out.read_text())["prediction"]["cells"]
    floors = {c["k"]: c["floor_ms"] for c in cells}
    assert floors[1] == pytest.approx(4.2, rel=0.02) and floors[4] == pytest.approx(16.9, rel=0.02)
    assert floors[16] == pytest.approx(67.6, rel=0.02)
    assert all(c["expected_ms"] is None for c in cells)  # no baseline: the floor only
    assert "SmolLM2 tokenizer" in capsys.readouterr().out  # no local checkpoint: the stand-in is said


def test_predict_with_a_baseline_gives_an_expected_latency_above_the_floor(tmp_path):
    out = tmp_path / "p.json"
    assert main(["predict", "--baseline", str(BASELINE), "--backbone", "tiny-ar", "--k", "1,4", "--input-tokens",
                 "32", "--json", str(out)]) == 0
    cells = json.loads(out.read_text())["prediction"]["cells"]
    assert all(c["expected_ms"] > c["floor_ms"] > 0 for c in cells)


@pytest.mark.parametrize("argv,message", [
    (["predict"], "needs --baseline"),
    (["predict", "--backbone", "tiny-ar"], "needs a device"),
    (["predict", "--backbone", "tiny-ar", "--gpu", "tpu-v5"], "unknown GPU 'tpu-v5'"),
    (["predict", "--backbone", "tiny-ar", "--peak-flops", "1e12"], "go together"),
    (["predict", "--backbone", "tiny-ar", "--gpu", "h100-sxm", "--encoders", "parallel"], "does not run on tiny-ar"),
    (["predict", "--backbone", "nope", "--gpu", "h100-sxm"], "unknown backbone 'nope'"),
    (["predict", "--backbone", "tiny-ar", "--gpu", "h100-sxm", "--k", "0"], "--k"),
])
def test_predict_refuses_bad_requests_with_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_list_gpus_prints_every_row_with_its_source(capsys):
    assert main(["predict", "--list-gpus"]) == 0
    out = capsys.readouterr().out
    for key in ("h100-sxm", "h100-pcie", "h200", "a100-40gb", "a100-80gb", "l40s", "b200", "rtx-4090"):
        assert key in out
    assert out.count("source:") == 9
