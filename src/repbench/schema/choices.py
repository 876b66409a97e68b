"""Choices the command-line options offer, kept free of numeric imports so `--help` answers at once."""

from __future__ import annotations

TESTS: tuple[str, ...] = ("t", "wilcoxon", "randomization")  # paired significance tests (repbench.stats)
CORRECTIONS: tuple[str, ...] = ("holm", "bonferroni", "bh", "none")  # multiple-comparison corrections
SCOPES: tuple[str, ...] = ("kq", "kp", "grid")  # what an oracle or adaptive selector may vary
DEFAULT_SELECTORS: tuple[str, ...] = ("fixed_cv", "threshold", "logistic")
