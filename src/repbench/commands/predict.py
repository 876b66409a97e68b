"""`repbench predict`: the roofline floor of a (GPU, backbone) not yet measured, and an expected latency from
an overhead model fitted on a measured baseline, whose leave-one-K-out error is stated."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from repbench.errors import RepbenchError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline", help="bench JSON or baseline dir to fit the overhead model on (and report its "
                                           "leave-one-K-out error)")
    parser.add_argument("--backbone", help="registered backbone to predict for (its bundled architecture)")
    parser.add_argument("--gpu", help="vendor-table GPU to predict on (see --list-gpus); default: the baseline's "
                                      "own device and peaks")
    parser.add_argument("--peak-flops", type=float, help="custom peak matmul FLOP/s (with --peak-bandwidth)")
    parser.add_argument("--peak-bandwidth", type=float, help="custom peak memory bandwidth, bytes/s")
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), help="float32 | bfloat16 | float16 (default: bfloat16 on a GPU, else the "
                                        "baseline's dtype)")
    parser.add_argument("--encoders", default="default",
                        help="comma list, or default (sequential for ar, parallel for diffusion)")
    parser.add_argument("--k", default="1,4,16", help="comma list of K (default 1,4,16)")
    parser.add_argument("--input-tokens", default="32,128,512", help="comma list of text lengths (default 32,128,512)")
    parser.add_argument("--batch-size", default="1", help="comma list of batch sizes (default 1)")
    parser.add_argument("--json", metavar="FILE", help="write the fit, its error and the predictions as JSON")
    parser.add_argument("--markdown", metavar="FILE", help="write the same as Markdown")
    parser.add_argument("--list-gpus", action="store_true", help="print the vendor peak table with sources and exit")


def run(args: argparse.Namespace) -> int:
    from repbench.analysis import prediction as pred
    from repbench.analysis.hardware import VENDOR_PEAKS
    from repbench.benchmarking.cells import parse_int_list

    if args.list_gpus:
        for row in VENDOR_PEAKS:
            flops = ", ".join(f"{k} {v / 1e12:g} TFLOP/s" for k, v in row.flops.items())
            print(f"{row.key:<15} {row.name:<17} {flops}; {row.bandwidth / 1e12:g} TB/s\n{'':<16}source: {row.source}")
        return 0
    if args.baseline is None and args.backbone is None:
        raise RepbenchError("predict needs --baseline (fit and its leave-one-K-out error) and/or --backbone "
                            "(a prediction); see repbench predict --help")
    if (args.peak_flops is None) != (args.peak_bandwidth is None):
        raise RepbenchError("--peak-flops and --peak-bandwidth go together")
    ks = parse_int_list(args.k, "k")
    lengths = parse_int_list(args.input_tokens, "input-tokens")
    batches = parse_int_list(args.batch_size, "batch-size")
    record: dict[str, Any] = {}
    lines: list[str] = []
    model = None
    base_dtype = None
    run_ = None
    if args.baseline is not None:
        from repbench.schema.bench import read_bench

        run_ = read_bench(args.baseline)
        cells, source = pred.baseline_cells(run_)
        base_dtype = _dtype_of(run_)
        model = pred.fit(cells)
        held = pred.leave_one_k_out(cells)
        summary = pred.error_summary(held)
        eff = model.efficiency
        lines += [f"baseline {run_.path}: {len(cells)} encode cells, floors on {source}",
                  f"overhead model: t = {model.per_layer_forward_s * 1e6:.1f} us x layers x forwards + floor / "
                  + (f"{eff:.3g}" if eff is not None else "inf (the floor explains none of the time)"),
                  f"leave-one-K-out ({summary['cells']} cells, K held out in turn): |predicted/measured - 1| median "
                  f"{summary['median_abs_rel_error']:.1%}, mean {summary['mean_abs_rel_error']:.1%}, max "
                  f"{summary['max_abs_rel_error']:.1%}"]
        record["baseline"] = {"path": str(run_.path), "peaks": source, "cells": len(cells),
                              "model": {"per_layer_forward_s": model.per_layer_forward_s, "efficiency": eff},
                              "leave_one_k_out": summary, "held_out": _records(held)}
    if args.backbone is not None:
        table, notes, peaks = _predict(args, pred, model, run_, base_dtype, ks, lengths, batches)
        lines += [f"{args.backbone} on {peaks.source}: {peaks.flops / 1e12:.4g} TFLOP/s, "
                  f"{peaks.bandwidth / 1e9:.4g} GB/s"] + [f"note: {n}" for n in notes]
        record["prediction"] = {"backbone": args.backbone, "peaks": peaks.source, "peak_flops": peaks.flops,
                                "peak_bandwidth": peaks.bandwidth, "notes": notes, "cells": _records(table)}
        lines.append(_markdown_table(table, model is not None))
    print("\n".join(lines))
    _write(args, record, lines)
    return 0


def _dtype_of(run: Any) -> str | None:
    dtypes = {str(d) for d in run.cells["dtype"] if d is not None}
    return sorted(dtypes)[0] if dtypes else None


def _predict(args: argparse.Namespace, pred: Any, model: Any, run: Any, base_dtype: str | None, ks: list[int],
             lengths: list[int], batches: list[int]):
    from repbench.analysis.hardware import gpu_by_key
    from repbench.analysis.roofline import Peaks
    from repbench.analysis.roofline_cells import architecture_of
    from repbench.backbones import get_spec
    from repbench.encoders.registry import ENCODERS, default_encoder, encoders_for_family

    spec = get_spec(args.backbone)
    encoders = []
    for e in [s.strip() for s in args.encoders.split(",") if s.strip()]:
        e = default_encoder(spec.family) if e == "default" else e
        if e not in ENCODERS or e not in encoders_for_family(spec.family):
            raise RepbenchError(f"--encoders: {e!r} does not run on {args.backbone} ({spec.family}); use "
                                f"{', '.join(encoders_for_family(spec.family))}")
        encoders.append(e)
    if args.gpu is not None:
        dtype = args.dtype or "bfloat16"
        peaks = gpu_by_key(args.gpu).peaks(dtype)
    elif args.peak_flops is not None:
        if not (args.peak_flops > 0 and args.peak_bandwidth > 0 and math.isfinite(args.peak_flops + args.peak_bandwidth)):
            raise RepbenchError("--peak-flops and --peak-bandwidth must be positive numbers")
        dtype = args.dtype or "bfloat16"
        peaks = Peaks(args.peak_flops, args.peak_bandwidth, "given peaks")
    elif run is not None:
        dtype = args.dtype or base_dtype or "float32"
        device = str(next((d for d in run.cells["device"] if d is not None), "cpu"))
        peaks = pred.baseline_peaks(run.header, device, dtype)
        if peaks is None:
            raise RepbenchError(f"{run.path}: no {dtype} peaks recorded for its device; name a --gpu or give "
                                "--peak-flops/--peak-bandwidth")
    else:
        raise RepbenchError("--backbone needs a device: --gpu NAME (repbench predict --list-gpus), "
                            "--peak-flops/--peak-bandwidth, or --baseline (its own device)")
    table, notes = pred.predict_cells(args.backbone, architecture_of(args.backbone), encoders, ks, lengths, batches,
                                      dtype, peaks, model)
    if run is not None and (args.gpu or args.peak_flops) and not any(str(d).startswith("cuda")
                                                                        for d in run.cells["device"]):
        notes.append("the overhead model was fitted on a CPU baseline: its fixed cost and efficiency describe that "
                     "CPU, so 'expected ms' on a GPU is indicative only (fit on a GPU baseline to predict a GPU)")
    return table, notes, peaks


def _records(frame: Any) -> list[dict[str, Any]]:
    out = []
    for r in frame.to_dict(orient="records"):
        out.append({k: (None if isinstance(v, float) and math.isnan(v) else v.item() if hasattr(v, "item") else v)
                    for k, v in r.items()})
    return out


def _markdown_table(table: Any, expected: bool) -> str:
    head = ["encoder", "K", "input tokens", "batch", "model tokens", "forwards", "GFLOP", "GB moved", "floor ms",
            "bound"] + (["expected ms"] if expected else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table.itertuples():
        cells = [r.encoder, str(r.k), str(r.input_tokens), str(r.batch_size), str(r.model_tokens), str(r.forwards),
                 f"{r.gflops:.4g}", f"{r.gbytes:.4g}", f"{r.floor_ms:.4g}", r.bound]
        if expected:
            cells.append(f"{r.expected_ms:.4g}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _write(args: argparse.Namespace, record: dict[str, Any], lines: list[str]) -> None:
    from repbench.io import atomic_write_json, atomic_write_text
    from repbench.telemetry.environment import result_header

    if args.json:
        config = {k: v for k, v in vars(args).items() if k not in ("json", "markdown", "func")}
        atomic_write_json(Path(args.json), {**result_header(config, "predict"), **record})
    if args.markdown:
        atomic_write_text(Path(args.markdown), "# repbench predict\n\n" + "\n\n".join(lines) + "\n")
