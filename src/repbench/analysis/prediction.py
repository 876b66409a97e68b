"""Expected latency of an unmeasured (GPU, backbone) cell: its roofline floor plus an overhead model fitted
on a measured baseline, and that model's error on held-out K (leave-one-K-out).

The model: measured seconds t = c x (layers x forwards) + floor / e, fitted by non-negative least squares
with each cell weighted by 1/t (so every cell counts by its relative error). c is the eager framework's
fixed cost per decoder layer per forward pass (kernel launches and Python dispatch, which do not shrink
with the work), e the fraction of the roofline the kernels reach. Both are properties of a software stack
on a kind of device: fit on a baseline of the device class you predict for (a GPU baseline for a GPU),
where layers x forwards carries the cost across backbone depths and the floor carries it across sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from repbench.analysis.roofline import Architecture, Peaks, encoder_forwards, roofline
from repbench.analysis.roofline_cells import architectures, gpu_row, probe_peaks
from repbench.errors import RepbenchError
from repbench.schema import ENCODERS
from repbench.schema.bench import BenchRun


@dataclass(frozen=True)
class OverheadModel:
    per_layer_forward_s: float  # c
    inverse_efficiency: float   # 1/e (0 when the floor explains none of the time)
    n_cells: int

    @property
    def efficiency(self) -> float | None:
        return 1.0 / self.inverse_efficiency if self.inverse_efficiency > 0 else None

    def predict(self, floor_s: np.ndarray | float, layer_forwards: np.ndarray | float) -> np.ndarray:
        return self.per_layer_forward_s * np.asarray(layer_forwards, float) + self.inverse_efficiency * np.asarray(floor_s, float)


def fit(cells: pd.DataFrame) -> OverheadModel:
    """Fit c and 1/e on cells with `measured_s`, `floor_s` and `layer_forwards` (NNLS, weights 1/t)."""
    from scipy.optimize import nnls

    if len(cells) < 2:
        raise RepbenchError(f"the overhead model needs at least 2 measured cells, got {len(cells)}")
    t = cells["measured_s"].to_numpy(float)
    design = np.column_stack([cells["layer_forwards"].to_numpy(float), cells["floor_s"].to_numpy(float)])
    coef, _ = nnls(design / t[:, None], np.ones_like(t))
    return OverheadModel(float(coef[0]), float(coef[1]), len(cells))


def baseline_cells(run: BenchRun) -> tuple[pd.DataFrame, str]:
    """The measured encode cells of a baseline with their floor on its own peaks (vendor row on a known GPU,
    else the probe recorded in the JSON), and a description of those peaks."""
    header = run.header
    encode = [r for r in run.records if r.get("encoder") in ENCODERS and not r.get("skipped")]
    archs = architectures(header, {str(r["backbone"]) for r in encode})
    rows, sources = [], set()
    for r in encode:
        arch = archs.get(str(r["backbone"]))
        if arch is None or r.get("model_input_tokens") is None or not len(r["samples_s"]):
            continue
        peaks = baseline_peaks(header, str(r.get("device") or "cpu"), str(r.get("dtype")))
        if peaks is None:
            continue
        sources.add(peaks.source)
        fw = encoder_forwards(r["encoder"], int(r["model_input_tokens"]), int(r["k"]), int(r.get("batch_size") or 1))
        roof = roofline(arch, fw, str(r["dtype"]), peaks)
        rows.append({"backbone": r["backbone"], "encoder": r["encoder"], "k": int(r["k"]),
                     "input_tokens": r.get("input_tokens"), "batch_size": int(r.get("batch_size") or 1),
                     "model_tokens": int(r["model_input_tokens"]), "measured_s": float(np.median(r["samples_s"])),
                     "floor_s": roof.floor_s, "forwards": len(fw), "layer_forwards": len(fw) * arch.layers})
    if not rows:
        raise RepbenchError(f"{run.path}: no encode cell has peaks to fit against (machine_info.repbench.peaks is "
                            "written by the bench harness since the roofline was added; re-run `pytest bench/` or "
                            "use a GPU baseline of the vendor table)")
    return pd.DataFrame(rows), "; ".join(sorted(sources))


def baseline_peaks(header: dict[str, Any], device: str, dtype: str) -> Peaks | None:
    row = gpu_row(header) if device.startswith("cuda") else None
    if row is not None and dtype in row.flops:
        return row.peaks(dtype)
    return probe_peaks(header.get("peaks"), device, dtype)


def leave_one_k_out(cells: pd.DataFrame) -> pd.DataFrame:
    """Each cell predicted by a model fitted on the cells of every other K: measured, predicted, error."""
    ks = sorted(cells["k"].unique())
    if len(ks) < 2:
        raise RepbenchError("leave-one-K-out needs cells at two K values or more")
    parts = []
    for k in ks:
        held = cells[cells["k"] == k].copy()
        model = fit(cells[cells["k"] != k])
        held["predicted_s"] = model.predict(held["floor_s"], held["layer_forwards"])
        parts.append(held)
    out = pd.concat(parts).sort_index()
    out["rel_error"] = out["predicted_s"] / out["measured_s"] - 1.0
    return out


def error_summary(held: pd.DataFrame) -> dict[str, float]:
    err = held["rel_error"].abs().to_numpy(float)
    return {"cells": int(len(err)), "median_abs_rel_error": float(np.median(err)),
            "mean_abs_rel_error": float(np.mean(err)), "max_abs_rel_error": float(np.max(err))}


def model_tokens(backbone: str, encoder: str, k: int, input_tokens: int) -> tuple[int, str | None]:
    """Tokens the model sees for a text of `input_tokens` tokens (the bench's model_input_tokens), from the
    prompt repbench builds with the backbone's tokenizer, and a note where that tokenizer is a stand-in."""
    from repbench.backbones import get_spec
    from repbench.encoders.prompts import N_TAIL, build_prompt_ids
    from repbench.encoders.single_pass import special_prefix

    spec = get_spec(backbone)
    tok, note = _tokenizer(spec)
    if encoder in ("parallel", "sequential"):
        prompt = build_prompt_ids(tok, "query", k)
        n = len(prompt.prefix) + input_tokens + len(prompt.suffix)
        return (n + k + N_TAIL if encoder == "parallel" else n), note
    if encoder == "meanpool":
        return len(special_prefix(tok)) + input_tokens, note
    if encoder == "lasttoken":  # "query: " + text with special tokens, then EOS
        return len(tok("query:", add_special_tokens=True)["input_ids"]) + input_tokens + 1, note
    raise RepbenchError(f"unknown encoder {encoder!r}")


def _tokenizer(spec: Any) -> tuple[Any, str | None]:
    from repbench.backbones.loading import checkpoint_path, smollm2_tokenizer

    if spec.source == "tiny":
        from repbench.backbones.tiny_tokenizer import tiny_tokenizer

        return tiny_tokenizer(), None
    if spec.source == "hf":
        try:
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(checkpoint_path(spec)), None
        except (RepbenchError, OSError, ValueError):
            return smollm2_tokenizer(), (f"{spec.name}: no local checkpoint, so its prompt is counted with the "
                                         "SmolLM2 tokenizer (as its :random variant runs); the real one may "
                                         "differ by a few tokens")
    return smollm2_tokenizer(), None


def predict_cells(backbone: str, arch: Architecture, encoders: list[str], ks: list[int], lengths: list[int],
                  batches: list[int], dtype: str, peaks: Peaks, model: OverheadModel | None) -> tuple[pd.DataFrame, list[str]]:
    """Floor (and, with a model, expected latency) of each (encoder, K, length, batch) on `peaks`."""
    rows, notes = [], []
    for enc in encoders:
        for length in lengths:
            for k in (ks if enc in ("parallel", "sequential") else [1]):
                seq, note = model_tokens(backbone, enc, k, length)
                if note and note not in notes:
                    notes.append(note)
                for b in batches:
                    fw = encoder_forwards(enc, seq, k, b)
                    roof = roofline(arch, fw, dtype, peaks)
                    row = {"backbone": backbone, "encoder": enc, "k": k, "input_tokens": length, "batch_size": b,
                           "model_tokens": seq, "forwards": len(fw), "gflops": roof.work.flops / 1e9,
                           "gbytes": roof.work.bytes / 1e9, "floor_ms": roof.floor_s * 1e3, "bound": roof.bound,
                           "expected_ms": np.nan}
                    if model is not None:
                        row["expected_ms"] = float(model.predict(roof.floor_s, len(fw) * arch.layers)) * 1e3
                    rows.append(row)
    return pd.DataFrame(rows), notes
