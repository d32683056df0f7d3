"""DeepCAC2's "mapped" mask: the calcium over the threshold that a predicted mask touches.

The published code (MHub ``deepcac2``, ``src/cacmapping.py: register_cac_mask``) labels, in
each axial slice, the components of ``HU >= 130`` with a 3x3 all-ones structure
(8-connectivity) and keeps every component that shares at least one pixel with the
prediction in that slice. A component is kept whole, so the mapped mask can reach far
beyond the prediction (a calcified plaque's full extent, or a rib the prediction grazes).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def mapped(hu: np.ndarray, mask: np.ndarray, threshold: float, inclusive: bool, connectivity: int) -> np.ndarray:
    """Per axial slice, the ``connectivity`` components of ``HU over threshold`` that touch ``mask``."""
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    out = np.zeros(mask.shape, dtype=bool)
    for z in np.flatnonzero(mask.any(axis=(1, 2))):
        calcium = hu[z] >= threshold if inclusive else hu[z] > threshold
        labels, _ = ndimage.label(calcium, structure=structure)
        touched = np.unique(labels[mask[z]])
        touched = touched[touched > 0]
        if touched.size:
            out[z] = np.isin(labels, touched)
    return out
