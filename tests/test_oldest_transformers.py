"""The encoder and forward tests against the oldest transformers pyproject.toml supports (its lower bound).

A second venv sees this checkout's venv (torch and the rest) through a .pth file, with the oldest
supported transformers, and the version pins it needs (huggingface-hub < 2), installed in front by pip
from its cache or the package registry. Slow: CI runs it.
"""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
import tomllib
import venv
from pathlib import Path

import pytest
from child_env import child_env

ROOT = Path(__file__).resolve().parents[1]
SUITES = ["tests/test_backbone_forward.py", "tests/test_core_encoders.py", "tests/test_core_encoder_exactness.py",
          "tests/test_encoder_signals.py", "tests/test_device_placement.py", "tests/test_cuda_paths_on_cpu.py"]


def oldest_transformers() -> str:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (spec,) = [d for d in deps if re.match(r"transformers\b", d)]
    return re.search(r">=\s*([0-9.]+)", spec).group(1)


@pytest.mark.slow
def test_encoders_and_forward_pass_on_the_oldest_supported_transformers(tmp_path):
    oldest = oldest_transformers()
    assert oldest == "5.17"  # what the common CUDA image we target ships; lowering it needs this test green
    env_dir = tmp_path / "oldest"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    base = sysconfig.get_paths()["purelib"]  # this venv: torch, the test tools, repbench (editable)
    Path(site, "zz_base.pth").write_text(f"import site; site.addsitedir({base!r})\n")
    env = child_env(HF_HUB_OFFLINE="1")
    env.pop("PYTHONPATH", None)
    pip = subprocess.run([str(python), "-m", "pip", "install", "-q", f"transformers=={oldest}.*"],
                         capture_output=True, text=True, timeout=900, env=env)
    assert pip.returncode == 0, pip.stderr[-3000:]
    probe = subprocess.run([str(python), "-c", "import transformers, repbench; print(transformers.__version__, "
                            "transformers.__file__, repbench.__file__)"], capture_output=True, text=True, env=env)
    version, where, ours = probe.stdout.split()
    assert version.startswith(oldest + ".") and where.startswith(site), probe.stdout
    assert ours.startswith(str(ROOT)), ours  # this checkout's code under test
    proc = subprocess.run([str(python), "-m", "pytest", *SUITES, "-q", "-m", "not slow", "-p", "no:cacheprovider"],
                          cwd=ROOT, capture_output=True, text=True, timeout=3600, env=env)
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    print(f"transformers {version}: {summary}", file=sys.stderr)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert re.search(r"\d+ passed", summary) and "failed" not in summary
