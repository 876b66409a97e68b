"""Where encoding and sweep work runs: this process (`local`, the default) or a Ray cluster (`ray`).

An engine hands out a pool of backbone workers (`engine.workers(request)`): the pool's `info` is the
loaded backbone's identity, `shard_runner` encodes and writes store shards (each through
`repbench.encoders.store.encode_shard`, the per-shard seam), `sweep_encode_fn` and `cell_runner` plug
into `run_sweep`. Both engines run the same `ShardWorker` code, so their outputs are byte-identical.
Ray is imported only when the Ray engine is made.
"""

from __future__ import annotations

import argparse
from contextlib import contextmanager
from typing import Any

from repbench.engines.worker import BackboneInfo, BackboneRequest
from repbench.errors import RepbenchError

ENGINES = ("local", "ray")

__all__ = ["ENGINES", "BackboneInfo", "BackboneRequest", "add_engine_arguments",
           "make_engine", "worker_pool"]


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=ENGINES, default="local",
                        help="local (this process, default) or ray (actors on a running Ray cluster)")
    parser.add_argument("--ray-address", default="auto",
                        help="Ray cluster to join: auto (the one `ray start` began on this machine), HOST:PORT (a "
                             "head's GCS address; checked to be a Ray head within seconds), ray://HOST:PORT (Ray "
                             "Client), or local (start a private single-machine Ray for this command only, "
                             "stopped when it ends)")
    parser.add_argument("--ray-workers", type=int, default=None,
                        help="number of Ray actors (default: one per GPU, else one per --ray-cpus-per-worker CPUs)")
    parser.add_argument("--ray-cpus-per-worker", type=int, default=1,
                        help="CPUs (= torch threads on CPU) per Ray actor (default 1)")


def make_engine(name: str, address: str = "auto", n_workers: int | None = None, cpus_per_worker: int = 1) -> Any:
    if name == "local":
        from repbench.engines.local import LocalEngine

        return LocalEngine()
    if name == "ray":
        if n_workers is not None and n_workers < 1:
            raise RepbenchError(f"--ray-workers must be a positive integer, got {n_workers}")
        from repbench.engines.ray_engine import RayEngine

        return RayEngine(address, n_workers, cpus_per_worker)
    raise RepbenchError(f"unknown engine {name!r}; known engines: {', '.join(ENGINES)}")


@contextmanager
def worker_pool(args: argparse.Namespace, request: BackboneRequest):
    """The pool for a command's --engine options; closed (actors released) whatever happens."""
    engine = make_engine(args.engine, args.ray_address, args.ray_workers, args.ray_cpus_per_worker)
    pool = engine.workers(request)
    try:
        yield pool
    finally:
        pool.close()
