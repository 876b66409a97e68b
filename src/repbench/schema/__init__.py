"""The tidy contract between stages: column lists, system naming, the mode and encoder names.

This package imports nothing heavier than the standard library at import time, so every stage (from
the encoders down to the report) can depend on it. Readers and writers per file kind live in
sub-modules of this package; docs/contracts.md describes the files.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

ENCODERS: tuple[str, ...] = ("sequential", "parallel", "meanpool", "lasttoken")
MODES: tuple[str, ...] = (
    "single_dense",
    "multi_dense",
    "sparse_max",
    "fusion_single_sparse_max",
    "fusion_multi_sparse_max",
)

PER_QUERY_COLUMNS: tuple[str, ...] = (
    "dataset", "backbone", "family", "encoder", "k_q", "k_p", "mode", "qid", "measure", "value",
)
SUMMARY_COLUMNS: tuple[str, ...] = (
    "dataset", "backbone", "family", "encoder", "k_q", "k_p", "mode", "measure", "mean", "n",
)


def system_name(backbone: str, encoder: str, k_q: int, k_p: int, mode: str) -> str:
    """`backbone/encoder/q{k_q}p{k_p}/mode`: how analysis tables name one sweep cell and mode."""
    return f"{backbone}/{encoder}/q{int(k_q)}p{int(k_p)}/{mode}"
