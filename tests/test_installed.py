"""A real, non-editable install (`pip install --target`, i.e. a built wheel, no checkout on the path)
runs `repbench report` and `repbench demo --skip-bench`: the recipes and paper tables ship in the package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    # Build from a copy: pip builds in the source tree and would leave build/ and egg-info there.
    src = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    wheels = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(wheels), str(src)], check=True, timeout=300)
    (wheel,) = wheels.glob("repbench-*.whl")
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target",
                    str(target), str(wheel)], check=True, timeout=300)
    names = zipfile.ZipFile(wheel).namelist()
    assert "repbench/recipes/tab_effectiveness.py" in names and "repbench/recipes/paper/teaser_beir7.csv" in names
    return target


def _repbench(target: Path, cwd: Path, *args: str, timeout: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(target), "HF_HUB_OFFLINE": "1"}
    env.pop("REPBENCH_RECIPES", None)
    return subprocess.run([sys.executable, "-c", "import sys, repbench, repbench.cli; "
                           "print('repbench from', repbench.__file__, file=sys.stderr); "
                           "sys.exit(repbench.cli.main(sys.argv[1:]))", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _from_install(proc: subprocess.CompletedProcess, target: Path) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    line = next(x for x in proc.stderr.splitlines() if x.startswith("repbench from"))
    assert line.split(" from ", 1)[1].startswith(str(target)), line


def test_report_from_installed_package(installed, report_results, tmp_path):
    results = report_results  # fx.full_results, built once per session (read-only: the report writes to out)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    proc = _repbench(installed, elsewhere, "report", "--results", str(results), "--out", str(tmp_path / "out"),
                     "--no-pdf", timeout=300)
    _from_install(proc, installed)
    tex = (tmp_path / "out" / "report.tex").read_text()
    assert r"\input{tables/tab_effectiveness.tex}" in tex and (tmp_path / "out" / "figures").is_dir()
    # the paper tables came from the package (the results hold none): the figures show the paper's readings
    assert not (results / "paper").exists()
    caption = (tmp_path / "out" / "figures" / "fig_search_latency.caption.txt").read_text()
    assert "the paper's H100 readings" in caption


@pytest.mark.slow
def test_demo_skip_bench_from_installed_package(installed, tmp_path):
    proc = _repbench(installed, tmp_path, "demo", "--out", str(tmp_path / "results"), "--report",
                     str(tmp_path / "report"), "--docs", "10", "--queries", "3", "--doc-len", "6", "--skip-bench",
                     "--no-pdf", timeout=900)
    _from_install(proc, installed)
    assert (tmp_path / "results" / "analysis" / "significance.csv").is_file()
    assert (tmp_path / "report" / "report.md").is_file() and (tmp_path / "report" / "report.tex").is_file()
