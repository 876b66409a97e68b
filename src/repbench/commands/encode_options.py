"""The command-line options shared by the commands that encode (encode, evaluate) and the bench: the
model options with their one set of defaults, and EncodeOptions' method fields."""

from __future__ import annotations

import argparse
from dataclasses import Field, dataclass, field, fields
from typing import Any

from repbench.encoders.options import EncodeOptions, cli_fields, method_names
from repbench.encoders.registry import ENCODERS, encoder_name


@dataclass(frozen=True)
class BackboneOptions:
    """How the backbone is loaded: one default each for encode, evaluate and pytest bench/."""

    device: str = field(default="auto", metadata={"help": "auto (CUDA when available, else CPU) | cpu | cuda | cuda:N"})
    dtype: str = field(default="auto", metadata={"help": "auto (bfloat16 on CUDA, float32 on CPU) | float32 | "
                                                         "bfloat16 | float16"})
    attn: str = field(default="sdpa", metadata={"help": "attention implementation, the same for every backbone "
                                                        "(sdpa | eager)"})


# One set of defaults, so `encode` + `search` gives what `evaluate` gives and the bench measures the same
# model: max length as upstream's encode.py (512, prompt included), dtype/device chosen by the machine.
MODEL_DEFAULTS: dict[str, Any] = {**{f.name: f.default for f in fields(BackboneOptions)},
                                  **{f.name: f.default for f in cli_fields(EncodeOptions, "model")}}
MODEL_HELP: dict[str, str] = {**{f.name: f.metadata["help"] for f in fields(BackboneOptions)},
                              **{f.name: f.metadata["help"] for f in cli_fields(EncodeOptions, "model")}}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_field(group: Any, f: Field) -> None:
    """One option from a dataclass field: the flag, type and action follow the default; help from metadata."""
    cli = dict(f.metadata.get("cli", {}))
    if callable(cli.get("choices")):
        cli["choices"] = cli["choices"]()
    if isinstance(f.default, bool):
        action = argparse.BooleanOptionalAction if f.default else "store_true"
        group.add_argument(_flag(f.name), action=action, default=f.default, help=f.metadata["help"])
        return
    if isinstance(f.default, int) and "nargs" not in cli:
        cli["type"] = int
    group.add_argument(_flag(f.name), default=f.default, help=f.metadata["help"], **cli)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--backbone, --model-path, the BackboneOptions (device, dtype, attn), EncodeOptions' model fields
    (max length, batch size) and --threads."""
    g = parser.add_argument_group("model (the same defaults in encode, evaluate and pytest bench/)")
    g.add_argument("--backbone", required=True, help="backbone name (see `repbench backbones`)")
    g.add_argument("--model-path", default=None,
                   help="local checkpoint directory of a real backbone (default: REPBENCH_MODEL_PATH_<NAME> or "
                        "the local Hugging Face cache)")
    for f in (*fields(BackboneOptions), *cli_fields(EncodeOptions, "model")):
        _add_field(g, f)
    g.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: one per physical core this process may use, or "
                        "OMP_NUM_THREADS; a busy machine gets a hint that fewer may be faster)")


def add_device_argument(parser: argparse.ArgumentParser, default: str, why: str) -> None:
    """--device alone (BackboneOptions' field and help), for a command that places tensors but loads no
    backbone (search), with that command's own default and the reason for it."""
    f = next(f for f in fields(BackboneOptions) if f.name == "device")
    parser.add_argument(_flag(f.name), default=default, help=f"{f.metadata['help']} (default {default}: {why})",
                        **dict(f.metadata.get("cli", {})))


def add_encoder_argument(parser: argparse.ArgumentParser) -> None:
    """--encoder, checked while parsing: a typo gets one line with a suggestion, not argparse's usage."""
    parser.add_argument("--encoder", default=None, type=encoder_name, metavar="{" + ",".join(ENCODERS) + "}",
                        help="default: the backbone family's (sequential for ar, parallel for diffusion)")


def add_method_arguments(parser: argparse.ArgumentParser, options: type = EncodeOptions) -> None:
    """One option per method field of `options` (EncodeOptions: readout, denoise steps, confidence, early
    stop, adapt prompt, prompt variant, truncate, sparse top-k), generated from the fields, so a field added
    there is an option here. Defaults are the fields' (the paper's settings); an option the chosen encoder
    does not read is refused before anything is encoded."""
    g = parser.add_argument_group("encoding method (EncodeOptions; every one keys the representation cache)")
    for f in cli_fields(options, "method"):
        _add_field(g, f)


def method_fields(args: argparse.Namespace, options: type = EncodeOptions) -> dict[str, Any]:
    """The method fields set by `add_method_arguments`, by their field names."""
    return {name: getattr(args, name) for name in method_names(options)}


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
