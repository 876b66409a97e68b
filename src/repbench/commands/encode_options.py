"""The command-line options shared by the commands that encode (encode, evaluate) and the bench: the
model options with their one set of defaults, and EncodeOptions' method fields."""

from __future__ import annotations

import argparse
from typing import Any

from repbench.encoders.options import (
    CONFIDENCE,
    EARLY_STOP,
    READOUTS,
    SPARSE_TOP_K,
    EncodeOptions,
    prompt_variants,
)
from repbench.encoders.registry import ENCODERS, encoder_name

# One set of defaults, so `encode` + `search` gives what `evaluate` gives and the bench measures the same
# model: max length as upstream's encode.py (512, prompt included), dtype/device chosen by the machine.
MODEL_DEFAULTS: dict[str, Any] = {
    "device": "auto", "dtype": "auto", "attn": "sdpa",
    "max_length": EncodeOptions.__dataclass_fields__["max_length"].default,
    "batch_size": EncodeOptions.__dataclass_fields__["batch_size"].default,
}
DEVICE_HELP = "auto (CUDA when available, else CPU) | cpu | cuda | cuda:N"
DTYPE_HELP = "auto (bfloat16 on CUDA, float32 on CPU) | float32 | bfloat16 | float16"
ATTN_HELP = "attention implementation, the same for every backbone (sdpa | eager)"


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--backbone, --model-path, --device, --dtype, --attn, --max-length, --batch-size (MODEL_DEFAULTS)."""
    g = parser.add_argument_group("model (the same defaults in encode, evaluate and pytest bench/)")
    g.add_argument("--backbone", required=True, help="backbone name (see `repbench backbones`)")
    g.add_argument("--model-path", default=None,
                   help="local checkpoint directory of a real backbone (default: REPBENCH_MODEL_PATH_<NAME> or "
                        "the local Hugging Face cache)")
    g.add_argument("--device", default=MODEL_DEFAULTS["device"], help=DEVICE_HELP)
    g.add_argument("--dtype", default=MODEL_DEFAULTS["dtype"], help=DTYPE_HELP)
    g.add_argument("--attn", default=MODEL_DEFAULTS["attn"], help=ATTN_HELP)
    g.add_argument("--max-length", type=int, default=MODEL_DEFAULTS["max_length"],
                   help="tokens per model input, prompt included; longer texts are cut to fit")
    g.add_argument("--batch-size", type=int, default=MODEL_DEFAULTS["batch_size"],
                   help="texts encoded together (float32: padding changes only the last bits of the vectors; "
                        "bfloat16: it can change a text's decoded tokens, as upstream)")
    g.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: one per physical core this process may use, or "
                        "OMP_NUM_THREADS; a busy machine gets a hint that fewer may be faster)")


def add_encoder_argument(parser: argparse.ArgumentParser) -> None:
    """--encoder, checked while parsing: a typo gets one line with a suggestion, not argparse's usage."""
    parser.add_argument("--encoder", default=None, type=encoder_name, metavar="{" + ",".join(ENCODERS) + "}",
                        help="default: the backbone family's (sequential for ar, parallel for diffusion)")


def add_method_arguments(parser: argparse.ArgumentParser) -> None:
    """--readout, --prompt-variant, --denoise-steps, --confidence, --early-stop, --adapt-prompt, --truncate/--no-truncate,
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
    g.add_argument("--early-stop", nargs="?", const="upstream", default="off", choices=EARLY_STOP, metavar="MODE",
                   help="sequential: stop decoding once every row has closed its answer. 'upstream' (the value of a "
                        "bare --early-stop): PromptReps' early exit, a row ends at its first token holding a \" and "
                        "that slot is dropped; 'strict': a special token ends a row too, and the closing slot is "
                        "kept; 'off' (default): exactly K steps, the paper's fixed-N baseline")
    g.add_argument("--adapt-prompt", action="store_true",
                   help="sequential: word the prompt for K ('Use four words ...') as the parallel path does; "
                        "off by default, as upstream's zero-shot AR class (only --prompt-variant one|three differ)")
    g.add_argument("--truncate", action=argparse.BooleanOptionalAction, default=True,
                   help="prompted encoders: drop the slots after a stop token (default on, docs/method.md §3.6)")
    g.add_argument("--sparse-top-k", type=int, default=SPARSE_TOP_K,
                   help=f"prompted encoders: vocabulary ids kept per slot (default {SPARSE_TOP_K})")


def method_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The EncodeOptions fields set by `add_method_arguments`, by their field names."""
    return {"readout": args.readout, "prompt_variant": args.prompt_variant, "denoise_steps": args.denoise_steps,
            "confidence": args.confidence, "early_stop": args.early_stop, "adapt_prompt": args.adapt_prompt,
            "truncate": args.truncate,
            "sparse_top_k": args.sparse_top_k}


def default_threads(usable: int, physical: int | None) -> int:
    """Torch threads for a CPU run: one per physical core this process may use (hyper-threads share a
    core's float units, so a second thread per core only contends). Fixed for the machine, never read off
    the current load: the thread count can change the last bits of the vectors, and a resumed run must
    give the bytes an uninterrupted one gives."""
    return max(1, min(usable, physical or usable))


def busy_hint(threads: int, load: float | None, cores: int) -> str | None:
    """A one-line hint when other processes already keep the cores busy."""
    if load is None or threads <= 1 or load < cores - 0.5:
        return None
    return (f"the machine is busy (load average {load:.1f} on {cores} cores): --threads 1 can be up to twice as "
            f"fast as the default {threads} here; keep one thread count per output directory, since it can change "
            "the last bits of the vectors")


def apply_threads(args: argparse.Namespace, command: str) -> int | None:
    """Set torch's CPU thread count from --threads (or `default_threads`); None on a GPU device, untouched.
    OMP_NUM_THREADS, when set, is the user's choice and wins over the default."""
    import os
    import sys

    import psutil
    import torch

    from repbench.errors import RepbenchError

    if args.threads is not None and args.threads < 1:
        raise RepbenchError(f"--threads must be a positive integer, got {args.threads}")
    if str(args.device).startswith("cuda") or (args.device == "auto" and torch.cuda.is_available()):
        return None
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if args.threads is None and os.environ.get("OMP_NUM_THREADS"):
        threads = torch.get_num_threads()
    else:
        threads = args.threads or default_threads(usable, psutil.cpu_count(logical=False))
        torch.set_num_threads(threads)
    try:
        load: float | None = os.getloadavg()[0]
    except (OSError, AttributeError):
        load = None
    hint = busy_hint(threads, load, usable) if args.threads is None else None
    if hint:
        print(f"repbench {command}: {hint}", file=sys.stderr)
    return threads
