"""Where encoding and sweep work runs: this process (`local`, the default) or a Ray cluster (`ray`).

An engine is one module plus its entry in REGISTRY: the entry names the engine's factory (imported only
when the engine is chosen, so `import repbench` never imports Ray) and its own command-line group. An
engine hands out a WorkerPool (`engine.workers(request)`); the commands use only what the Protocol below
declares. Both engines run the same `ShardWorker` code, so their outputs are byte-identical.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from repbench.engines.worker import BackboneInfo, BackboneRequest
from repbench.errors import RepbenchError

__all__ = ["ENGINES", "REGISTRY", "BackboneInfo", "BackboneRequest", "Engine", "EngineSpec", "WorkerPool",
           "add_engine_arguments", "make_engine", "worker_pool"]


class WorkerPool(Protocol):
    """Backbone workers, as the commands use them. Optional capabilities are explicit: a method that
    returns None says "use the in-process default" for that step."""

    info: BackboneInfo  # the loaded backbone's identity (every worker agrees)
    backbone: Any  # the backbone object the sweep reads (spec, vocab_size, mask token, dtype, device)
    in_process: bool  # the real backbone (tokenizer included) is in this process: fit checks can run here
    stats: dict[str, int]  # counts worth a line after the run (shards written, jobs re-queued); may be empty

    def rows_encoder(self, encoder: str, options: Any) -> Callable[..., Any] | None:
        """(ids, texts) -> Representations in this process; None when rows are encoded by shard_runner."""

    def shard_runner(self, out: Any, ids: Sequence[str], texts: Sequence[str], shard_size: int, encoder: str,
                     options: Any) -> Callable[[list[int], str, str], None] | None:
        """Encodes and writes the given store shards elsewhere; None: encode_sharded's own loop."""

    def sweep_encode_fn(self, shard_size: int | None) -> Callable[..., Any] | None:
        """The sweep's encode_fn; None: repbench.encoders.encode in this process."""

    def cell_runner(self) -> Callable[..., Iterator[tuple[int, Any]]] | None:
        """Scores sweep cells elsewhere, yielding (job index, result); None: in this process."""

    def close(self) -> None: ...


class Engine(Protocol):
    name: str

    def workers(self, request: BackboneRequest) -> WorkerPool: ...


@dataclass(frozen=True)
class EngineSpec:
    name: str
    summary: str  # one phrase for --engine's help
    factory: str  # "module:function(args) -> Engine", imported when the engine is chosen
    add_arguments: Callable[[Any], None] | None = None  # the engine's own options, in its own group

    def make(self, args: argparse.Namespace) -> Engine:
        module, _, name = self.factory.partition(":")
        return getattr(importlib.import_module(module), name)(args)


def _ray_arguments(group: Any) -> None:
    group.add_argument("--ray-address", default="auto",
                       help="Ray cluster to join: auto (the one `ray start` began on this machine), HOST:PORT (a "
                            "head's GCS address; checked to be a Ray head within seconds), ray://HOST:PORT (Ray "
                            "Client), or local (start a private single-machine Ray for this command only, "
                            "stopped when it ends)")
    group.add_argument("--ray-workers", type=int, default=None,
                       help="number of Ray actors (default: one per GPU, else one per --ray-cpus-per-worker CPUs)")
    group.add_argument("--ray-cpus-per-worker", type=int, default=1,
                       help="CPUs (= torch threads on CPU) per Ray actor (default 1)")


REGISTRY: dict[str, EngineSpec] = {spec.name: spec for spec in (
    EngineSpec("local", "this process (default)", "repbench.engines.local:from_args"),
    EngineSpec("ray", "actors on a running Ray cluster", "repbench.engines.ray_engine:from_args", _ray_arguments),
)}
ENGINES: tuple[str, ...] = tuple(REGISTRY)


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """--engine, then each engine's own group of options."""
    parser.add_argument("--engine", choices=ENGINES, default="local",
                        help=" or ".join(f"{s.name} ({s.summary})" for s in REGISTRY.values()))
    for spec in REGISTRY.values():
        if spec.add_arguments is not None:
            spec.add_arguments(parser.add_argument_group(f"{spec.name} engine (with --engine {spec.name})"))


def make_engine(name: str, **options: Any) -> Engine:
    """The engine `name`, with its options by their argparse names (defaults for the ones not given)."""
    if name not in REGISTRY:
        raise RepbenchError(f"unknown engine {name!r}; known engines: {', '.join(ENGINES)}")
    parser = argparse.ArgumentParser(add_help=False)
    add_engine_arguments(parser)
    args = parser.parse_args([])
    vars(args).update(options, engine=name)
    return REGISTRY[name].make(args)


@contextmanager
def worker_pool(args: argparse.Namespace, request: BackboneRequest):
    """The pool for a command's --engine options; closed (actors released) whatever happens."""
    pool = REGISTRY[args.engine].make(args).workers(request)
    try:
        yield pool
    finally:
        pool.close()
