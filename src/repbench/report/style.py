"""One figure style for every report figure: Agg backend, colour-blind-safe palette, PNG + PDF output.

Colours are keyed by meaning (encoder, score mode), not by plotting order, so the same encoder has the
same colour in every figure of a report.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: reports are rendered headless (CI, servers)

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from repbench.encoders.registry import REGISTRY as ENCODER_REGISTRY  # noqa: E402
from repbench.io import atomic_write_bytes, atomic_write_text  # noqa: E402

PALETTE = sns.color_palette("colorblind")
ENCODER_COLOURS = {name: PALETTE[spec.palette_index] for name, spec in ENCODER_REGISTRY.items()}
MODE_COLOURS = {
    "single_dense": PALETTE[0],
    "multi_dense": PALETTE[1],
    "sparse_max": PALETTE[2],
    "fusion_single_sparse_max": PALETTE[4],
    "fusion_multi_sparse_max": PALETTE[3],
}
PAPER_COLOUR = "0.30"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", ":", "-.")
PNG_DPI = 200


def apply_style() -> None:
    sns.set_theme(context="paper", style="whitegrid", palette=PALETTE)
    plt.rcParams.update({
        "font.size": 8, "axes.titlesize": 8.5, "axes.labelsize": 8, "legend.fontsize": 7,
        "xtick.labelsize": 7, "ytick.labelsize": 7, "figure.dpi": 100, "savefig.bbox": "tight",
        "pdf.fonttype": 42, "axes.titleweight": "bold", "lines.linewidth": 1.4, "lines.markersize": 4,
    })


def encoder_colour(encoder: str):
    return ENCODER_COLOURS.get(encoder, PALETTE[7])


def mode_colour(mode: str):
    return MODE_COLOURS.get(mode, PALETTE[7])


def marker_for(index: int) -> str:
    return MARKERS[index % len(MARKERS)]


def subplots(ncols: int, nrows: int = 1, panel_w: float = 2.6, panel_h: float = 2.1, **kw):
    apply_style()
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_w * ncols, panel_h * nrows), squeeze=False, **kw)
    return fig, axes


def legend_below(fig, axes, ncol: int | None = None) -> None:
    """One legend for the whole figure under the panels, de-duplicated, so it never covers data."""
    handles, labels, seen = [], [], set()
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in seen and not label.startswith("_"):
                seen.add(label)
                handles.append(h)
                labels.append(label)
    if not handles:
        return
    ncol = ncol or min(len(labels), 3)
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=ncol, frameon=False)


def save_figure(fig, out: Path, stem: str, caption: str) -> list[Path]:
    """Write out/figures/<stem>.png and .pdf (atomically) and the caption the report uses."""
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    paths = []
    for ext in ("png", "pdf"):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=PNG_DPI, bbox_inches="tight")
        paths.append(atomic_write_bytes(Path(out) / "figures" / f"{stem}.{ext}", buf.getvalue()))
    plt.close(fig)
    atomic_write_text(Path(out) / "figures" / f"{stem}.caption.txt", caption.strip() + "\n")
    return paths


# How the paper's own readings are drawn; captions describe them from these same entries
# (`describe_markers`), so a caption cannot say "grey open" over coloured filled points.
PAPER_OVERLAY = {"color": PAPER_COLOUR, "mfc": "white"}  # over a measured panel: grey, open
PAPER_PANEL = {"mfc": None}  # the paper's own panel: colour = encoder, as measured lines, filled


def describe_markers(kw: dict, colour_meaning: str = "encoder") -> str:
    """Words for a marker style: 'grey open markers', 'filled markers coloured by encoder'."""
    fill = "open" if kw.get("mfc") in ("white", "none") else "filled"
    colour = kw.get("color")
    if colour is None:
        return f"{fill} markers coloured by {colour_meaning}"
    name = "grey" if isinstance(colour, str) and colour.replace(".", "", 1).isdigit() else str(colour)
    return f"{name} {fill} markers"
