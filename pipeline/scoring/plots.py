"""The Bland-Altman plot, drawn with matplotlib's Agg canvas (no display, no global backend switch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from deepcac2.pipeline.scoring.agreement import BlandAltman


def write_bland_altman_png(pred: np.ndarray, ref: np.ndarray, stats: BlandAltman, path: str | Path, label: str) -> Path:
    """Difference (pred - ref) against the pair mean, with bias and 95% limits of agreement."""
    pred, ref = np.asarray(pred, dtype=float), np.asarray(ref, dtype=float)
    fig = Figure(figsize=(6, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter((pred + ref) / 2, pred - ref, s=10, alpha=0.6)
    for y, style, text in (
        (stats.mean_difference, "-", f"bias {stats.mean_difference:.1f}"),
        (stats.lower_limit, "--", f"-1.96 SD {stats.lower_limit:.1f}"),
        (stats.upper_limit, "--", f"+1.96 SD {stats.upper_limit:.1f}"),
    ):
        ax.axhline(y, color="k", linestyle=style, linewidth=1)
        ax.annotate(text, xy=(1.0, y), xycoords=("axes fraction", "data"), ha="right", va="bottom", fontsize=8)
    ax.set_xlabel(f"mean of prediction and reference ({label})")
    ax.set_ylabel(f"prediction - reference ({label})")
    ax.set_title("Bland-Altman")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, format="png")
    return path
