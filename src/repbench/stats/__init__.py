"""All of repbench's statistics, used by telemetry (latency summaries), analysis (paired tests, oracle
CIs, comparisons against baselines) and the report (latency CIs):

- `bootstrap`: percentile bootstraps (one statistic over samples, many means over shared query
  resamples, a ratio of medians of two runs);
- `paired`: paired t / Wilcoxon / randomization tests, effect sizes, Holm / Bonferroni / BH corrections;
- `correlation`: Spearman's rho with a bootstrap CI over pairs;
- `samples`: summaries of raw latency samples with MLPerf-gated percentiles and noise flags.

It sits at the bottom of the import graph with `schema`: it imports only numpy, scipy and
`repbench.errors`.
"""

from __future__ import annotations

import importlib
from typing import Any

from repbench.stats.choices import CORRECTIONS, TESTS

# Each name's module, imported on first use (PEP 562): `from repbench.stats.choices import TESTS` for a
# command's --help then loads neither numpy nor scipy.
_HOME = {
    **dict.fromkeys(("bootstrap_ci", "bootstrap_mean_ci", "bootstrap_median_ci", "bootstrap_statistics",
                     "ratio_of_medians_ci"), "repbench.stats.bootstrap"),
    "spearman_ci": "repbench.stats.correlation",
    **dict.fromkeys(("adjust_pvalues", "effect_sizes", "paired_test", "paired_tests", "pvalues",
                     "randomization_pvalues", "t_pvalues", "wilcoxon_pvalues"), "repbench.stats.paired"),
    **dict.fromkeys(("INVALID_IQR_RATIO", "NOISY_IQR_RATIO", "min_samples_for_percentile", "ratio", "summarize"),
                    "repbench.stats.samples"),
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'repbench.stats' has no attribute {name!r}")


__all__ = [
    "CORRECTIONS", "INVALID_IQR_RATIO", "NOISY_IQR_RATIO", "TESTS", "adjust_pvalues", "bootstrap_ci",
    "bootstrap_mean_ci", "bootstrap_median_ci", "bootstrap_statistics", "effect_sizes",
    "min_samples_for_percentile", "paired_test", "paired_tests", "pvalues", "randomization_pvalues", "ratio",
    "ratio_of_medians_ci", "spearman_ci", "summarize", "t_pvalues", "wilcoxon_pvalues",
]
