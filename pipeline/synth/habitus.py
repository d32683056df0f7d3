"""Hearts and bodies that are hard for a heart finder (``ChestSpec.habitus``, great-vessel chests only).

* ``anterior_contact``: no lung between the heart and the front chest wall. Common in older
  smokers and with a large heart: the pericardial fat in front of the heart fills the space up
  to the chest wall's muscle, sternum and costal cartilage (over the middle 60% of the heart's
  width, up to ``CONTACT_MAX_MM`` deep), and belongs to the heart;
* ``wide_heart``: the heart's short axes ``WIDE_FACTOR`` times as long (cardiomegaly:
  cardiothoracic ratio above 0.5);
* ``obese``: ``OBESE_SUBCUTANEOUS_MM`` more subcutaneous fat (x, y) and ``OBESE_EPICARDIAL_MM``
  more epicardial fat round the same myocardium (the coronaries, which run in that fat, move
  out with it).
"""

from __future__ import annotations

import numpy as np

from deepcac2.pipeline.synth.labels import Tissue
from deepcac2.pipeline.synth.shapes import Grid

HABITUS = ("anterior_contact", "wide_heart", "obese")
WIDE_FACTOR = 1.2
OBESE_SUBCUTANEOUS_MM = (12.0, 22.0)
OBESE_EPICARDIAL_MM = 6.0
#: the anterior fill stops where the chest wall lies further than this in front of the heart
CONTACT_MAX_MM = 40.0
#: tissue between the heart and the chest wall that the anterior fat pad replaces
_FILLABLE = (Tissue.LUNG, Tissue.LUNG_VESSEL, Tissue.FAT)


def check_habitus(names: tuple[str, ...]) -> None:
    unknown = sorted(set(names) - set(HABITUS))
    if unknown:
        raise ValueError(f"unknown habitus {unknown}; known: {', '.join(HABITUS)}")


def fill_to_front_wall(anat: np.ndarray, heart_mask: np.ndarray, grid: Grid) -> int:
    """Pericardial fat from the heart's front to the chest wall, in the middle 60% of the
    heart's width on each slice; added to the heart. Returns the voxels added."""
    rows = np.arange(anat.shape[1])[:, None]
    max_rows = CONTACT_MAX_MM / grid.spacing[1]
    added = 0
    for z in np.flatnonzero(heart_mask.any(axis=(1, 2))):
        cols = np.flatnonzero(heart_mask[z].any(axis=0))
        lo, hi = cols[0] + 0.2 * (cols[-1] - cols[0]), cols[-1] - 0.2 * (cols[-1] - cols[0])
        use = cols[(cols >= lo) & (cols <= hi)]
        if use.size == 0:
            continue
        h = heart_mask[z][:, use]
        front = np.argmax(h, axis=0)  # first heart row per column (rows run anterior -> posterior)
        blocked = ~np.isin(anat[z][:, use], _FILLABLE)
        last_blocked = np.maximum.accumulate(np.where(blocked & ~h, rows, -1), axis=0)
        wall = last_blocked[np.maximum(front - 1, 0), np.arange(use.size)]
        ok = (wall >= 0) & (front - wall <= max_rows)
        fill = (rows > wall[None]) & (rows < front[None]) & ok[None]
        block = anat[z][:, use]
        block[fill] = Tissue.PERICARDIAL_FAT
        anat[z][:, use] = block
        hm = heart_mask[z][:, use]
        hm[fill] = True
        heart_mask[z][:, use] = hm
        added += int(fill.sum())
    return added
