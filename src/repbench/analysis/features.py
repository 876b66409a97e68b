"""Per-query features for the adaptive selectors, from the encode-time signals (schema.signals).

Features come from ONE query encoding (the probe, K = `k`, default the smallest K encoded): what a
deployed selector would compute before choosing K_q. Per-slot signals are summarised over the valid
slots (mean), and slot 0 is kept on its own (it is the same forward step at every K for the sequential
encoder). Token ids are categorical and are not used as features.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from repbench.errors import RepbenchError
from repbench.schema.signals import TEXT_SIGNALS

FEATURE_TEXT = tuple(s for s in TEXT_SIGNALS if s != "input_tokens")  # input_tokens = text_tokens + a constant


def query_features(signals: pd.DataFrame, dataset: str, backbone: str, encoder: str,
                   k: int | None = None) -> tuple[pd.DataFrame, int]:
    """(features indexed by qid, the probe K used) for one dataset/backbone/encoder's query side."""
    rows = signals[(signals["dataset"].astype(str) == str(dataset)) & (signals["backbone"] == backbone)
                   & (signals["encoder"] == encoder) & (signals["side"] == "query")]
    if rows.empty:
        raise RepbenchError(f"no query signals for {dataset}/{backbone}/{encoder} in the signals table")
    ks = sorted(rows["k"].unique())
    if k is None:
        k = int(ks[0])
    elif k not in ks:
        raise RepbenchError(f"no query signals at K={k} for {dataset}/{backbone}/{encoder}; it has "
                            f"K = {', '.join(map(str, ks))}")
    rows = rows[rows["k"] == k]
    text = rows[rows["slot"].isna() & rows["signal"].isin(FEATURE_TEXT)]
    wide = text.pivot_table(index="id", columns="signal", values="value", aggfunc="first", dropna=False)
    slots = rows[rows["slot"].notna()]
    if not slots.empty:
        per_slot = slots.pivot_table(index=["id", "slot"], columns="signal", values="value", aggfunc="first")
        valid = per_slot["valid"] > 0 if "valid" in per_slot else pd.Series(True, index=per_slot.index)
        for name in ("entropy", "top1_prob"):
            if name not in per_slot:
                continue
            masked = per_slot[name].where(valid)
            wide[f"{name}_mean"] = masked.groupby(level="id").mean()
            wide[f"{name}_slot0"] = per_slot[name].xs(0, level="slot") if 0 in per_slot.index.get_level_values(
                "slot") else np.nan
    wide.index = wide.index.astype(str)
    wide.index.name = "qid"
    wide.columns.name = None
    # a feature with no value anywhere (e.g. cosine at K = 1) carries nothing
    wide = wide.loc[:, wide.notna().any(axis=0)]
    return wide.astype(np.float64).sort_index(axis=1), int(k)


