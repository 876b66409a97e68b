"""Streaming exact search at scale: all five modes over synthetic float16 stores (H=64, K_p=16).

Sizes: REPBENCH_SCALE_SIZES (default 10000,100000; the issue's 1M case is
`REPBENCH_SCALE_SIZES=10000,100000,1000000`, a 2.2 GB store); stores are kept under
REPBENCH_SCALE_ROOT (default: pytest's temp dir) and reused. Each search runs in a fresh process, so
its peak RSS is its own. Requirements (issue 13), as ratios inside this run between the two largest
sizes: peak RSS grows < 1.5x (bounded by the chunk, not by N), time per document grows < 2x (~linear).
"""

from __future__ import annotations

import os
from pathlib import Path

from repbench.retrieval.scale import measure, synthetic_store

SIZES = [int(x) for x in os.environ.get("REPBENCH_SCALE_SIZES", "10000,100000").split(",")]
CHUNK_DOCS = int(os.environ.get("REPBENCH_SCALE_CHUNK", "8192"))


def test_streaming_search_scales_flat_in_memory_linear_in_time(benchmark, goal, tmp_path_factory):
    root = Path(os.environ.get("REPBENCH_SCALE_ROOT") or tmp_path_factory.mktemp("scale"))
    results = {}

    def run_all() -> None:
        for n in SIZES:
            results[n] = measure(synthetic_store(root / f"n{n}", n), chunk_docs=CHUNK_DOCS)

    benchmark.pedantic(run_all, rounds=1, iterations=1)
    small, large = sorted(SIZES)[-2:]
    rss_ratio = results[large]["peak_rss_bytes"] / results[small]["peak_rss_bytes"]
    per_doc_ratio = (results[large]["seconds"] / large) / (results[small]["seconds"] / small)
    benchmark.extra_info.update({
        "backbone": None, "family": None, "encoder": "search:streaming", "k": None, "input_tokens": None,
        "batch_size": 32, "device": "cpu", "dtype": "float16", "attn": None,
        "peak_memory_bytes": max(r["peak_rss_bytes"] for r in results.values()), "tokens_per_s": None,
        "queries_per_s": None, "energy_j_per_query": None, "samples_s": [r["seconds"] for r in results.values()],
        "sizes": {str(n): r for n, r in results.items()}, "chunk_docs": CHUNK_DOCS,
        "rss_ratio": rss_ratio, "time_per_doc_ratio": per_doc_ratio,
    })
    for n, r in results.items():
        print(f"\nN={n}: {r['seconds']:.2f} s, peak RSS {r['peak_rss_bytes'] / 2**20:.0f} MiB, "
              f"{r['bytes_per_query'] / 2**20:.1f} MiB streamed per query")
    goal(f"peak RSS ratio {large}/{small} passages", rss_ratio, 1.5)
    goal(f"time-per-passage ratio {large}/{small} passages", per_doc_ratio, 2.0)
