"""The command-line form of EncodeOptions' method fields, shared by the commands that encode."""

from __future__ import annotations

import argparse
from typing import Any

from repbench.encoders.options import CONFIDENCE, READOUTS, SPARSE_TOP_K, prompt_variants


def add_method_arguments(parser: argparse.ArgumentParser) -> None:
    """--readout, --prompt-variant, --denoise-steps, --confidence, --early-stop, --truncate/--no-truncate,
    --sparse-top-k. Defaults are EncodeOptions' (the paper's settings); an option the chosen encoder does
    not read is refused before anything is encoded."""
    g = parser.add_argument_group("encoding method (EncodeOptions; every one keys the representation cache)")
    g.add_argument("--readout", choices=READOUTS, default="paper",
                   help="parallel: 'paper' slot positions or 'aligned' (one left on Dream) (default paper)")
    g.add_argument("--prompt-variant", choices=prompt_variants(), default=None,
                   help="prompted encoders: prompt file variant (default: 'one' at K=1, 'few' at K>1)")
    g.add_argument("--denoise-steps", type=int, default=1, help="parallel: unmasking passes S (default 1)")
    g.add_argument("--confidence", choices=CONFIDENCE, default="entropy",
                   help="parallel, S>1: which slots unmask first (default entropy)")
    g.add_argument("--early-stop", action="store_true",
                   help="sequential: a row ends at its first special or quote-holding token; stop when all have")
    g.add_argument("--truncate", action=argparse.BooleanOptionalAction, default=True,
                   help="prompted encoders: drop the slots after a stop token (default on, method-spec §3.6)")
    g.add_argument("--sparse-top-k", type=int, default=SPARSE_TOP_K,
                   help=f"prompted encoders: vocabulary ids kept per slot (default {SPARSE_TOP_K})")


def method_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The EncodeOptions fields set by `add_method_arguments`, by their field names."""
    return {"readout": args.readout, "prompt_variant": args.prompt_variant, "denoise_steps": args.denoise_steps,
            "confidence": args.confidence, "early_stop": args.early_stop, "truncate": args.truncate,
            "sparse_top_k": args.sparse_top_k}
