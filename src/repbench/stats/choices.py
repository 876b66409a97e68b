"""The paired tests and multiple-comparison corrections repbench offers (names only: the command-line
options list them without loading numpy or scipy)."""

from __future__ import annotations

TESTS: tuple[str, ...] = ("t", "wilcoxon", "randomization")
CORRECTIONS: tuple[str, ...] = ("holm", "bonferroni", "bh", "none")
