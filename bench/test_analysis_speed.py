"""Speed of the significance table: 20 systems x 1,000 queries against one baseline, 10,000 permutations.

The randomization test and the 10,000-resample bootstrap CIs are both inside the timed call.
Requirement (issue 5): under 2 s on the 2-core CPU machine.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd

from repbench.analysis.significance import significance_table

N_SYSTEMS, N_QUERIES, N_PERMUTATIONS = 20, 1_000, 10_000
LIMIT_S = 2.0


def _matrix() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    base = rng.random(N_QUERIES)
    shifts = np.linspace(-0.02, 0.02, N_SYSTEMS)
    systems = np.clip(base + shifts[:, None] + rng.normal(0, 0.1, (N_SYSTEMS, N_QUERIES)), 0, 1)
    values = np.vstack([base, systems])
    names = ["baseline"] + [f"system{i}" for i in range(N_SYSTEMS)]
    return pd.DataFrame(values, index=names, columns=[f"q{i}" for i in range(N_QUERIES)])


def test_randomization_table_speed(benchmark, goal):
    matrix = _matrix()

    def table() -> pd.DataFrame:
        return significance_table(matrix, baseline="baseline", measure="ndcg_cut_10", test="randomization",
                                  n_permutations=N_PERMUTATIONS, n_bootstrap=10_000, seed=0)

    # Memory in its own untimed pass (tracemalloc slows allocation down).
    tracemalloc.start()
    result = table()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(result) == N_SYSTEMS and result["p_value"].between(1 / (N_PERMUTATIONS + 1), 1).all()

    benchmark.pedantic(table, rounds=5, warmup_rounds=1, iterations=1)
    samples = list(benchmark.stats.stats.data)
    benchmark.extra_info.update({
        "backbone": None, "family": None, "encoder": "analysis:randomization", "k": None,
        "input_tokens": None, "batch_size": None, "device": "cpu", "dtype": "float64", "attn": None,
        "peak_memory_bytes": int(peak), "tokens_per_s": None,
        "queries_per_s": N_QUERIES * N_SYSTEMS / float(np.median(samples)), "energy_j_per_query": None,
        "samples_s": samples, "n_systems": N_SYSTEMS, "n_queries": N_QUERIES,
        "n_permutations": N_PERMUTATIONS, "n_bootstrap": 10_000,
    })
    goal("median seconds", float(np.median(samples)), LIMIT_S)
