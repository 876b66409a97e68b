"""The Ray engine: one actor per worker loads the backbone once; shards and sweep cells are its tasks.

Faults: an actor whose process dies is restarted by Ray (`max_restarts`, reloading the backbone) and
the job it held goes back to the queue for the next free actor; a shard job first checks whether its
shard is already complete and verified, so a shard is written exactly once even when its worker dies
between writing and reporting. A lost node's jobs finish on the remaining actors; if the driver itself
goes, rerunning the same command resumes from the verified shards.

Shards are written by the workers into `--out`, so every node must see it (a shared filesystem, as for
a SLURM array). Imported only when `--engine ray` is chosen: `import repbench` never imports Ray.
"""

from __future__ import annotations

import sys
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from repbench.encoders.options import EncodeOptions
from repbench.encoders.types import Representations
from repbench.engines.local import join_parts, shard_bounds
from repbench.engines.worker import BackboneInfo, BackboneRequest, ShardWorker
from repbench.errors import RepbenchError

MAX_ATTEMPTS = 4  # per job: the first run plus three after a lost worker
ACTOR_RESTARTS = 4


def _ray():
    try:
        import ray
    except ImportError:
        raise RepbenchError("--engine ray needs Ray: pip install 'repbench[ray]'") from None
    return ray


_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def _speaks_grpc(sock: Any) -> bool:
    """Whether the peer answers an HTTP/2 client preface with a SETTINGS frame, as Ray's GCS (a gRPC
    server) does at once; an HTTP/1 server, a database or a silent port does not."""
    sock.sendall(_HTTP2_PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # + an empty SETTINGS frame
    head = b""
    while len(head) < 9:
        chunk = sock.recv(9 - len(head))
        if not chunk:
            return False
        head += chunk
    return head[3] == 0x04  # frame type SETTINGS


def _check_reachable(address: str, timeout: float = 4.0) -> None:
    """Fail in seconds, not after Ray's minutes of retries, when nothing listens at HOST:PORT or what
    listens is not a Ray head (its GCS speaks gRPC; checked unless Ray's TLS is on)."""
    import os
    import socket

    if address in ("auto", "local") or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            sock.settimeout(timeout)
            if os.environ.get("RAY_USE_TLS", "0") in ("", "0") and not _speaks_grpc(sock):
                raise RepbenchError(f"{address} answers, but not as a Ray cluster head (no gRPC); expected the "
                                    "address `ray start --head` printed (its GCS port, 6379 by default)")
    except TimeoutError:
        raise RepbenchError(f"{address} accepted a connection but did not answer as a Ray cluster head within "
                            f"{timeout:.0f} s; expected the address `ray start --head` printed") from None
    except ValueError:
        raise RepbenchError(f"--ray-address must be auto or HOST:PORT, got {address!r}") from None
    except OSError as exc:
        raise RepbenchError(f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with "
                            f"`ray start --head --port=PORT` or pass its address") from None


class RayPool:
    in_process = False  # the backbone lives on the actors; the driver holds its BackboneInfo only

    def __init__(self, address: str, request: BackboneRequest, n_workers: int | None, cpus_per_worker: int):
        ray = _ray()
        self._owns_init = not ray.is_initialized()
        if self._owns_init:
            _check_reachable(address)
            try:
                ray.init(address=address, namespace="repbench", logging_level="WARNING", log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise RepbenchError(f"cannot connect to the Ray cluster at {address!r}: {exc}") from None
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        cpus = int(resources.get("CPU", 0))
        n = n_workers or (gpus if gpus else max(1, cpus // cpus_per_worker))
        # One GPU per actor where the cluster has GPUs; otherwise CPUs, with a fixed thread count.
        actor = ray.remote(ShardWorker).options(
            num_gpus=1 if gpus else 0, num_cpus=cpus_per_worker, max_restarts=ACTOR_RESTARTS,
            # An in-flight task (and a ready() probe) waits for the restarted actor and runs again there,
            # instead of failing while Ray restarts it (which dropped the actor for good). Every task is
            # safe to repeat: encode_shard first checks for its verified shard, the others are pure.
            max_task_retries=ACTOR_RESTARTS)
        threads = None if gpus else cpus_per_worker
        self.actors = [actor.remote(request, threads) for _ in range(n)]
        try:
            infos: list[BackboneInfo] = ray.get([a.info.remote() for a in self.actors])
        except Exception:
            self.close()
            raise
        if len({i.identity() for i in infos}) > 1:
            self.close()
            raise RepbenchError(f"the Ray workers loaded different backbones/dtypes/devices: "
                                f"{sorted({i.identity() for i in infos})}; their outputs would not agree")
        self.info = infos[0]
        self.backbone = self.info  # what the sweep reads (spec, vocab_size, dtype, device)
        self.stats: Counter = Counter()

    # ---- the one scheduler ----------------------------------------------------------------------
    def run(self, jobs: Sequence[tuple[str, tuple]], desc: str = "", progress: bool = True
            ) -> Iterator[tuple[int, Any]]:
        """Run `jobs[j] = (method, args)` on the actors, one job per free actor; yield (j, result) as done."""
        ray = _ray()
        from ray.exceptions import RayActorError, RayTaskError

        queue = deque(range(len(jobs)))
        attempts: Counter = Counter()
        idle = deque(self.actors)
        running: dict[Any, tuple[int, Any]] = {}
        rejoining: dict[Any, Any] = {}  # ready() probes of actors Ray is restarting
        bar = None
        if progress and jobs:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(jobs), desc=desc, unit="job")
        try:
            while queue or running:
                while queue and idle:
                    j, a = queue.popleft(), idle.popleft()
                    method, args = jobs[j]
                    running[getattr(a, method).remote(*args)] = (j, a)
                if not running and not rejoining:
                    raise RepbenchError("every Ray worker is lost; rerun the same command to resume")
                done, _ = ray.wait([*running, *rejoining], num_returns=1, timeout=60)
                for ref in done:
                    if ref in rejoining:
                        a = rejoining.pop(ref)
                        try:
                            ray.get(ref)
                            idle.append(a)
                        except RayActorError:
                            pass  # out of restarts: the others carry on
                        continue
                    j, a = running.pop(ref)
                    try:
                        result = ray.get(ref)
                    except RayActorError as exc:
                        attempts[j] += 1
                        self.stats["lost"] += 1
                        if attempts[j] >= MAX_ATTEMPTS:
                            raise RepbenchError(f"{desc} job {j}: its Ray worker died {attempts[j]} times "
                                                f"({type(exc).__name__}); rerun to resume") from None
                        print(f"repbench: a Ray worker died during {desc} job {j}; Ray restarts it, "
                              "the job goes to the next free worker", file=sys.stderr)
                        queue.appendleft(j)
                        rejoining[a.ready.remote()] = a
                        continue
                    except RayTaskError as exc:
                        if isinstance(exc.cause, RepbenchError):
                            raise exc.cause from None
                        raise
                    idle.append(a)
                    if bar is not None:
                        bar.update(1)
                    yield j, result
        finally:
            if bar is not None:
                bar.close()

    # ---- what the commands use ------------------------------------------------------------------
    def rows_encoder(self, encoder: str, options: EncodeOptions) -> None:
        return None  # rows are encoded on the actors, through shard_runner

    def shard_runner(self, out: str | Path, ids: Sequence[str], texts: Sequence[str], shard_size: int,
                     encoder: str, options: EncodeOptions, progress: bool = True
                     ) -> Callable[[list[int], str, str], None]:
        def run(todo: list[int], options_digest: str, store_dtype: str) -> None:
            jobs = []
            for i in todo:
                lo, hi = i * shard_size, min(len(ids), (i + 1) * shard_size)
                jobs.append(("encode_shard", (str(out), i, list(ids[lo:hi]), list(texts[lo:hi]), encoder, options,
                                              options_digest, store_dtype)))
            for _, written in self.run(jobs, desc=f"shards -> {out}", progress=progress):
                self.stats["written" if written else "already_done"] += 1

        return run

    def sweep_encode_fn(self, shard_size: int | None) -> Callable[..., Representations]:
        def encode_fn(bb: Any, texts: Sequence[str], ids: Sequence[str], encoder: str, progress: bool = False,
                      on_signals: Callable | None = None, **fields: Any) -> Representations:
            opts = EncodeOptions.build(**fields)
            signals = on_signals is not None
            jobs = [("encode_rows", (list(ids[lo:hi]), list(texts[lo:hi]), encoder, opts, signals))
                    for lo, hi in shard_bounds(len(ids), shard_size)]
            parts: list[Any] = [None] * len(jobs)
            for j, result in self.run(jobs, desc=f"{opts.side} K={opts.k}", progress=progress):
                parts[j] = result
            return join_parts(parts, ids, on_signals)

        def encode_parts(parts: Sequence[tuple[list[str], list[str]]], encoder: str, signals: bool,
                         **fields: Any) -> Iterator[tuple[int, Any]]:
            # The sweep's passage store, one job per store shard spread over the actors (not one shard
            # after another), each result handed back as it lands so the driver holds a few shards at once.
            opts = EncodeOptions.build(**fields)
            jobs = [("encode_rows", (list(ids), list(texts), encoder, opts, signals)) for ids, texts in parts]
            yield from self.run(jobs, desc=f"{opts.side} K={opts.k} shards", progress=False)

        encode_fn.encode_parts = encode_parts  # type: ignore[attr-defined]
        return encode_fn

    def cell_runner(self) -> Callable[[Callable[..., Any], Sequence[tuple]], Iterator[tuple[int, Any]]]:
        ray = _ray()

        def run_cells(fn: Callable[..., Any], jobs: Sequence[tuple], progress: bool = False
                      ) -> Iterator[tuple[int, Any]]:
            # Each large argument (a side's representations) goes to the object store once, shared by cells.
            refs: dict[int, Any] = {}

            def ref(x: Any) -> Any:
                if isinstance(x, Representations):
                    if id(x) not in refs:
                        refs[id(x)] = ray.put(x)
                    return refs[id(x)]
                return x

            calls = [("score_cell", (fn, *map(ref, args))) for args in jobs]
            yield from self.run(calls, desc="cells", progress=progress)

        return run_cells

    def close(self) -> None:
        ray = _ray()
        for a in getattr(self, "actors", []):
            try:
                ray.kill(a, no_restart=True)
            except Exception:
                pass
        self.actors = []
        if self._owns_init:
            ray.shutdown()


class RayEngine:
    name = "ray"

    def __init__(self, address: str = "auto", n_workers: int | None = None, cpus_per_worker: int = 1):
        if cpus_per_worker < 1:
            raise RepbenchError(f"--ray-cpus-per-worker must be a positive integer, got {cpus_per_worker}")
        self.address, self.n_workers, self.cpus_per_worker = address, n_workers, cpus_per_worker

    def workers(self, request: BackboneRequest) -> RayPool:
        return RayPool(self.address, request, self.n_workers, self.cpus_per_worker)


def from_args(args: Any) -> RayEngine:
    if args.ray_workers is not None and args.ray_workers < 1:
        raise RepbenchError(f"--ray-workers must be a positive integer, got {args.ray_workers}")
    return RayEngine(args.ray_address, args.ray_workers, args.ray_cpus_per_worker)
