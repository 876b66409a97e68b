"""`repbench encode`: a BEIR-format JSONL -> a sharded, resumable representations directory."""

from __future__ import annotations

import argparse
import time

from repbench.commands.encode_options import (
    add_encoder_argument,
    add_method_arguments,
    add_model_arguments,
    apply_threads,
    method_fields,
)
from repbench.encoders.registry import check
from repbench.engines import add_engine_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="JSONL with _id, optional title, text (.jsonl or .jsonl.gz)")
    add_model_arguments(parser)
    add_encoder_argument(parser)
    parser.add_argument("--k", type=int, default=1, help="number of representatives K per text")
    parser.add_argument("--side", choices=("query", "passage"), default="passage",
                        help="which prompt the texts get: query or passage")
    parser.add_argument("--out", required=True, help="output directory (resumable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (texts done, rate and ETA)")
    parser.add_argument("--shard-size", type=int, default=1000, help="items per shard (default 1000)")
    parser.add_argument("--store-dtype", choices=("auto", "float16", "bfloat16", "float32"), default="auto",
                        help="dtype of the dense tensors on disk: auto stores the model's own dtype (lossless, so "
                             "search equals evaluate); float16 halves a float32 store (sparse weights stay exact)")
    parser.add_argument("--shard-index", type=int, default=0,
                        help="this worker's index I in [0, --num-shards): it encodes shards I, I+N, I+2N, ...")
    parser.add_argument("--num-shards", type=int, default=1,
                        help="number of workers N sharing --out (a SLURM array); the last one writes the manifest")
    add_method_arguments(parser)
    add_engine_arguments(parser)


def backbone_request(args: argparse.Namespace):
    from repbench.engines import BackboneRequest

    return BackboneRequest(args.backbone, device=args.device, dtype=args.dtype, attn=args.attn, path=args.model_path)


def _store_dtype(requested: str, model_dtype: str) -> str:
    """`auto`: the dtype the vectors were computed in, so storing them rounds nothing.

    Real LM hidden states are anisotropic (single_dense cosines of 0.96-0.97 on ADI with SmolLM2), so a float16
    store of float32 vectors reorders near-ties and search would no longer give evaluate's numbers.
    """
    if requested != "auto":
        return requested
    return model_dtype if model_dtype in ("float16", "bfloat16") else "float32"


def run(args: argparse.Namespace) -> int:
    from repbench.backbones import get_spec
    from repbench.encoders import EncodeOptions, check_fits, default_encoder
    from repbench.encoders.identity import identity_of
    from repbench.encoders.options import batch_rule
    from repbench.encoders.store import encode_sharded
    from repbench.engines import worker_pool
    from repbench.errors import RepbenchError
    from repbench.io import read_texts_jsonl
    from repbench.telemetry.environment import result_header

    for name in ("batch_size", "shard_size", "k", "max_length", "num_shards"):
        if getattr(args, name) < 1:
            raise RepbenchError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    if not 0 <= args.shard_index < args.num_shards:
        raise RepbenchError(f"--shard-index must be in [0, {args.num_shards}), got {args.shard_index}")
    ids, texts = read_texts_jsonl(args.input)  # validates every line before anything is written
    apply_threads(args, "encode")
    spec = get_spec(args.backbone)
    encoder = args.encoder or default_encoder(spec.family)
    method = method_fields(args)
    opts = EncodeOptions(k=args.k, side=args.side, batch_size=args.batch_size, max_length=args.max_length, **method)
    check(encoder, opts, spec.mask_token_id, spec.name)  # refuse before any worker starts or directory is made
    t0 = time.perf_counter()
    with worker_pool(args, backbone_request(args)) as pool:
        info = pool.info  # the loaded backbone, on this process or on the Ray workers (all agree)
        if pool.in_process:  # the tokenizer is here: the --max-length minimum, before config.json
            check_fits(pool.backbone, encoder, opts)
        store_dtype = _store_dtype(args.store_dtype, info.dtype)
        # The store's identity: what `evaluate --passages-store` and a resumed encode check against.
        identity = identity_of(info, encoder, opts, store_dtype=store_dtype)
        config = {"input": str(args.input), **identity.fields()}
        out = encode_sharded(args.out, ids, texts, config, pool.rows_encoder(encoder, opts),
                             shard_size=args.shard_size,
                             header=result_header({**config, "batch_rule": batch_rule(info.dtype)}, "representations"),
                             progress=not args.no_progress,
                             store_dtype=store_dtype, shard_index=args.shard_index,
                             worker_count=args.num_shards,
                             run_shards=pool.shard_runner(args.out, ids, texts, args.shard_size, encoder, opts))
        stats = dict(pool.stats)
    dt = time.perf_counter() - t0
    if stats:
        print(f"ray: {stats.get('written', 0)} shards written, {stats.get('already_done', 0)} found done by a "
              f"retry, {stats.get('lost', 0)} jobs re-queued after a lost worker")
    part = "" if args.num_shards == 1 else f" (worker {args.shard_index} of {args.num_shards})"
    print(f"encoded{part} {len(ids)} items with {info.spec.name} ({encoder}, K={args.k}) on the {args.engine} "
          f"engine in {dt:.1f}s ({len(ids) / dt:.1f} items/s incl. skipped shards) -> {out}")
    return 0
