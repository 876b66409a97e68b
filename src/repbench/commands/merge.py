"""`repbench merge`: verify every shard of a store written by several workers and write its manifest.

Example (after a SLURM array of `repbench encode ... --shard-index I --num-shards N`):
  repbench merge results/reps/msmarco-p16 --input corpus.jsonl
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="the representations directory the workers wrote (--out of encode)")
    parser.add_argument("--input", default=None,
                        help="the encoded JSONL: also check that every shard encodes its current rows")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from repbench.encoders.store import open_store, read_store_config, write_manifest
    from repbench.errors import RepbenchError
    from repbench.telemetry.environment import result_header

    out = Path(args.out)
    if not (out / "config.json").exists():
        raise RepbenchError(f"{out}: no config.json; not a representations directory written by `repbench encode`")
    ids = texts = None
    if args.input:
        from repbench.io import read_texts_jsonl

        ids, texts = read_texts_jsonl(args.input)
    config = read_store_config(out)
    write_manifest(out, result_header(config, "representations"), ids, texts)
    store = open_store(out)
    print(f"{out}: {len(store.shards)} shards, {len(store)} items verified; wrote {out / 'manifest.json'}")
    return 0
