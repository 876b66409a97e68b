"""Analysis of per-query effectiveness and latency tables: pure functions on tidy pandas tables.

- `perquery`: align query sets into a system x query matrix (reading is `repbench.schema.tables`);
- `significance`: the significance table (tests and corrections are `repbench.stats`);
- `oracle`: the per-query oracle over K (an optimistic upper bound) and its picked-cell distribution;
- `compare`: NEW against BASE, latency (ratio of medians) and effectiveness (paired differences);
- `baselines`: stored baselines by device slug.
"""
