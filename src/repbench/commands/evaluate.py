"""`repbench evaluate`: the (K_q, K_p) x score-mode sweep on one collection.

Example:
  repbench evaluate --backbone tiny-diffusion --dataset data/adi --kq 1,2,4 --kp 1,4 \\
      --modes all --out results/eval/adi-tiny
Rerunning the same command resumes: finished cells and cached encodings are reused.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from repbench.commands.encode_options import (
    add_encoder_argument,
    add_method_arguments,
    add_model_arguments,
    apply_threads,
    method_fields,
)
from repbench.engines import add_engine_arguments
from repbench.evaluation.measures import DEFAULT_MEASURES
from repbench.retrieval.modes import DEFAULT_DEPTH, MODES

# The sweep's own modules (pandas, torch) are imported when the command runs, so --help answers at once.


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    add_encoder_argument(parser)
    parser.add_argument("--dataset", required=True, help="BEIR-layout directory (corpus, queries, qrels/)")
    parser.add_argument("--split", default="test", help="qrels split (default test)")
    parser.add_argument("--kq", default="1,2,4", help="query K values, comma separated (default 1,2,4)")
    parser.add_argument("--kp", default=None,
                        help="passage K values, comma separated (default 1,4,16, or the --passages-store Ks)")
    parser.add_argument("--passages-store", action="append", default=[], metavar="DIR",
                        help="a store `repbench encode --side passage` wrote over this dataset's corpus, scored "
                             "at its K instead of encoding the passages (repeat for several K_p); refused unless "
                             "it encodes the sweep's backbone, encoder and options over exactly this corpus")
    parser.add_argument("--modes", default="all", help=f"'all' or a comma list of {', '.join(MODES)}")
    parser.add_argument("--out", required=True, help="output directory (resumed if it exists)")
    parser.add_argument("--cache", default=None, help="representation cache directory (default OUT/reps)")
    parser.add_argument("--depth", type=int, default=DEFAULT_DEPTH, help="documents per query (default 1000)")
    parser.add_argument("--measures", default=",".join(DEFAULT_MEASURES),
                        help="comma list of measures, trec_eval names (ndcg_cut_10, map, recall_100) or "
                             "ir_measures names (nDCG@10, AP, R@100, RR@10)"
                             )
    parser.add_argument("--relevance-level", type=int, default=1,
                        help="minimum grade binary measures (recall, recip_rank, P) count as relevant (default 1)")
    parser.add_argument("--keep-self-hits", action="store_true",
                        help="keep a retrieved doc whose id equals the query id (the paper keeps them)")
    parser.add_argument("--subsample", default=None, metavar="QUERIES,DISTRACTORS",
                        help="a smaller collection for a quick run: QUERIES judged queries drawn at random "
                             "(--seed) with all their judged documents, plus DISTRACTORS other documents")
    parser.add_argument("--seed", type=int, default=0, help="seed of --subsample (default 0)")
    parser.add_argument("--shard-size", type=int, default=None,
                        help="encode each side in shards of this many items, in input order (default: "
                             "passages in shards of whole batches, longest first, which gives the vectors of "
                             "one whole-side call); with --engine ray the shards are spread over the workers")
    parser.add_argument("--max-memory", default=None,
                        help="bound on one search chunk's working set, e.g. 512MiB (default 1GiB): each cell "
                             "streams the passage store, so memory does not grow with the corpus")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bars (cells, and texts encoded with rate and ETA)")
    add_engine_arguments(parser)
    add_method_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from repbench.encoders import EncodeOptions, default_encoder
    from repbench.engines import BackboneRequest, worker_pool
    from repbench.errors import RepbenchError
    from repbench.evaluation.collections import load_beir, subsample
    from repbench.evaluation.metrics import check_measures
    from repbench.evaluation.sweep import SweepConfig, parse_ks, run_sweep
    from repbench.retrieval.search import parse_modes

    collection = load_beir(args.dataset, split=args.split)
    if args.subsample:
        try:
            nq, nd = (int(x) for x in args.subsample.split(","))
        except ValueError:
            raise RepbenchError(f"--subsample expects QUERIES,DISTRACTORS, got {args.subsample!r}") from None
        collection = subsample(collection, nq, nd, seed=args.seed)
    modes = parse_modes(args.modes)
    if args.kp is None and args.passages_store:  # the stores' own Ks
        from repbench.encoders.store_checks import read_store_config
        from repbench.encoders.types import StoreError

        try:
            ks = {read_store_config(Path(d)).get("k") for d in args.passages_store}
        except StoreError as exc:
            raise RepbenchError(f"--passages-store: {exc}") from None
        # one that is not a K is refused with its reason when the stores are checked
        args.kp = ",".join(str(k) for k in sorted(k for k in ks if type(k) is int)) or None
    kq, kp = parse_ks(args.kq, "--kq"), parse_ks(args.kp or "1,4,16", "--kp")
    measures = check_measures(args.measures.split(","))  # before the backbone loads: fail fast
    if args.shard_size is not None and args.shard_size < 1:
        raise RepbenchError(f"--shard-size must be a positive integer, got {args.shard_size}")
    from repbench.commands.search import parse_bytes

    max_memory = parse_bytes(args.max_memory) if args.max_memory else None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    apply_threads(args, "evaluate")
    with worker_pool(args, BackboneRequest(args.backbone, device=args.device, dtype=args.dtype, attn=args.attn,
                                         path=args.model_path)) as pool:
        options = EncodeOptions(max_length=args.max_length, batch_size=args.batch_size, **method_fields(args))
        config = SweepConfig(
            backbone=args.backbone, encoder=args.encoder or default_encoder(pool.info.spec.family), kq=kq, kp=kp,
            modes=modes, depth=args.depth, remove_self=not args.keep_self_hits, measures=measures,
            relevance_level=args.relevance_level, options=options,
        )
        per_query = run_sweep(collection, pool.backbone, config, Path(args.out), cache_dir=args.cache,
                              progress=not args.no_progress, encode_fn=pool.sweep_encode_fn(args.shard_size),
                              run_cells=pool.cell_runner(), max_memory=max_memory, shard_size=args.shard_size,
                              passage_stores=args.passages_store)
    means = per_query.groupby(["k_q", "k_p", "mode", "measure"], sort=False)["value"].mean().unstack("measure")
    print(f"{collection.name}: {len(collection.corpus_ids)} docs, {per_query['qid'].nunique()} queries; "
          f"{args.backbone} / {config.encoder}")
    print(means.round(4).to_string())
    print(f"wrote {Path(args.out) / 'per_query.csv'}, summary.csv, metadata.json, runs/")
    return 0
