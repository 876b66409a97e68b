"""`repbench search`: exact search of an encoded query store over an encoded passage store, streamed.

Example:
  repbench search --queries results/reps/q4 --docs results/reps/p16 --modes all --max-memory 4GiB \\
      --out results/search/q4p16
Writes runs/<mode>.trec. Memory is bounded by the chunk (--chunk-docs or --max-memory), not by the
number of passages; results equal the in-memory search (repbench.retrieval.search.retrieve). With
--device cuda the dense modes are scored on the GPU, each chunk's copy overlapping the previous one's
scoring; the sparse products stay on the host.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from repbench.commands.encode_options import add_device_argument
from repbench.errors import RepbenchError

_UNITS = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
          "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12}


def parse_bytes(text: str) -> int:
    """'4GiB' -> 4294967296, '500MB' -> 500000000, '1e9' -> 1000000000."""
    m = re.fullmatch(r"\s*([0-9.eE+]+)\s*([A-Za-z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise RepbenchError(f"--max-memory expects a size such as 4GiB, 512MiB or 2e9 bytes, got {text!r}")
    try:
        value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    except ValueError:
        raise RepbenchError(f"--max-memory expects a number and a unit, got {text!r}") from None
    if not value < 2**63:  # also inf and nan ('1e400')
        raise RepbenchError(f"--max-memory expects a finite size below 2**63 bytes, got {text!r}")
    if value < 1:
        raise RepbenchError(f"--max-memory must be positive, got {text!r}")
    return int(value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queries", required=True, help="query representations directory (repbench encode --side query)")
    parser.add_argument("--docs", required=True, help="passage representations directory (any size: streamed)")
    parser.add_argument("--modes", default="all", help="'all' or a comma list of score modes")
    parser.add_argument("--depth", type=int, default=1000, help="documents per query (default 1000)")
    limit = parser.add_mutually_exclusive_group()
    limit.add_argument("--chunk-docs", type=int, default=None, help="passages scored at once")
    limit.add_argument("--max-memory", default=None, help="bound on one chunk's working set, e.g. 4GiB (default 1GiB)")
    parser.add_argument("--keep-self-hits", action="store_true", help="keep a doc whose id equals the query id")
    parser.add_argument("--no-verify", action="store_true", help="skip the per-shard sha256 check (faster, unsafe)")
    parser.add_argument("--out", required=True, help="output directory for runs/<mode>.trec")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar over the passage chunks")
    # The CPU by default: evaluate scores its cells on the CPU, so the default search writes its bytes; a
    # GPU's float32 sums may move a score's last bit.
    add_device_argument(parser, "cpu", "the same bytes as evaluate's runs; cuda scores on the GPU")
    parser.add_argument("--allow-mixed", action="store_true",
                        help="search even when queries and passages come from different backbones, encoders or "
                             "vocabularies (refused by default: their scores mean nothing together)")


def search_device(text: str) -> Any:
    """--device as a torch.device that can hold this search's tensors, or one exit-2 error saying why not."""
    import torch

    from repbench.backbones.loading import resolve_device

    expected = "expected auto, cpu, cuda or cuda:N (or another torch device this machine has)"
    try:
        device = resolve_device(text)
    except RuntimeError:  # torch.device's own parse error
        raise RepbenchError(f"--device {text!r} is not a device name; {expected}") from None
    if device.type == "meta":
        raise RepbenchError("--device meta holds shapes, not numbers: a search there ranks nothing; " + expected)
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise RepbenchError(f"--device {text}: this machine has {torch.cuda.device_count()} CUDA device(s) "
                            f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    try:
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as exc:  # a backend torch knows but this machine lacks (mps, xpu)
        why = str(exc).splitlines()[0].split(". ")[0][:160]  # torch's first sentence, not its backend list
        raise RepbenchError(f"--device {text} is not available here ({why}); {expected}") from None
    return device


def _check_same_space(queries, docs, args: argparse.Namespace) -> None:
    """Queries and passages must share a representation space: a hidden-size mismatch cannot be scored
    at all (refused always); another backbone, encoder or vocabulary gives meaningless scores (a sparse
    id is a token of one vocabulary), refused unless --allow-mixed."""
    from repbench.retrieval.streaming import store_shapes

    q_hidden, d_hidden = int(queries.dense.shape[-1]), store_shapes(docs)[1]
    if q_hidden != d_hidden:
        raise RepbenchError(f"{args.queries} holds {q_hidden}-dimensional vectors, {args.docs} {d_hidden}-dimensional "
                            "ones; expected queries and passages encoded by the same backbone")
    differ = [f"{key} {queries.meta.get(key)!r} vs {docs.meta.get(key)!r}"
              for key in ("backbone", "family", "encoder", "vocab_size")
              if queries.meta.get(key) != docs.meta.get(key)]
    if not differ:
        return
    if not args.allow_mixed:
        raise RepbenchError(f"{args.queries} and {args.docs} differ in " + ", ".join(differ) + "; expected one "
                            "backbone and encoder for both sides (pass --allow-mixed to search anyway)")
    print("repbench search: warning: queries and passages differ in " + ", ".join(differ), file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from repbench.encoders.store import load_sharded, open_store
    from repbench.evaluation.trec import round_scores, write_run
    from repbench.retrieval.search import modes_for, parse_modes
    from repbench.retrieval.streaming import store_shapes, stream_retrieve
    from repbench.schema import system_name

    if args.depth < 1 or (args.chunk_docs is not None and args.chunk_docs < 1):
        raise RepbenchError("--depth and --chunk-docs must be positive integers")
    max_memory = parse_bytes(args.max_memory) if args.max_memory else None
    device = search_device(args.device)
    modes = parse_modes(args.modes)
    queries = load_sharded(args.queries, verify=True)
    docs = open_store(args.docs)
    _check_same_space(queries, docs, args)
    modes = modes_for(queries.k, store_shapes(docs)[0], modes)
    t0 = time.perf_counter()
    runs = stream_retrieve(queries, docs, modes, depth=args.depth, remove_self=not args.keep_self_hits,
                           chunk_docs=args.chunk_docs, max_memory=max_memory, verify=not args.no_verify,
                           progress=not args.no_progress, device=device)
    dt = time.perf_counter() - t0
    out = Path(args.out)
    for mode, mode_run in runs.items():
        # The tag names the system as evaluate's runs do: backbone/encoder/qKpK/mode.
        tag = system_name(str(queries.meta.get("backbone")), str(queries.meta.get("encoder")), queries.k,
                          store_shapes(docs)[0], mode)
        write_run(out / "runs" / f"{mode}.trec", round_scores(mode_run), tag=tag)
    print(f"searched {len(docs)} passages for {len(queries)} queries in {dt:.1f}s "
          f"({', '.join(runs)}) -> {out / 'runs'}")
    return 0
