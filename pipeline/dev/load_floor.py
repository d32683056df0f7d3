"""The benchmark floor: the plainest pydicom read-and-stack (no sorting, no checks, no HU)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pydicom


def read_and_stack(paths: Sequence[str | os.PathLike[str]]) -> np.ndarray:
    """Read every file in full and stack the stored pixel arrays, in the given order."""
    return np.stack([pydicom.dcmread(p).pixel_array for p in paths])
