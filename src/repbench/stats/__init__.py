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

from repbench.stats.bootstrap import (
    bootstrap_ci,
    bootstrap_mean_ci,
    bootstrap_median_ci,
    bootstrap_statistics,
    ratio_of_medians_ci,
)
from repbench.stats.correlation import spearman_ci
from repbench.stats.paired import (
    CORRECTIONS,
    TESTS,
    adjust_pvalues,
    effect_sizes,
    paired_test,
    paired_tests,
    pvalues,
    randomization_pvalues,
    t_pvalues,
    wilcoxon_pvalues,
)
from repbench.stats.samples import (
    INVALID_IQR_RATIO,
    NOISY_IQR_RATIO,
    min_samples_for_percentile,
    ratio,
    summarize,
)

__all__ = [
    "CORRECTIONS", "INVALID_IQR_RATIO", "NOISY_IQR_RATIO", "TESTS", "adjust_pvalues", "bootstrap_ci",
    "bootstrap_mean_ci", "bootstrap_median_ci", "bootstrap_statistics", "effect_sizes",
    "min_samples_for_percentile", "paired_test", "paired_tests", "pvalues", "randomization_pvalues", "ratio",
    "ratio_of_medians_ci", "spearman_ci", "summarize", "t_pvalues", "wilcoxon_pvalues",
]
