"""Analysis of per-query effectiveness tables: pure functions on tidy pandas tables.

- `perquery`: read a per_query.csv, name systems `backbone/encoder/q{k_q}p{k_p}/mode`, align query sets
  into a system x query matrix;
- `significance`: paired t / Wilcoxon / randomization tests, bootstrap CIs, effect sizes, Holm /
  Bonferroni / Benjamini-Hochberg, and the significance table;
- `oracle`: the per-query oracle over K (an optimistic upper bound) and its picked-cell distribution.
"""
