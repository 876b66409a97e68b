"""bench/gpu_check.py: one line and exit 2 without CUDA; its commands use options that exist; the paper
comparison interpolates the paper's curve as hand-computed here."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from repbench.analysis.paper_latency import compare_with_paper, interpolate
from repbench.cli import COMMANDS
from repbench.schema.bench import BenchRun

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_check.py"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_without_cuda_one_line_and_exit_2(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--root", str(tmp_path / "baselines"),
                           "--work", str(tmp_path / "work")], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu-check: "), proc.stderr
    import torch

    if torch.version.cuda is None:  # this machine's torch: the line names the fix, the CUDA index URL
        assert "CPU-only build" in lines[0] and "--index-url https://download.pytorch.org/whl/cu" in lines[0]
    else:
        assert "no CUDA device" in lines[0]
    assert not (tmp_path / "baselines").exists() and not (tmp_path / "work").exists()  # failed before writing


def _declared_bench_options() -> set[str]:
    """Every option bench/conftest.py declares, read by calling its pytest_addoption (some names are
    generated from the model options' fields, so the file's text does not spell them out)."""
    names: set[str] = set()

    class Recorder:
        def getgroup(self, *args, **kwargs):
            return self

        def addoption(self, *opts, **kwargs):
            names.update(opts)

    saved = dict(os.environ)  # the conftest sets defaults in os.environ when imported
    try:
        spec = importlib.util.spec_from_file_location("bench_conftest", ROOT / "bench" / "conftest.py")
        conftest = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(conftest)
        conftest.pytest_addoption(Recorder())
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return names


def test_latency_command_uses_declared_options_and_the_issue_grid(tmp_path):
    cmd = _module().latency_command(tmp_path / "bench.json")
    flags = [a for a in cmd if a.startswith("--")]
    unknown = set(flags) - _declared_bench_options() - {"--benchmark-json"}
    assert not unknown, unknown
    opts = dict(zip(cmd, cmd[1:], strict=False))
    assert opts["--device"] == "cuda" and opts["--dtype"] == "bfloat16"
    assert opts["--backbones"] == "qwen2.5-7b-instruct:random,dream-7b-instruct:random"
    assert opts["--k"] == "1,4,16" and opts["--input-tokens"] == "32,128,512"
    assert opts["--benchmark-json"] == str(tmp_path / "bench.json")
    # docs/methodology.md rule 5 (>= 30 rounds, >= 2 s per cell) is not traded for speed.
    assert int(opts["--min-rounds"]) >= 30 and float(opts["--min-time"]) >= 2.0


def _parse(argv: list[str]) -> argparse.Namespace:
    assert argv[:3] == [sys.executable, "-m", "repbench.cli"]
    name = argv[3]
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=name, exit_on_error=False)
    module.add_arguments(parser)
    return parser.parse_args(argv[4:])


def test_repbench_commands_parse_with_the_real_cli(tmp_path):
    gc = _module()
    for cmd in gc.evaluate_commands(tmp_path / "synthetic", tmp_path / "eval"):
        args = _parse(cmd)
        assert args.device == "cuda" and args.kq == "1,4" and args.kp == "1,4"
    names = []
    for name, cmd in gc.compare_commands(tmp_path / "slug", tmp_path / "checks", tmp_path / "report"):
        _parse(cmd)
        names.append(name)
    assert names[0] == "dream vs qwen" and names[-1] == "report"


def test_dry_run_lists_every_step_without_cuda(tmp_path, capsys):
    assert _module().main(["--dry-run", "--root", str(tmp_path / "b"), "--work", str(tmp_path / "w")]) == 0
    out = capsys.readouterr().out
    for step in ("# latency", "# evaluate smollm2-135m-instruct", "# dream vs qwen", "# report"):
        assert step in out
    assert not (tmp_path / "b").exists()


def test_interpolation_against_hand_computed_values():
    xs, ys = np.array([416.0, 40.0, 790.0]), np.array([21.1, 15.5, 27.3])
    assert interpolate(xs, ys, 416) == (21.1, "read")
    value, how = interpolate(xs, ys, 128)
    assert how == "interpolated" and value == pytest.approx(15.5 + (128 - 40) / (416 - 40) * (21.1 - 15.5))
    value, how = interpolate(xs, ys, 32)  # below the first reading: the first segment's line, labelled
    assert how == "extrapolated" and value == pytest.approx(15.5 - 8 / 376 * 5.6)


def test_compare_with_paper_matches_base_backbone_encoder_and_k():
    def row(**kw):
        base = {"name": "x", "status": "ok", "reason": None, "backbone": None, "encoder": None, "k": None,
                "input_tokens": None, "batch_size": 1, "index_size": None, "k_p": None, "mode": None,
                "query_batch": None, "search_device": None, "n": 3}
        return {**base, **kw}

    cells = pd.DataFrame([
        row(backbone="qwen2.5-7b-instruct:random", encoder="sequential", k=1, input_tokens=128, median_s=0.0336212),
        row(backbone="qwen2.5-7b-instruct:random", encoder="sequential", k=16, input_tokens=128, median_s=0.5),
        row(backbone=None, encoder="search:dense", k=1, k_p=1, index_size=10000, query_batch=1,
            mode="single_dense", search_device="cpu (faiss-cpu)", median_s=0.00026),
        row(backbone=None, encoder="search:dense", k=1, k_p=1, index_size=10000, query_batch=32,
            mode="single_dense", median_s=0.001),
    ], dtype=object)
    cells["median_s"] = cells["median_s"].astype(float)
    paper_enc = pd.DataFrame({"backbone": ["qwen2.5-7b-instruct"] * 2, "encoder": ["sequential"] * 2, "k": [1, 1],
                              "input_tokens": [40, 416], "latency_ms": [15.5, 21.1], "source": ["s"] * 2})
    paper_search = pd.DataFrame({"mode": ["single_dense"], "k_p": [1], "index_size": [10000], "latency_ms": [0.13],
                                 "source": ["s"]})
    table = compare_with_paper(BenchRun(Path("x.json"), {}, cells), paper_enc, paper_search)
    assert len(table) == 2  # K=16 has no paper reading; the batch-32 search cell is not batch 1
    enc = table[table["kind"] == "encode"].iloc[0]
    paper_ms = 15.5 + 88 / 376 * 5.6
    assert enc["paper_ms"] == pytest.approx(paper_ms) and enc["ratio"] == pytest.approx(33.6212 / paper_ms)
    search = table[table["kind"] == "search"].iloc[0]
    assert search["ratio"] == pytest.approx(0.26 / 0.13) and search["paper_reading"] == "read"


def test_missing_energy_names_cells_without_a_reading(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"benchmarks": [
        {"name": "a", "extra_info": {"encoder": "sequential", "energy_j_per_query": 0.4}},
        {"name": "b", "extra_info": {"encoder": "parallel", "energy_j_per_query": None}},
        {"name": "c", "extra_info": {"encoder": "parallel", "status": "skipped"}},
        {"name": "d", "extra_info": {"encoder": "search:dense", "energy_j_per_query": None}}]}))
    assert _module().missing_energy(path) == ["b"]


def _slow_latency(monkeypatch, module, *, ignore_term: bool) -> None:
    """The latency step replaced by one that outlasts any budget here, so the test does not depend on how
    fast this machine runs the real smoke step (a fast CI machine finished it inside a 12-second budget)."""
    code = ("import signal, time\n"
            + ("signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" if ignore_term else "")
            + "time.sleep(120)\n")
    monkeypatch.setattr(module, "latency_command", lambda *a, **k: [sys.executable, "-c", code])


@pytest.mark.parametrize("ignore_term", [False, True], ids=["stops-on-TERM", "ignores-TERM"])
def test_the_budget_is_enforced_not_reported_after_the_fact(tmp_path, monkeypatch, capsys, ignore_term):
    """A step that would run for 2 minutes under a 6-second budget: it is stopped when the budget is spent
    (KILLed TERM_GRACE_S after a TERM it ignores), the later steps are never started, and the check exits 1."""
    module = _module()
    _slow_latency(monkeypatch, module, ignore_term=ignore_term)
    monkeypatch.setattr(module, "TERM_GRACE_S", 2)  # the real 10 s would only make the test wait
    budget = 6
    t0 = time.monotonic()
    rc = module.main(["--smoke", "--budget", str(budget), "--root", str(tmp_path / "baselines"),
                      "--work", str(tmp_path / "work")])
    wall = time.monotonic() - t0
    out, err = capsys.readouterr()
    assert rc == 1, out[-2000:] + err[-2000:]
    grace = module.TERM_GRACE_S if ignore_term else 0  # TERM, then KILL after the grace
    assert wall < budget + grace + 8, wall
    (baseline,) = (tmp_path / "baselines").iterdir()
    log = json.loads((baseline / "gpu-check" / "gpu_check_log.json").read_text())
    rcs = {s["step"]: s["rc"] for s in log["steps"]}
    assert rcs["latency"] == 124 and log["steps"][0]["seconds"] <= budget + grace + 2
    assert len(rcs) > 1 and all(rc is None for step, rc in rcs.items() if step != "latency")  # not started
    assert "budget is spent" in err and "FAILED: latency" in out
    assert "[gpu-check phase: setup" in out and "[gpu-check phase: latency (exit 124)" in out


def test_a_latency_step_that_writes_no_bench_json_fails_in_one_line(tmp_path, monkeypatch, capsys):
    """pytest-benchmark disabled (--benchmark-disable in PYTEST_ADDOPTS, or a child that believes it is an xdist
    worker) exits 0 and writes nothing: the check names it instead of a traceback from reading the file. The steps
    run without xdist's worker variables, whatever the check was started from."""
    module = _module()
    seen = tmp_path / "xdist_vars.json"
    code = f"import json, os; json.dump(sorted(k for k in os.environ if 'XDIST' in k), open({str(seen)!r}, 'w'))"
    monkeypatch.setattr(module, "latency_command", lambda *a, **k: [sys.executable, "-c", code])
    monkeypatch.setattr(module, "evaluate_commands",
                        lambda dataset, out, grid: [[sys.executable, "-c", "raise SystemExit(3)"]
                                                    for _ in grid.eval_backbones])
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw7")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "8")
    rc = module.main(["--smoke", "--root", str(tmp_path / "baselines"), "--work", str(tmp_path / "work")])
    out, err = capsys.readouterr()
    assert rc == 1, out[-2000:] + err[-2000:]
    assert json.loads(seen.read_text()) == []
    assert "the latency step exited 0 but wrote no" in err and "bench.json" in err and "Traceback" not in err
    assert "FAILED: latency" in out


def test_torch_build_check_names_the_cuda_index(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--torch-build"], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    import torch

    if torch.version.cuda is not None:
        assert proc.returncode == 0 and proc.stderr == ""
        return
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    assert "CPU-only build" in line and f"torch=={torch.__version__.split('+')[0]}" in line
    assert "--index-url https://download.pytorch.org/whl/cu" in line


def test_make_install_cuda_refuses_a_cpu_only_torch():
    """`make install CUDA=1` (what `make gpu-check` asks for) refuses this machine's CPU-only torch."""
    import torch

    if torch.version.cuda is not None or not (ROOT / ".venv" / ".installed").is_file():
        pytest.skip("needs this checkout's installed venv with a CPU-only torch")
    proc = subprocess.run(["make", "-s", "install", "CUDA=1"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "gpu-check: torch" in proc.stderr and "CPU-only build" in proc.stderr and "whl/cu" in proc.stderr


@pytest.mark.slow
def test_smoke_run_on_cpu_writes_the_baseline_and_comparisons(tmp_path):
    """Every step's glue on CPU with the tiny-scale pair (~80 s on 2 cores): files land where documented."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    root, work = tmp_path / "baselines", tmp_path / "work"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--root", str(root), "--work", str(work)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (baseline,) = root.iterdir()
    assert baseline.name.endswith("-smoke")
    for name in ("bench.json", "per_query.csv", "metadata.json", "gpu-check/paper_latency.md",
                 "gpu-check/dream_vs_qwen.md", "gpu-check/gpu_check_log.json"):
        assert (baseline / name).is_file(), name
    per_query = pd.read_csv(baseline / "per_query.csv")
    assert set(per_query["backbone"]) == {"tiny-ar", "tiny-diffusion"}
    paper = pd.read_csv(baseline / "gpu-check" / "paper_latency.csv")
    assert set(paper["kind"]) == {"encode", "search"}
    assert (work / "report" / "report.pdf").read_bytes().startswith(b"%PDF")


def test_the_baseline_folder_is_the_gpu_that_runs(monkeypatch):
    """torch's current device after CUDA_VISIBLE_DEVICES (here the one visible GPU of an 8-GPU node)."""
    import torch

    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: {0: "NVIDIA H100 80GB HBM3"}[i])
    assert _module().gpu_slug() == "nvidia-h100-80gb-hbm3"


def test_offline_without_a_bundle_is_one_line_and_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--offline", str(tmp_path), "--root", str(tmp_path / "b")],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    assert "is not a bundle (no manifest.json)" in line and "repbench bundle DIR" in line
    assert not (tmp_path / "b").exists()
