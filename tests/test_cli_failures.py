"""The CLI's one failure rule, seen from a real process: a user error exits 2 with `file:line: expected`
and no traceback; a bug exits 3 with a one-line summary and the file holding its traceback; --debug and
REPBENCH_DEBUG=1 show the traceback instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def repbench(*args: str, env: dict | None = None, code: str | None = None, cwd: Path | None = None):
    """`python -m repbench.cli ARGS` (or a `python -c CODE` wrapper around it) in a fresh process."""
    full_env = {k: v for k, v in os.environ.items() if k != "REPBENCH_DEBUG"}
    full_env.update({"PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "HF_HUB_OFFLINE": "1",
                     "OMP_NUM_THREADS": "1", **(env or {})})
    cmd = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "repbench.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=300, cwd=cwd)


# A command whose run() has a bug (a ZeroDivisionError), reached through the real entry point.
BUGGY = ("import sys, repbench.commands.backbones as b; b.run = lambda args: 1 / 0; "
         "from repbench.cli import main; sys.exit(main(sys.argv[1:]))")


def test_user_error_exits_2_with_location_and_no_traceback(tmp_path):
    run = tmp_path / "r.trec"
    run.write_bytes(b"q1 Q0 d1 1 0.5 t\nq1 Q0 d\xff 2 0.4 t\n")
    (tmp_path / "q.txt").write_text("q1 0 d1 1\n")
    proc = repbench("eval-run", str(run), str(tmp_path / "q.txt"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"{run}:2:8: invalid UTF-8 (byte 0xff" in proc.stderr


def test_bad_measure_is_refused_before_anything_is_written(tmp_path):
    from repbench.evaluation.collections import synthetic_collection

    data = synthetic_collection(40, 4, seed=1).save_beir(tmp_path / "syn")
    out = tmp_path / "out"
    proc = repbench("evaluate", "--backbone", "tiny-ar", "--dataset", str(data), "--out", str(out),
                    "--measures", "ndcg_cut_10,ndcg_cut_x", "--no-progress")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "unknown measure 'ndcg_cut_x' (did you mean" in proc.stderr
    assert not out.exists()  # so the corrected command is not refused as "another sweep"


def test_measure_that_would_abort_pytrec_eval_is_refused(tmp_path):
    """pytrec_eval aborts the whole process (a C assertion) on recall_0: it must never get that far."""
    (tmp_path / "r.trec").write_text("q1 Q0 d1 1 0.5 t\n")
    (tmp_path / "q.txt").write_text("q1 0 d1 1\n")
    proc = repbench("eval-run", str(tmp_path / "r.trec"), str(tmp_path / "q.txt"), "--measures", "recall_0")
    assert proc.returncode == 2, proc.stderr
    assert "bad measure 'recall.0': cutoffs must be positive integers" in proc.stderr


def test_bug_exits_3_with_one_line_and_the_traceback_file(tmp_path):
    proc = repbench("backbones", code=BUGGY, env={"REPBENCH_LOG_DIR": str(tmp_path / "log")})
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == "repbench backbones: internal error: ZeroDivisionError: division by zero"
    logs = list((tmp_path / "log").glob("traceback-*.txt"))
    assert len(logs) == 1 and str(logs[0]) in proc.stderr
    text = logs[0].read_text()
    assert "Traceback (most recent call last)" in text and "ZeroDivisionError" in text


def test_debug_flag_and_env_show_the_traceback(tmp_path):
    for extra, env in ((["--debug"], {}), ([], {"REPBENCH_DEBUG": "1"})):
        proc = repbench("backbones", *extra, code=BUGGY, env={"REPBENCH_LOG_DIR": str(tmp_path / "log"), **env})
        assert proc.returncode == 1  # an uncaught exception
        assert "Traceback (most recent call last)" in proc.stderr and "ZeroDivisionError" in proc.stderr
    assert not (tmp_path / "log").exists()


def test_oserror_names_the_file(tmp_path):
    """An OSError escaping a command (here: --markdown into a path under a regular file) names the file."""
    import json

    from test_hostile_inputs import GOOD_BENCH

    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text(json.dumps(GOOD_BENCH))
    (tmp_path / "file").write_text("x")
    proc = repbench("compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--n-boot", "200",
                    "--markdown", str(tmp_path / "file" / "cmp.md"))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and str(tmp_path / "file") in proc.stderr


def test_a_failing_report_recipe_prints_one_line_and_keeps_its_traceback_in_a_file(tmp_path):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "fig_broken.py").write_text(
        '"""A recipe with a bug."""\nINPUTS = ()\nTITLE = "broken"\nSECTION = "latency"\n\n'
        "def run(results, out):\n    return [1 / 0]\n")
    (tmp_path / "results").mkdir()
    proc = repbench("report", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "rep"), "--no-pdf",
                    "--recipes", str(recipes))
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out
    assert "fig_broken: FAILED ZeroDivisionError: division by zero" in out
    log = tmp_path / "rep" / "recipe_failures.txt"
    assert str(log) in out and "Traceback" in log.read_text()


def test_output_piped_into_head_ends_quietly(tmp_path):
    """`repbench eval-run ... --per-query | head -1`: no BrokenPipeError traceback or error message."""
    run = "".join(f"q{i} Q0 d{j} {j} {1 / (j + 1)} t\n" for i in range(3000) for j in range(3))
    qrels = "".join(f"q{i} 0 d1 1\n" for i in range(3000))
    (tmp_path / "r.trec").write_text(run)
    (tmp_path / "q.txt").write_text(qrels)
    env = {k: v for k, v in os.environ.items() if k != "REPBENCH_DEBUG"}
    env["PYTHONPATH"] = f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    proc = subprocess.run(f"'{sys.executable}' -m repbench.cli eval-run r.trec q.txt --per-query | head -1",
                          shell=True, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.stdout.count("\n") == 1
    assert proc.stderr == "", proc.stderr
