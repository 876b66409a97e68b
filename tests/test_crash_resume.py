"""SIGKILL `repbench evaluate` and `repbench encode` at seeded random points, then resume: the finished
output must be byte-identical to an uninterrupted run's (tests/crash_driver.py does the killing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DRIVER = Path(__file__).with_name("crash_driver.py")
# Files that record wall-clock times or UTC timestamps, so differ between any two runs.
TIMED = {"metadata.json", "encoding_times.json", "manifest.json"}


def drive(tmp: Path, seed: int, kills: int, trigger: str, argv: list[str]) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "REPBENCH_LOG_DIR": str(tmp / "log")}
    proc = subprocess.run(
        [sys.executable, str(DRIVER), "--seed", str(seed), "--kills", str(kills), "--trigger", trigger,
         "--ref-out", str(tmp / "ref"), "--out", str(tmp / "killed"), "--", *argv],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["final_code"] == 0, proc.stderr[-3000:]
    print(report)  # the kill points, shown with -s
    return report


def files(root: Path) -> dict[str, bytes]:
    """Every visible file under root (temp files of interrupted writes are hidden, .name.*.tmp)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)}


def assert_same_output(ref: Path, killed: Path) -> None:
    a, b = files(ref), files(killed)
    assert sorted(a) == sorted(b)
    differ = [name for name in a if Path(name).name not in TIMED and a[name] != b[name]]
    assert not differ, f"resumed output differs from the uninterrupted run: {differ}"
    for name in a:
        if Path(name).name in TIMED:
            json.loads(b[name])  # complete, parseable


@pytest.mark.slow
def test_sigkilled_evaluate_resumes_to_identical_output(tmp_path):
    from repbench.evaluation.collections import synthetic_collection

    synthetic_collection(n_docs=120, n_queries=8, seed=3).save_beir(tmp_path / "syn")
    report = drive(tmp_path, seed=12, kills=4, trigger="sweep_state.json", argv=[
        "evaluate", "--backbone", "tiny-ar", "--dataset", str(tmp_path / "syn"), "--kq", "1,2", "--kp", "1,3",
        "--modes", "single_dense,sparse_max", "--out", "{out}", "--no-progress"])
    assert len(report["delays_s"]) == 4
    assert_same_output(tmp_path / "ref", tmp_path / "killed")
    assert (tmp_path / "killed" / "per_query.csv").stat().st_size > 0


@pytest.mark.slow
def test_sigkilled_encode_resumes_to_identical_shards(tmp_path):
    from repbench.evaluation.collections import synthetic_collection

    synthetic_collection(n_docs=90, n_queries=3, seed=4).save_beir(tmp_path / "syn")
    drive(tmp_path, seed=13, kills=4, trigger="config.json", argv=[
        "encode", str(tmp_path / "syn" / "corpus.jsonl"), "--backbone", "tiny-diffusion", "--device", "cpu",
        "--k", "2", "--shard-size", "10", "--batch-size", "4", "--out", "{out}"])
    assert_same_output(tmp_path / "ref", tmp_path / "killed")
    assert len(list((tmp_path / "killed").glob("shard_*.safetensors"))) == 9
