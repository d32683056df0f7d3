"""Distribution figures of a release (matplotlib PNGs, byte-stable for the same data).

PNG metadata carries no date and no software version, so a rebuild with the same
inputs gives the same bytes and the manifest stays identical.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from deepcac2.pipeline.risk_categories import SCHEME_NAMES, labels  # noqa: E402
from deepcac2.release.run_tables import SCORE, STUDY_YEAR, category_column  # noqa: E402

_PNG_META = {"Software": None}


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata=_PNG_META)
    plt.close(fig)
    return path


def score_histogram(scores: pd.DataFrame, path: Path, convention: str) -> Path:
    """Histogram of log10(Agatston + 1) under one convention, split by NLST study year when known."""
    fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    values = np.log10(scores[SCORE].astype(float).to_numpy() + 1.0)
    bins = np.linspace(0.0, max(4.0, float(values.max(initial=0.0))), 33)
    if STUDY_YEAR in scores.columns and scores[STUDY_YEAR].notna().any():
        years = sorted(int(y) for y in scores[STUDY_YEAR].dropna().unique())
        groups = [values[(scores[STUDY_YEAR] == y).to_numpy()] for y in years]
        ax.hist(groups, bins=bins, stacked=True, label=[f"T{y}" for y in years])
        ax.legend(title="study year")
    else:
        ax.hist(values, bins=bins)
    ax.set_xlabel("log10(Agatston + 1)")
    ax.set_ylabel("series")
    ax.set_title(f"Agatston score, convention {convention} (n = {len(values)})")
    return _save(fig, path)


def category_bars(scores: pd.DataFrame, path: Path, convention: str) -> Path:
    """Series per risk category under one convention, one panel per scheme, lowest risk first."""
    fig, axes = plt.subplots(1, len(SCHEME_NAMES), figsize=(3.2 * len(SCHEME_NAMES), 3.2), layout="constrained")
    for ax, scheme in zip(np.atleast_1d(axes), SCHEME_NAMES, strict=True):
        names = labels(scheme)
        counts = scores[category_column(scheme)].value_counts().reindex(names, fill_value=0)
        ax.bar(range(len(names)), counts.to_numpy())
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        ax.set_title(scheme)
    np.atleast_1d(axes)[0].set_ylabel("series")
    fig.suptitle(f"Risk categories of the Agatston score, convention {convention}")
    return _save(fig, path)
