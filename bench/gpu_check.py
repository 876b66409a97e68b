"""One-call GPU check (`make gpu-check`, or `python bench/gpu_check.py`): a new CUDA machine's baseline in
under 8 minutes, and how it compares with the paper and with the stored CPU baseline.

Steps (each a public command, run as a subprocess so one failing step leaves the others' files):
  1. latency: bench/ at full scale, qwen2.5-7b-instruct:random (sequential) vs dream-7b-instruct:random
     (parallel), bfloat16, K 1,4,16, input tokens 32,128,512, batch 1, NVML energy; plus a small search sweep
     (dense and exact MaxSim, index sizes 1K/10K/100K, K_p 1,4,16, query batch 1)
     -> results/baselines/<gpu-slug>/bench.json
  2. effectiveness on CUDA: `repbench evaluate` of the demo's sweep (SmolLM2-135M sequential and its
     bidirectional parallel ablation, K_q, K_p in {1,4}, five modes) on the demo's seeded synthetic collection
     -> results/baselines/<gpu-slug>/per_query.csv (+ metadata.json)
  3. comparisons, under results/baselines/<gpu-slug>/gpu-check/: Dream vs Qwen per cell (`repbench compare
     --by backbone`), measured vs the paper's H100 readings (repbench/recipes/paper/*.csv), CUDA effectiveness vs the
     CPU baseline (`repbench compare`), and `repbench report` (figures beside the paper's series, report.pdf).
Without CUDA it stops at once: one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CPU_BASELINE = ROOT / "results" / "baselines" / "cpu-amd-epyc-2t" / "per_query.csv"
BUDGET_S = 8 * 60
NO_CUDA_EXIT = 2


@dataclass(frozen=True)
class Grid:
    device: str = "cuda"
    dtype: str = "bfloat16"
    pair: tuple[str, str] = ("qwen2.5-7b-instruct:random", "dream-7b-instruct:random")
    k: str = "1,4,16"
    input_tokens: str = "32,128,512"
    # methodology rule 5 (>= 30 rounds, >= 2 s) holds; the cap bounds the slowest (K=16 sequential) cells
    timing: tuple[str, ...] = ("--min-rounds", "30", "--min-time", "2.0", "--max-time", "12")
    search_sizes: str = "1000,10000,100000"
    eval_backbones: tuple[str, ...] = ("smollm2-135m-instruct", "smollm2-135m-instruct:bidirectional")


FULL = Grid()
# --smoke: the same steps on CPU with the tiny-scale pair and tiny sweeps, to check the glue without a GPU.
SMOKE = Grid(device="cpu", dtype="float32", pair=("qwen2.5-7b-instruct:random:tiny", "dream-7b-instruct:random:tiny"),
             k="1,4", input_tokens="32", timing=("--min-rounds", "5", "--min-time", "0.05", "--max-time", "0.5",
                                                 "--warmup", "2"),
             search_sizes="1000", eval_backbones=("tiny-ar", "tiny-diffusion"))


def latency_command(bench_json: Path, grid: Grid = FULL) -> list[str]:
    """pytest bench/ with the check's grid; option names are those of bench/conftest.py."""
    return [sys.executable, "-m", "pytest", str(ROOT / "bench" / "test_encode_latency.py"),
            str(ROOT / "bench" / "test_search_latency.py"), "-q", "-p", "no:cacheprovider",
            "--device", grid.device, "--dtype", grid.dtype, "--attn", "sdpa", "--backbones", ",".join(grid.pair),
            "--encoders", "default", "--k", grid.k, "--input-tokens", grid.input_tokens, "--batch-size", "1",
            *grid.timing, "--energy-window", "0.5", "--search-kinds", "dense,maxsim",
            "--search-sizes", grid.search_sizes, "--search-kp", "1,4,16", "--search-batch", "1",
            "--benchmark-json", str(bench_json)]


def evaluate_commands(dataset: Path, work: Path, grid: Grid = FULL) -> list[list[str]]:
    return [[sys.executable, "-m", "repbench.cli", "evaluate", "--backbone", bb, "--dataset", str(dataset),
             "--kq", "1,4", "--kp", "1,4", "--modes", "all", "--max-length", "128", "--device", grid.device,
             "--dtype", "float32", "--no-progress", "--out", str(work / bb.replace(":", "_"))]
            for bb in grid.eval_backbones]


def compare_commands(baseline: Path, checks: Path, report: Path, grid: Grid = FULL) -> list[tuple[str, list[str]]]:
    cli = [sys.executable, "-m", "repbench.cli"]
    steps = [("dream vs qwen", [*cli, "compare", str(baseline / "bench.json"), "--by", "backbone",
                                "--base-backbone", grid.pair[0], "--new-backbone", grid.pair[1], "--any-encoder",
                                "--markdown", str(checks / "dream_vs_qwen.md"),
                                "--figure", str(checks / "dream_vs_qwen.png")])]
    if CPU_BASELINE.is_file():
        steps.append(("effectiveness vs CPU baseline", [*cli, "compare", str(CPU_BASELINE),
                                                          str(baseline / "per_query.csv"),
                                                          "--markdown", str(checks / "effectiveness_vs_cpu.md")]))
    steps.append(("report", [*cli, "report", "--results", str(baseline), "--out", str(report)]))
    return steps


def cuda_problem() -> str | None:
    """None when a CUDA device is usable, else the one-line reason."""
    try:
        import torch
    except ImportError as exc:
        return f"torch is not importable ({exc}); run `make install` first"
    if not torch.cuda.is_available():
        build = torch.version.cuda
        return (f"no CUDA device (torch {torch.__version__}, "
                + (f"built for CUDA {build}, but none is visible" if build else "a CPU-only build")
                + "); run it on a machine with an NVIDIA GPU and a CUDA build of torch")
    return None


def _run(name: str, cmd: list[str], log: list[dict], deadline: float, env: dict[str, str]) -> bool:
    print(f"\n=== gpu-check: {name} ===\n$ {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    timeout = max(30.0, deadline - time.monotonic())
    try:
        rc = subprocess.call(cmd, cwd=ROOT, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        rc = 124
        print(f"gpu-check: {name} stopped after {timeout:.0f} s (over the {BUDGET_S // 60}-minute budget)",
              file=sys.stderr)
    log.append({"step": name, "rc": rc, "seconds": round(time.perf_counter() - t0, 1), "command": cmd})
    print(f"[{name}: exit {rc}, {log[-1]['seconds']:.0f} s]", flush=True)
    return rc == 0


def _merge_sweeps(work: Path, baseline: Path, grid: Grid) -> None:
    """The two sweeps' per_query.csv as one table, with the first sweep's header naming both backbones."""
    import pandas as pd

    from repbench.io import atomic_write_csv, atomic_write_json

    dirs = [work / bb.replace(":", "_") for bb in grid.eval_backbones]
    atomic_write_csv(baseline / "per_query.csv", pd.concat([pd.read_csv(d / "per_query.csv") for d in dirs]))
    header = json.loads((dirs[0] / "metadata.json").read_text(encoding="utf-8"))
    header["config"] = {**header.get("config", {}), "backbone": list(grid.eval_backbones)}
    atomic_write_json(baseline / "metadata.json", header)


def missing_energy(bench_json: Path) -> list[str]:
    """Names of measured encoding cells without an NVML energy reading (the check needs energy on a GPU)."""
    obj = json.loads(Path(bench_json).read_text(encoding="utf-8"))
    return [b.get("name", "?") for b in obj.get("benchmarks", [])
            if (b.get("extra_info") or {}).get("encoder") in ("sequential", "parallel")
            and (b.get("extra_info") or {}).get("status", "ok") == "ok"
            and (b.get("extra_info") or {}).get("energy_j_per_query") is None]


def _paper_comparison(baseline: Path, checks: Path) -> None:
    from repbench.analysis.paper_latency import compare_with_paper, paper_markdown
    from repbench.io import atomic_write_csv, atomic_write_text
    from repbench.report.inputs import load_paper
    from repbench.schema.bench import read_bench

    run = read_bench(baseline / "bench.json")
    # load_paper: <baseline>/paper/ when present, else the paper tables shipped in repbench/recipes/paper/
    table = compare_with_paper(run, load_paper(baseline, "encoding_latency_vs_length"),
                               load_paper(baseline, "search_latency_vs_index_size"))
    atomic_write_csv(checks / "paper_latency.csv", table)
    atomic_write_text(checks / "paper_latency.md", paper_markdown(table, baseline.name))
    print((checks / "paper_latency.md").read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT / "results" / "baselines",
                        help="baselines directory (default results/baselines); the check writes <root>/<gpu-slug>/")
    parser.add_argument("--work", type=Path, default=ROOT / "results" / "gpu-check",
                        help="scratch directory for the collection and the sweeps (default results/gpu-check)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands and exit")
    parser.add_argument("--smoke", action="store_true",
                        help="on CPU, tiny-scale pair and sweeps: checks the steps' glue, measures nothing useful")
    args = parser.parse_args(argv)
    grid = SMOKE if args.smoke else FULL
    problem = None if args.dry_run or args.smoke else cuda_problem()
    if problem:
        print(f"gpu-check: {problem}", file=sys.stderr)
        return NO_CUDA_EXIT
    t_start, deadline = time.perf_counter(), time.monotonic() + BUDGET_S
    sys.path.insert(0, str(ROOT / "src"))
    from repbench.analysis.baselines import device_slug
    from repbench.telemetry.environment import capture_environment

    slug = "<gpu-slug>" if args.dry_run else device_slug(capture_environment()) + ("-smoke" if args.smoke else "")
    baseline, work = args.root / slug, args.work
    checks, dataset = baseline / "gpu-check", work / "synthetic"
    steps = [("latency", latency_command(baseline / "bench.json", grid))]
    steps += [(f"evaluate {bb}", cmd) for bb, cmd in zip(grid.eval_backbones,
                                                          evaluate_commands(dataset, work / "eval", grid), strict=True)]
    if args.dry_run:
        for name, cmd in steps + compare_commands(baseline, checks, work / "report", grid):
            print(f"# {name}\n{' '.join(cmd)}")
        return 0
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    checks.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(work / "eval", ignore_errors=True)  # a fresh sweep: a resumed one would not time this GPU
    from repbench.evaluation.collections import synthetic_collection

    # The demo's collection (repbench demo defaults), so the CUDA sweep is comparable with the CPU baseline's.
    synthetic_collection(n_docs=60, n_queries=12, doc_len=16, seed=0).save_beir(dataset)
    log: list[dict] = []
    ok = {name: _run(name, cmd, log, deadline, env) for name, cmd in steps}
    if all(ok[n] for n, _ in steps[1:]):
        _merge_sweeps(work / "eval", baseline, grid)
    if ok["latency"]:
        if grid.device == "cuda":
            no_energy = missing_energy(baseline / "bench.json")
            ok["NVML energy"] = not no_energy
            if no_energy:
                print(f"gpu-check: {len(no_energy)} encoding cells have no NVML energy (e.g. {no_energy[0]}); "
                      "see machine_info.repbench.telemetry_note in bench.json", file=sys.stderr)
        _paper_comparison(baseline, checks)
        for name, cmd in compare_commands(baseline, checks, work / "report", grid):
            ok[name] = _run(name, cmd, log, deadline, env)
    total = time.perf_counter() - t_start
    summary = {"slug": slug, "total_s": round(total, 1), "budget_s": BUDGET_S, "steps": log}
    (checks / "gpu_check_log.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    failed = [n for n, good in ok.items() if not good]
    print(f"\ngpu-check: {total:.0f} s (budget {BUDGET_S} s){'; FAILED: ' + ', '.join(failed) if failed else ''}")
    print(f"baseline: {baseline.resolve()}  (bench.json, per_query.csv, metadata.json; gpu-check/ comparisons)")
    print(f"report:   {(work / 'report' / 'report.pdf').resolve()}")
    return 1 if failed or total > BUDGET_S else 0


if __name__ == "__main__":
    sys.exit(main())
