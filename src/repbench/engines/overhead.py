"""What the Ray engine costs over the local one: the same store encoded with the same worker count.

One round = the local engine (one worker) and the Ray engine (one actor on a one-node cluster with one
CPU) each encode the same synthetic corpus into a fresh store, alternately, so drifts in machine load
hit both. Ratios per round, Ray over local:
  command     wall time of the whole `repbench encode` command, each a fresh process (imports, connecting,
              starting the workers and loading the backbone, every shard): what a user waits for
  steady      encoding every shard once the workers are up, both driven from this process (the per-shard
              dispatch and transfer cost, start-up excluded)
The stores must be byte-identical (checked), else the comparison is void.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from repbench.encoders.options import EncodeOptions
from repbench.engines.worker import BackboneRequest


def synthetic_texts(n: int, seed: int = 0, words: int = 60) -> tuple[list[str], list[str]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(2000)]
    texts = [" ".join(rng.choice(vocab, size=int(rng.integers(words // 2, words)))) for _ in range(n)]
    return [f"d{i}" for i in range(n)], texts


def _encode(pool: Any, out: Path, ids: list[str], texts: list[str], shard_size: int, encoder: str,
            options: EncodeOptions) -> float:
    from repbench.encoders.store import encode_sharded

    t0 = time.perf_counter()
    encode_sharded(out, ids, texts, {"bench": "ray_overhead"}, pool.rows_encoder(encoder, options),
                   shard_size=shard_size, progress=False,
                   run_shards=pool.shard_runner(out, ids, texts, shard_size, encoder, options, progress=False))
    return time.perf_counter() - t0


def _same_store(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.glob("shard_*"))
    return names == sorted(p.name for p in b.glob("shard_*")) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names)


def _command_s(args: list[str]) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "repbench.cli", "encode", *args], env=env, capture_output=True,
                          text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"repbench encode failed: {proc.stderr[-2000:]}")
    return time.perf_counter() - t0


def measure_overhead(address: str, n_items: int = 1200, shard_size: int = 100, rounds: int = 2,
                     backbone: str = "tiny-diffusion", k: int = 4, max_length: int = 128) -> dict[str, Any]:
    """Rounds of local vs Ray on the cluster at `address` (one CPU); per-round seconds and ratios."""
    import torch

    from repbench.encoders import default_encoder
    from repbench.engines.local import LocalPool
    from repbench.engines.ray_engine import RayPool

    ids, texts = synthetic_texts(n_items)
    request = BackboneRequest(backbone, device="cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the actor's thread count: same work per worker
    out: dict[str, Any] = {"n_items": n_items, "shard_size": shard_size, "workers": 1, "backbone": backbone, "k": k,
                           "rounds": []}
    try:
        LocalPool(request).close()  # untimed: the imports, so the local start below is warm (Ray's is not)
        with tempfile.TemporaryDirectory(prefix="rb-overhead-") as tmp:
            for r in range(rounds):
                t0 = time.perf_counter()
                local = LocalPool(request)
                local_start = time.perf_counter() - t0
                encoder = default_encoder(local.info.spec.family)
                options = EncodeOptions(k=k, side="passage", max_length=max_length)
                local_encode = _encode(local, Path(tmp) / f"local{r}", ids, texts, shard_size, encoder, options)
                local.close()
                t0 = time.perf_counter()
                ray_pool = RayPool(address, request, n_workers=1, cpus_per_worker=1)
                ray_start = time.perf_counter() - t0
                try:
                    ray_encode = _encode(ray_pool, Path(tmp) / f"ray{r}", ids, texts, shard_size, encoder, options)
                finally:
                    ray_pool.close()
                if not _same_store(Path(tmp) / f"local{r}", Path(tmp) / f"ray{r}"):
                    raise AssertionError("the Ray and local stores differ: the comparison is void")
                corpus = Path(tmp) / "corpus.jsonl"
                corpus.write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in zip(ids, texts, strict=True)))
                cli = [str(corpus), "--backbone", backbone, "--k", str(k), "--max-length", str(max_length),
                       "--shard-size", str(shard_size), "--device", "cpu"]
                local_cmd = _command_s([*cli, "--out", str(Path(tmp) / f"cli-local{r}")])
                ray_cmd = _command_s([*cli, "--out", str(Path(tmp) / f"cli-ray{r}"), "--engine", "ray",
                                      "--ray-address", address, "--ray-workers", "1"])
                if not _same_store(Path(tmp) / f"cli-local{r}", Path(tmp) / f"cli-ray{r}"):
                    raise AssertionError("the Ray and local commands wrote different stores")
                out["rounds"].append({
                    "local_start_s": local_start, "local_encode_s": local_encode, "ray_start_s": ray_start,
                    "ray_encode_s": ray_encode, "steady_ratio": ray_encode / local_encode,
                    "local_command_s": local_cmd, "ray_command_s": ray_cmd, "command_ratio": ray_cmd / local_cmd,
                })
    finally:
        torch.set_num_threads(threads)
    for key in ("command_ratio", "steady_ratio"):
        out[key] = statistics.median(r[key] for r in out["rounds"])
    return out
