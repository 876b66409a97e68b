"""`repbench <command> --help` start-up time, every command, against `python -c pass` (issue 20).

Each command's `--help` runs as a fresh process (what a user waits for), interleaved with a bare
`python -c pass` in rotated rounds. Goal: every command answers in < 0.3 s (median wall-clock over
REPBENCH_HELP_ROUNDS rounds, default 5); the ratio to the bare interpreter and the load average are
recorded. A command whose module imported pandas or torch before parsing would take seconds here.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

from repbench.benchmarking.interleave import interleaved
from repbench.cli import COMMANDS

ROUNDS = int(os.environ.get("REPBENCH_HELP_ROUNDS", "5"))
GOAL_S = 0.3


def _call(argv: list[str]):
    def run() -> None:
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    return run


def test_every_command_help_starts_fast(benchmark, goal):
    calls = {"python -c pass": _call([sys.executable, "-c", "pass"])}
    script = Path(sys.executable).parent / "repbench"  # the installed entry point, as a user runs it
    calls |= {name: _call([str(script), name, "--help"]) for name in COMMANDS}
    holder: dict = {}
    # CPU time of a child is not this process's: wall-clock only (children's CPU is in the load average).
    benchmark.pedantic(lambda: holder.update(t=interleaved(calls, ROUNDS)), rounds=1, iterations=1)
    times = holder["t"]
    bare = statistics.median(times["python -c pass"]["wall"])
    medians = {name: statistics.median(t["wall"]) for name, t in times.items()}
    benchmark.extra_info.update({
        "backbone": None, "family": None, "encoder": "cli:--help", "k": None, "input_tokens": None,
        "batch_size": None, "device": "cpu", "dtype": None, "attn": None, "peak_memory_bytes": None,
        "tokens_per_s": None, "queries_per_s": None, "energy_j_per_query": None,
        "samples_s": [s for name in COMMANDS for s in times[name]["wall"]], "median_s": medians,
        "min_s": {name: min(t["wall"]) for name, t in times.items()},
        "ratio_to_bare_python": {name: m / bare for name, m in medians.items()}, "rounds": ROUNDS,
        "load_average": os.getloadavg(),
    })
    for name in COMMANDS:
        print(f"\nrepbench {name} --help: median {medians[name]:.3f} s, min {min(times[name]['wall']):.3f} s, "
              f"{medians[name] / bare:.1f}x python -c pass (load {os.getloadavg()[0]:.1f})", end="")
        goal(f"repbench {name} --help median wall seconds", medians[name], GOAL_S)
