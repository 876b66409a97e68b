"""Disk full: `repbench evaluate` on a small tmpfs that fills up mid-sweep must stop with a clear message
naming the file (exit 2, no traceback), keep everything already written intact, and, once space is
freed, resume to the same output as an uninterrupted run. Skipped where tmpfs cannot be mounted."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from repbench.cli import main

SIZE = 4 * 1024 * 1024


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    try:
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(mnt)],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot mount a tmpfs here ({exc})")
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=30)


def visible_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)}


@pytest.mark.slow
def test_disk_full_mid_sweep_is_clear_and_loses_nothing(tmp_path, small_disk, capsys):
    from repbench.encoders.types import Representations
    from repbench.evaluation.collections import synthetic_collection

    synthetic_collection(n_docs=80, n_queries=6, seed=3).save_beir(tmp_path / "syn")
    argv = ["evaluate", "--backbone", "tiny-ar", "--dataset", str(tmp_path / "syn"), "--kq", "1", "--kp", "1,3",
            "--modes", "single_dense,sparse_max", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "ref")]) == 0
    ref = visible_files(tmp_path / "ref")
    total = sum(len(b) for b in ref.values())

    # Leave room for about half of the output.
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (SIZE - total // 2 - 64 * 1024))
    capsys.readouterr()
    out = small_disk / "out"
    rc = main([*argv, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err and "internal error" not in err
    assert "No space left on device" in err and str(out) in err, err
    assert "disk full" in err

    # Nothing already written is damaged: every visible file is complete.
    partial = visible_files(out)
    assert partial, "nothing was written before the disk filled up"
    for name, data in partial.items():
        if name.endswith(".json"):
            json.loads(data)
        # a cached query side (<stem>.json) or a passage store's shard sidecar (<stem>/shard_NNNNN.json);
        # the store's config.json and manifest.json are whole JSON (checked above)
        if name.startswith("reps/") and name.endswith(".json") and Path(name).name not in {"config.json",
                                                                                           "manifest.json"}:
            Representations.load(out / name[:-len(".json")])
        if name in ref and Path(name).name not in {"metadata.json", "encoding_times.json"}:
            assert data == ref[name], f"{name} differs from the uninterrupted run"

    filler.unlink()
    assert main([*argv, "--out", str(out)]) == 0
    resumed = visible_files(out)
    assert sorted(resumed) == sorted(ref)
    assert all(resumed[n] == ref[n] for n in ref if Path(n).name not in {"metadata.json", "encoding_times.json"})
