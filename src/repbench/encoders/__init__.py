"""Encoders: K representatives per text, all returned as one `Representations` type.

How to encode is one `EncodeOptions` (encoders/options.py); which encoders exist, their family,
batch function, max K and the options each reads is `encoders/registry.py`; `encode`/`encode_ids`
(encoders/pipeline.py) batch texts through one of them. The names below are imported on first use,
so reading the registry (the report does, for colours) does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from repbench.encoders.options import READOUTS, EncodeOptions
from repbench.encoders.registry import ENCODERS, MAX_K, default_encoder

_LAZY = {
    "encode": "repbench.encoders.pipeline",
    "encode_ids": "repbench.encoders.pipeline",
    "check_fits": "repbench.encoders.pipeline",
    "Representations": "repbench.encoders.types",
    "N_TAIL": "repbench.encoders.prompts",  # part of the public layout contract (g_start = L - K - N_TAIL)
    "_truncate_parallel": ("repbench.encoders.batch", "truncate_parallel"),
    "_truncate_sequential": ("repbench.encoders.batch", "truncate_sequential"),
}

__all__ = ["ENCODERS", "MAX_K", "N_TAIL", "READOUTS", "EncodeOptions", "Representations", "check_fits",
           "default_encoder", "encode", "encode_ids"]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'repbench.encoders' has no attribute {name!r}")
    module, attr = target if isinstance(target, tuple) else (target, name)
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # later look-ups (and monkeypatching) see a plain attribute
    return value
