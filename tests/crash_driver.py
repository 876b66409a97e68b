"""Run a repbench command, SIGKILL it at seeded random points, then let it finish (for test_crash_resume).

    python tests/crash_driver.py --seed S --kills N --trigger FILE --ref-out DIR --out DIR -- <repbench argv>

The argv's `{out}` is replaced by --ref-out for one uninterrupted reference run, then by --out for the
killed runs and the final resumed one. Each run is a forked child executing `repbench.cli.main` (the
imports happen once, before the first fork, so a kill point is not wasted on interpreter start-up).
A kill point is a delay after FILE (relative to the run's output directory) appears, drawn uniformly from
[0, the reference run's time from FILE to exit). Prints one JSON line: the kill delays and return codes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import time
from pathlib import Path


def child(argv: list[str]) -> int:
    pid = os.fork()
    if pid == 0:
        from repbench.cli import main

        code = 1
        try:
            code = main(argv)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return pid


def wait_for(path: Path, pid: int, timeout: float = 300.0) -> float:
    t0 = time.monotonic()
    while not path.exists():
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            raise SystemExit(f"the run exited before {path} appeared")
        if time.monotonic() - t0 > timeout:
            raise SystemExit(f"{path} did not appear in {timeout} s")
        time.sleep(0.005)
    return time.monotonic()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--kills", type=int, required=True)
    parser.add_argument("--trigger", required=True)
    parser.add_argument("--ref-out", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    argv = [a for a in args.argv if a != "--"]

    import repbench.cli  # noqa: F401  the heavy imports, once, before forking
    import repbench.encoders  # noqa: F401
    import repbench.evaluation.sweep  # noqa: F401

    def command(out: str) -> list[str]:
        return [a.replace("{out}", out) for a in argv]

    pid = child(command(args.ref_out))
    start = wait_for(Path(args.ref_out) / args.trigger, pid)
    _, status = os.waitpid(pid, 0)
    window = time.monotonic() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the reference run failed ({status})")

    rng = random.Random(args.seed)
    delays, codes = [], []
    for _ in range(args.kills):
        delay = rng.uniform(0.0, window)
        pid = child(command(args.out))
        wait_for(Path(args.out) / args.trigger, pid)
        time.sleep(delay)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, status = os.waitpid(pid, 0)
        delays.append(round(delay, 3))
        codes.append(os.waitstatus_to_exitcode(status))
    pid = child(command(args.out))
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"window_s": round(window, 3), "delays_s": delays, "killed_codes": codes,
                      "final_code": os.waitstatus_to_exitcode(status)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
