"""The per-series review picture: axial slices through the heart with calcium in red, plus a MIP.

Rendered while the CT is still in memory (the pipeline calls this per series), so
review never needs the source CT again.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on workers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from deepcac2.pipeline.stage_values import CTVolume, Prediction  # noqa: E402
from deepcac2.writable import write_atomic  # noqa: E402

#: mediastinal window: calcium and heart both visible
WINDOW = (-160.0, 240.0)
#: calcium overlay colour, the same in every panel
RED = matplotlib.colors.ListedColormap(["red"])


def _slices_through(mask: np.ndarray, cac: np.ndarray, n: int) -> list[int]:
    """Up to ``n`` slice indices: those with the most calcium first, then evenly through the heart."""
    z_cac = np.flatnonzero(cac.any(axis=(1, 2)))
    if z_cac.size:
        per_slice = cac.sum(axis=(1, 2))
        chosen = sorted(np.argsort(per_slice)[::-1][: min(n, z_cac.size)].tolist())
    else:
        chosen = []
    z_heart = np.flatnonzero(mask.any(axis=(1, 2)))
    if z_heart.size == 0:
        z_heart = np.arange(mask.shape[0])
    for z in np.linspace(z_heart[0], z_heart[-1], n + 2)[1:-1].round().astype(int):
        if len(chosen) >= n:
            break
        if z not in chosen:
            chosen.append(int(z))
    return sorted(chosen)[:n]


def render_series_png(
    ct: CTVolume, prediction: Prediction, path: str | Path, *, title: str = "", n_slices: int = 4
) -> Path:
    """Write the review PNG for one series and return its path (written atomically)."""
    hu = ct.hu
    heart, cac = prediction.heart.astype(bool), prediction.cac.astype(bool)
    sx, sy, sz = ct.geometry.spacing
    zs = _slices_through(heart, cac, n_slices)
    fig, axes = plt.subplots(1, len(zs) + 1, figsize=(3.2 * (len(zs) + 1), 3.6), dpi=80)
    axes = np.atleast_1d(axes)
    for ax, z in zip(axes[:-1], zs, strict=True):
        ax.imshow(hu[z], cmap="gray", vmin=WINDOW[0], vmax=WINDOW[1], aspect=sy / sx)
        if heart[z].any():
            ax.contour(heart[z], levels=[0.5], colors="deepskyblue", linewidths=0.8)
        overlay = np.ma.masked_where(~cac[z], cac[z])
        ax.imshow(overlay, cmap=RED, alpha=0.9, aspect=sy / sx)
        ax.set_title(f"slice {z}", fontsize=9)
        ax.axis("off")
    # coronal MIP of the thorax with calcium: where the lesions sit in z
    mip = hu.max(axis=1)
    axes[-1].imshow(mip, cmap="gray", vmin=-200, vmax=1000, aspect=sz / sx, origin="upper")
    cac_mip = cac.any(axis=1)
    axes[-1].imshow(np.ma.masked_where(~cac_mip, cac_mip), cmap=RED, alpha=0.9, aspect=sz / sx)
    axes[-1].set_title("coronal MIP", fontsize=9)
    axes[-1].axis("off")
    fig.suptitle(title or ct.series_uid, fontsize=9)
    fig.tight_layout()
    try:
        return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)
