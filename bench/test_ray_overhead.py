"""Ray engine overhead against the local engine: the same synthetic store, one worker each (issue 13).

Goal: steady-state ratio (Ray encode / local encode, workers up) <= 1.15. The whole-command ratio (each
`repbench encode` a fresh process: imports, connecting, the actor's start, every shard) is recorded
next to it; it falls towards the steady ratio as the corpus grows (start-up is paid once). Runs on a
throw-away one-node Ray cluster on 127.0.0.1 (`repbench.engines.cluster.local_cluster`); skipped when Ray is not installed.
Sizes: REPBENCH_RAY_BENCH_N (default 3000 passages), REPBENCH_RAY_BENCH_ROUNDS (default 3).
"""

from __future__ import annotations

import os

import pytest

GOAL = 1.15


def test_ray_overhead(benchmark, goal):
    pytest.importorskip("ray", reason="the Ray engine is optional: pip install 'repbench[ray]'")
    from repbench.engines.netns import loopback_only

    if not loopback_only():
        # `ray start` would swap 127.0.0.1 for this machine's own address and listen there.
        pytest.skip("run inside a loopback-only network namespace, e.g. as root: unshare --net sh -c "
                    "'ip link set lo up && .venv/bin/pytest bench/test_ray_overhead.py --benchmark-json ray.json'")
    from repbench.engines.cluster import local_cluster
    from repbench.engines.overhead import measure_overhead

    n = int(os.environ.get("REPBENCH_RAY_BENCH_N", "3000"))
    rounds = int(os.environ.get("REPBENCH_RAY_BENCH_ROUNDS", "3"))
    with local_cluster(n_nodes=1, cpus_per_node=1, env={"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}) as c:
        result = benchmark.pedantic(measure_overhead, args=(c.address,), kwargs={"n_items": n, "rounds": rounds},
                                    rounds=1, iterations=1)
    benchmark.extra_info.update({"backbone": result["backbone"], "encoder": "engine:ray_vs_local",
                                 "device": "cpu", **result})
    print(f"\nray/local on {n} passages, 1 worker: steady {result['steady_ratio']:.3f}, "
          f"whole command {result['command_ratio']:.3f}; rounds {result['rounds']}")
    goal("steady-state ratio Ray/local", result["steady_ratio"], GOAL)
