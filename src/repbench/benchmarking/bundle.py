"""`repbench bundle DIR`: what an offline CUDA node needs to run the GPU check, beyond its own stack.

The node is assumed to have the usual scientific stack (USUAL_STACK: a CUDA PyTorch from a module or a
container, transformers, numpy, ...). The bundle adds the project's wheel, wheels of the packages
repbench needs that such a stack lacks (faiss-cpu, pytrec-eval-terrier and a few small pure-Python
ones) for each target Python, the SmolLM2 tokenizer files (the `:random` backbones tokenise with it;
the 94 MB GGUF is left out) and the check's own files (bench/, the stored CPU baseline). On the node,
`python DIR/bench/gpu_check.py --offline DIR` installs from DIR with `pip --no-index` and runs.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from repbench.errors import RepbenchError

LIMIT_BYTES = 40 * 2**20
USUAL_STACK = ("torch", "transformers", "numpy", "pandas", "scipy", "matplotlib", "seaborn", "pytest",
               "pytest-benchmark", "nvidia-ml-py", "safetensors", "tokenizers")
# Beyond the usual stack, what the GPU check imports: (distribution, wheels differ per Python version)
EXTRA = (("faiss-cpu", False), ("pytrec-eval-terrier", True), ("psutil", False), ("platformdirs", False),
         ("rich", False), ("markdown-it-py", False), ("mdurl", False), ("pygments", False))
PYTHONS = ("3.11", "3.12", "3.13")
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_27_x86_64", "manylinux_2_28_x86_64")
BENCH_FILES = ("gpu_check.py", "conftest.py", "test_encode_latency.py", "test_search_latency.py")
CPU_BASELINE = Path("results") / "baselines" / "cpu-amd-epyc-2t"
MANIFEST = "manifest.json"


def source_root() -> Path:
    """The checkout this repbench runs from (the wheel is built from it)."""
    import repbench

    root = Path(repbench.__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file() or not (root / "bench" / "gpu_check.py").is_file():
        raise RepbenchError(f"repbench bundle builds the project's wheel from a source checkout; {root} is not one "
                            "(run it from the repository, after `make install`)")
    return root


def _pip(*args: str, timeout: float = 900) -> None:
    cmd = [sys.executable, "-m", "pip", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RepbenchError(f"`pip {' '.join(args[:2])} ...` failed (exit {proc.returncode}): {tail[0]}")


def build_wheel(root: Path, dest: Path) -> Path:
    """The project's wheel, built from a copy of the sources (pip leaves build/ and egg-info behind)."""
    with tempfile.TemporaryDirectory(prefix="repbench-src-") as tmp:
        src = Path(tmp)
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(root / name, src / name)
        shutil.copytree(root / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        _pip("wheel", "-q", "--no-deps", "--no-build-isolation", "--wheel-dir", str(dest), str(src))
    (wheel,) = dest.glob("repbench-*.whl")
    return wheel


def download_wheels(dest: Path, pythons: tuple[str, ...], platforms: tuple[str, ...] = PLATFORMS) -> list[str]:
    """Wheels of EXTRA at the versions installed here, for each target Python (binary ones per version)."""
    names = []
    for dist, per_python in EXTRA:
        pin = f"{dist}=={importlib.metadata.version(dist)}"
        names.append(dist)
        for py in (pythons if per_python else pythons[:1]):
            plat = [a for p in platforms for a in ("--platform", p)]
            _pip("download", "-q", "--no-deps", "--only-binary=:all:", "--dest", str(dest), "--python-version", py,
                 "--implementation", "cp", *plat, pin)
    return names


def copy_tokenizer(dest: Path) -> None:
    from repbench.backbones.smollm2 import TOKENIZER_FILES, tokenizer_dir

    src = tokenizer_dir()
    dest.mkdir(parents=True)
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy(src / name, dest / name)
    if not (dest / "tokenizer.json").is_file():
        raise RepbenchError(f"no tokenizer.json in {src}")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_bundle(out: str | os.PathLike, pythons: tuple[str, ...] = PYTHONS,
                 say: Callable[[str], None] = print) -> dict[str, Any]:
    """Write the bundle to `out` (absent or empty): built next to it, then moved into place, so a failed
    build leaves nothing half-written. Returns the manifest."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RepbenchError(f"{out} exists and is not an empty directory; the bundle needs a new one")
    root = source_root()
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-"))
    try:
        t0 = time.perf_counter()
        wheels = work / "wheels"
        wheel = build_wheel(root, wheels)
        say(f"bundle: project wheel {wheel.name} ({time.perf_counter() - t0:.0f} s)")
        t1 = time.perf_counter()
        install = ["repbench", *download_wheels(wheels, pythons)]
        say(f"bundle: wheels of {', '.join(install[1:])} for Python {', '.join(pythons)} "
            f"({time.perf_counter() - t1:.0f} s)")
        copy_tokenizer(work / "smollm2-tokenizer")
        (work / "bench").mkdir()
        for name in BENCH_FILES:
            shutil.copy(root / "bench" / name, work / "bench" / name)
        if (root / CPU_BASELINE).is_dir():
            (work / CPU_BASELINE).mkdir(parents=True)
            for name in ("per_query.csv", "metadata.json"):
                shutil.copy(root / CPU_BASELINE / name, work / CPU_BASELINE / name)
        files = sorted(p for p in work.rglob("*") if p.is_file())
        total = sum(p.stat().st_size for p in files)
        manifest = {
            "repbench": importlib.metadata.version("repbench"), "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "pythons": list(pythons), "platforms": list(PLATFORMS), "install": install, "usual_stack": list(USUAL_STACK),
            "tokenizer": "smollm2-tokenizer", "total_bytes": total,
            "files": {str(p.relative_to(work)): {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in files},
        }
        if total > LIMIT_BYTES:
            raise RepbenchError(f"the bundle would hold {total / 2**20:.1f} MiB, over its {LIMIT_BYTES // 2**20} MiB limit")
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            out.rmdir()
        os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    say(f"bundle: {out} ({total / 2**20:.1f} MiB, {len(manifest['files'])} files); on the GPU node: "
        f"python {out}/bench/gpu_check.py --offline {out}")
    return manifest
