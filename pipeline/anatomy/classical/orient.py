"""Put a CT array into a fixed anatomical orientation and back.

The classical rules speak of "posterior", "superior" and "left". They run on a view in
which axis 0 runs inferior->superior, axis 1 anterior->posterior and axis 2 right->left
(LPS +z, +y, +x). Only axis-aligned directions (flips and permutations) are handled;
oblique series are refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.stage_values import Geometry


@dataclass(frozen=True)
class Orientation:
    """How to turn a (z, y, x) array into the canonical (S, P, L) view: transpose then flip."""

    axes: tuple[int, int, int]
    flips: tuple[bool, bool, bool]
    #: voxel size in mm along the canonical axes (S, P, L)
    spacing: tuple[float, float, float]

    def to_canonical(self, a: np.ndarray) -> np.ndarray:
        a = np.transpose(a, self.axes)
        return a[tuple(slice(None, None, -1) if f else slice(None) for f in self.flips)]

    def from_canonical(self, a: np.ndarray) -> np.ndarray:
        a = a[tuple(slice(None, None, -1) if f else slice(None) for f in self.flips)]
        return np.ascontiguousarray(np.transpose(a, np.argsort(self.axes)))


def orientation_of(geometry: Geometry, tolerance: float = 0.1) -> Orientation:
    d = geometry.direction_matrix  # columns: i, j, k axes in LPS
    # array axis 0 is k, 1 is j, 2 is i
    array_axis_of_index = {0: 2, 1: 1, 2: 0}
    axes, flips, spacing = [], [], []
    for lps in (2, 1, 0):  # canonical S (LPS z), P (LPS y), L (LPS x)
        index_axis = int(np.argmax(np.abs(d[lps])))
        value = d[lps, index_axis]
        if abs(abs(value) - 1) > tolerance:
            raise DeepCACError(
                ErrorCode.E_GEOMETRY_ORIENTATION,
                "the classical model needs an axis-aligned (axial) series; direction is oblique",
                direction=geometry.direction,
            )
        axes.append(array_axis_of_index[index_axis])
        flips.append(bool(value < 0))
        spacing.append(float(geometry.spacing[index_axis]))
    if sorted(axes) != [0, 1, 2]:
        raise DeepCACError(ErrorCode.E_GEOMETRY_ORIENTATION, "direction matrix is degenerate")
    return Orientation(tuple(axes), tuple(flips), tuple(spacing))  # type: ignore[arg-type]
