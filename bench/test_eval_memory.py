"""`repbench evaluate` peak memory against corpus size: the passage side streams from a store, so peak RSS
is bounded by --max-memory and one shard, not by the number of passages (issue 20, item 4).

Each size runs the whole command (encode both sides, score every mode, write the outputs) in a fresh
process, whose own high-water RSS (VmHWM) is read at its end. Sizes: REPBENCH_EVAL_SIZES (default
10000,100000 passages of a seeded synthetic collection, 50 judged queries); backbones:
REPBENCH_EVAL_BACKBONES (default the tiny pair, tiny-ar,tiny-diffusion); K_q = 1, K_p = 16, all modes,
--max-memory 512MiB, one thread. Collections are kept under REPBENCH_EVAL_ROOT (default: pytest's temp
dir) and reused. Goal, as a ratio inside this run between the two largest sizes: peak RSS grows < 1.3x.
Before the sweep streamed, the same run held every encoding: 1.8 GB at 10k, 8.0 GB at 50k (issue 20).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

SIZES = [int(x) for x in os.environ.get("REPBENCH_EVAL_SIZES", "10000,100000").split(",")]
BACKBONES = os.environ.get("REPBENCH_EVAL_BACKBONES", "tiny-ar,tiny-diffusion").split(",")
MAX_MEMORY = os.environ.get("REPBENCH_EVAL_MAX_MEMORY", "512MiB")

_CHILD = ("import json, sys\n"
          "from repbench.cli import main\n"
          "from repbench.retrieval.scale import _peak_rss\n"
          "rc = main(sys.argv[1:])\n"
          "print(json.dumps({'rc': rc, 'peak_rss_bytes': _peak_rss()}))\n")


def _collection(root: Path, n: int) -> Path:
    from repbench.evaluation.collections import synthetic_collection

    path = root / f"syn{n}"
    if not (path / "corpus.jsonl").exists():
        synthetic_collection(n, 50, seed=0).save_beir(path)
    return path


def _evaluate(data: Path, backbone: str, out: Path) -> dict:
    argv = ["evaluate", "--backbone", backbone, "--dataset", str(data), "--kq", "1", "--kp", "16", "--modes", "all",
            "--max-memory", MAX_MEMORY, "--threads", "1", "--no-progress", "--depth", "100", "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD, *argv], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"})
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"evaluate failed ({proc.returncode}): {proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["rc"] == 0, proc.stderr[-2000:]
    return {"seconds": seconds, "peak_rss_bytes": result["peak_rss_bytes"]}


def test_evaluate_peak_memory_is_flat_in_corpus_size(benchmark, goal, tmp_path_factory):
    root = Path(os.environ.get("REPBENCH_EVAL_ROOT") or tmp_path_factory.mktemp("evalmem"))
    root.mkdir(parents=True, exist_ok=True)
    data = {n: _collection(root, n) for n in SIZES}
    results: dict[str, dict[int, dict]] = {b: {} for b in BACKBONES}

    def run_all() -> None:
        for backbone in BACKBONES:  # sizes interleaved within a backbone: same machine state for the ratio
            for n in SIZES:
                out = root / f"out-{backbone}-{n}-{time.time_ns()}"
                results[backbone][n] = _evaluate(data[n], backbone, out)

    benchmark.pedantic(run_all, rounds=1, iterations=1)
    small, large = sorted(SIZES)[-2:]
    ratios = {b: r[large]["peak_rss_bytes"] / r[small]["peak_rss_bytes"] for b, r in results.items()}
    benchmark.extra_info.update({
        "backbone": ",".join(BACKBONES), "family": None, "encoder": "evaluate:streaming", "k": 16,
        "input_tokens": None, "batch_size": 8, "device": "cpu", "dtype": "float32", "attn": None,
        "peak_memory_bytes": max(x["peak_rss_bytes"] for r in results.values() for x in r.values()),
        "tokens_per_s": None, "queries_per_s": None, "energy_j_per_query": None,
        "samples_s": [x["seconds"] for r in results.values() for x in r.values()],
        "sizes": {b: {str(n): x for n, x in r.items()} for b, r in results.items()}, "max_memory": MAX_MEMORY,
        "rss_ratio": ratios, "load_average": os.getloadavg(),
    })
    for backbone, r in results.items():
        for n, x in r.items():
            print(f"\n{backbone} N={n}: {x['seconds']:.1f} s, peak RSS {x['peak_rss_bytes'] / 2**20:.0f} MiB")
    print(f"load average {os.getloadavg()}")
    for backbone, ratio in ratios.items():
        goal(f"{backbone} evaluate peak RSS ratio {large}/{small} passages", ratio, 1.3)
