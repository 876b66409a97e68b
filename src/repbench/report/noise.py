"""Noisy latency cells, made visible: which cells are flagged, how figures draw them, what captions say.

A cell is flagged by the harness's rule (repbench.stats.samples: IQR/median of the raw samples above 10% is
"noisy", above 25% "invalid"), recomputed here from the samples so that JSONs from any harness version
get the same flag. Figures draw a flagged cell's point hollow and captions name it: a difference that
rests on a flagged cell is run-to-run contention until a quiet rerun says otherwise, never a finding.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from repbench.stats import INVALID_IQR_RATIO, NOISY_IQR_RATIO

FLAGGED = ("noisy", "invalid")
MAX_NAMED = 8
LEGEND_LABEL = f"hollow marker: cell flagged noisy (IQR/median > {NOISY_IQR_RATIO:.0%}), not a finding"


def iqr_flag(samples: np.ndarray) -> tuple[float, str | None]:
    """(IQR/median, flag) of raw samples, with the harness's thresholds and percentile method."""
    x = np.asarray(samples, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), None
    median = float(np.median(x))
    if median <= 0:
        return float("nan"), None
    q25, q75 = np.percentile(x, [25, 75])
    ratio = float((q75 - q25) / median)
    return ratio, "invalid" if ratio > INVALID_IQR_RATIO else "noisy" if ratio > NOISY_IQR_RATIO else "ok"


def flagged(frame: pd.DataFrame) -> pd.Series:
    if "noise_flag" not in frame.columns:
        return pd.Series(False, index=frame.index)
    return frame["noise_flag"].isin(FLAGGED)


def cell_name(row: pd.Series) -> str:
    if bool(row.get("is_search")):
        return (f"{row.get('search_mode')} K_p={int(row['k_p'])} N={int(row['index_size']):,} "
                f"batch {int(row['queries_per_call'])}")
    return f"{row['backbone']}/{row['encoder']} K={int(row['k'])} L={int(row['input_tokens'])}"


def draw_hollow(ax, frame: pd.DataFrame, x: str, y: str, colour, marker: str) -> None:
    """Flagged points of one series as hollow markers over the line (which carries no marker there)."""
    if len(frame):
        ax.plot(frame[x], frame[y], ls="none", marker=marker, mfc="none", mec=colour, mew=1.1, ms=5.5,
                color=colour, zorder=4, label="_flagged")


def add_legend_entry(ax) -> None:
    ax.plot([], [], ls="none", marker="o", mfc="none", mec="0.25", mew=1.1, color="0.25", label=LEGEND_LABEL)


def caption(frame: pd.DataFrame) -> str:
    """The caption sentence for the cells a figure or table shows: how many are flagged, and which."""
    mask = flagged(frame)
    if not mask.any():
        return (f" No cell shown is flagged noisy (every IQR/median <= {NOISY_IQR_RATIO:.0%}).")
    names = [f"{cell_name(r)} ({r['iqr_over_median']:.0%}{', invalid' if r['noise_flag'] == 'invalid' else ''})"
             for _, r in frame[mask].iterrows()]
    shown = "; ".join(names[:MAX_NAMED]) + (f"; and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else "")
    return (f" Hollow markers: {int(mask.sum())} of {len(frame)} cells flagged noisy (IQR/median of the raw samples "
            f"> {NOISY_IQR_RATIO:.0%}; > {INVALID_IQR_RATIO:.0%} invalid): {shown}. A difference involving a "
            "hollow point is within run-to-run noise and is not a finding; rerun those cells on a quiet machine.")
