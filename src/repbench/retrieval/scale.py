"""Synthetic stores and a child-process measurement for the streaming-search scale benchmark.

Each measurement runs in a fresh process so its peak RSS (VmHWM) belongs to that search alone. `python -m repbench.retrieval.scale --sizes 10000,100000,1000000 --root DIR` prints one
JSON line per size (bench/test_streaming_scale.py calls the same functions).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from repbench.encoders.store import encode_sharded, open_store
from repbench.encoders.types import Representations


def synthetic_reps(ids: list[str], k: int, hidden: int, sparse_width: int, vocab: int, seed: int) -> Representations:
    """Random slot vectors and integer sparse weights (a few hundred max, as the x100 quantisation gives)."""
    g = torch.Generator().manual_seed(seed)
    n = len(ids)
    return Representations(
        ids=ids, dense=torch.randn(n, k, hidden, generator=g), valid=torch.ones(n, k, dtype=torch.bool),
        sparse_ids=torch.randint(0, vocab, (n, sparse_width), generator=g),
        sparse_weights=torch.randint(1, 400, (n, sparse_width), generator=g).float(),
        token_ids=torch.zeros(n, k, dtype=torch.long), input_tokens=torch.full((n,), 64, dtype=torch.long),
        meta={"vocab_size": vocab, "backbone": "synthetic", "encoder": "synthetic", "k": k},
    )


def synthetic_store(out: str | Path, n: int, k_p: int = 16, hidden: int = 64, sparse_width: int = 16,
                    vocab: int = 1024, shard_size: int = 50_000, store_dtype: str = "float16") -> Path:
    """A store of `n` random passages (reused when already complete with the same settings)."""
    ids = [f"p{i:08d}" for i in range(n)]

    def encode_fn(chunk_ids: list[str], _texts: list[str]) -> Representations:
        return synthetic_reps(chunk_ids, k_p, hidden, sparse_width, vocab, seed=int(chunk_ids[0][1:]))

    config = {"backbone": "synthetic", "k": k_p, "hidden": hidden, "sparse_width": sparse_width, "vocab": vocab}
    return encode_sharded(out, ids, ids, config, encode_fn, shard_size=shard_size, store_dtype=store_dtype,
                          progress=False)


def store_bytes(out: str | Path) -> int:
    return sum(int(e["bytes"]) for _, e in open_store(out).shards)


def measure(store: str | Path, n_queries: int = 32, k_q: int = 4, depth: int = 100, chunk_docs: int = 8192,
            modes: str = "all", verify: bool = True) -> dict[str, Any]:
    """Search `store` in a fresh process; returns seconds, peak RSS and bytes streamed per query."""
    spec = {"store": str(store), "n_queries": n_queries, "k_q": k_q, "depth": depth, "chunk_docs": chunk_docs,
            "modes": modes, "verify": verify}
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    proc = subprocess.Popen([sys.executable, "-m", "repbench.retrieval.scale", "--child", json.dumps(spec)],
                            stdout=subprocess.PIPE, env=env)
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"search child failed with exit code {proc.returncode}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    result["bytes_per_query"] = result["store_bytes"] / n_queries
    return result


def _child(spec: dict[str, Any]) -> None:
    from repbench.retrieval.streaming import store_shapes, stream_retrieve

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    store = open_store(spec["store"])
    k_p, hidden, width, _ = store_shapes(store)
    vocab = int(store.meta["vocab_size"])
    queries = synthetic_reps([f"q{i}" for i in range(spec["n_queries"])], spec["k_q"], hidden, width, vocab, seed=2**31 - 1)
    t0 = time.perf_counter()
    runs = stream_retrieve(queries, store, spec["modes"].split(","), depth=spec["depth"], remove_self=False,
                           chunk_docs=spec["chunk_docs"], verify=spec["verify"])
    seconds = time.perf_counter() - t0
    assert all(len(docs) == min(spec["depth"], len(store)) for r in runs.values() for docs in r.values())
    print(json.dumps({"n_docs": len(store), "seconds": seconds, "store_bytes": store_bytes(spec["store"]),
                      "k_p": k_p, "hidden": hidden, "modes": list(runs), "peak_rss_bytes": _peak_rss()}))


def _peak_rss() -> int:
    """This process's own high-water RSS (VmHWM). Not ru_maxrss: across fork+exec that keeps the
    parent's peak, so a parent that just built a large store would inflate it."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m repbench.retrieval.scale")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--root", default="results/scale-stores", help="where the synthetic stores are kept")
    parser.add_argument("--chunk-docs", type=int, default=8192)
    parser.add_argument("--queries", type=int, default=32)
    parser.add_argument("--no-verify", action="store_true")
    args = parser.parse_args(argv)
    if args.child:
        _child(json.loads(args.child))
        return 0
    for n in [int(x) for x in args.sizes.split(",")]:
        store = synthetic_store(Path(args.root) / f"n{n}", n)
        print(json.dumps({"n": n, **measure(store, n_queries=args.queries, chunk_docs=args.chunk_docs,
                                            verify=not args.no_verify)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
