"""A real, non-editable install of repbench (`pip wheel` from a copy of the checkout, `pip install --target`)
and a runner for its CLI: the report tests render the session's report through it (tests/conftest.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def install(tmp_path_factory) -> Path:
    """Build a wheel and install it into a fresh --target directory; returns that directory."""
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


def repbench_popen(target: Path, cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`repbench ARGS` from the install at `target` only (PYTHONPATH), printing where repbench came from;
    started, not waited for."""
    env = {**os.environ, "PYTHONPATH": str(target), "HF_HUB_OFFLINE": "1", **(env or {})}
    env.pop("REPBENCH_RECIPES", None)
    return subprocess.Popen([sys.executable, "-c", "import sys, repbench, repbench.cli; "
                             "print('repbench from', repbench.__file__, file=sys.stderr); "
                             "sys.exit(repbench.cli.main(sys.argv[1:]))", *args],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: int) -> subprocess.CompletedProcess:
    """Wait for a started run (killed past `timeout` seconds) and return it as subprocess.run would."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run_repbench(target: Path, cwd: Path, *args: str, timeout: int,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return finish(repbench_popen(target, cwd, *args, env=env), timeout)


def assert_from_install(proc: subprocess.CompletedProcess, target: Path) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    line = next(x for x in proc.stderr.splitlines() if x.startswith("repbench from"))
    assert line.split(" from ", 1)[1].startswith(str(target)), line
