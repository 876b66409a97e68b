"""Choices the analysis options offer, kept free of numeric imports so `--help` answers at once (the
paired tests and corrections are in repbench.stats.choices)."""

from __future__ import annotations

SCOPES: tuple[str, ...] = ("kq", "kp", "grid")  # what an oracle or adaptive selector may vary
DEFAULT_SELECTORS: tuple[str, ...] = ("fixed_cv", "threshold", "logistic")
