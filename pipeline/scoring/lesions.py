"""Delimit lesions and the per-slice regions that Agatston weights, as a convention says.

Everything is labelled at once with ``scipy.ndimage.label``; a 2-D convention labels the
whole volume with a structuring element that has no links between slices. The result is
a flat list of the kept voxels with two labels each:

* ``unit``: the region one Agatston weight applies to. 2-D: a connected component in one
  slice. 3-D: the part of a 3-D lesion that lies in one slice (Lessmann: each slice of a
  lesion is weighted by its own peak).
* ``lesion``: the lesion the voxel belongs to. 3-D: the 3-D component. 2-D: the kept
  slice components grouped across slices with the matching 3-D connectivity (8 -> 26,
  4 -> 6), so that a lesion spanning slices is reported once in the lesion table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from deepcac2.pipeline.conventions import Convention

#: slack for comparing areas and volumes with their limits, so that e.g. 100 pixels of
#: 0.1 x 0.1 mm (1.0000000000000002 mm2 in floating point) are not "more than 1 mm2"
EPS = 1e-9

#: generate_binary_structure's connectivity rank for each neighbourhood size
_RANK = {4: 1, 8: 2, 6: 1, 18: 2, 26: 3}


@dataclass(frozen=True)
class Labelled:
    """Kept voxels (coordinates in the labelled array) and their labels, 0-based and dense."""

    z: np.ndarray
    y: np.ndarray
    x: np.ndarray
    unit: np.ndarray
    lesion: np.ndarray
    n_units: int
    n_lesions: int


def in_plane_structure(connectivity: int) -> np.ndarray:
    """A 3x3x3 structure linking neighbours within a slice only."""
    s = np.zeros((3, 3, 3), dtype=bool)
    s[1] = ndimage.generate_binary_structure(2, _RANK[connectivity])
    return s


def volume_structure(connectivity: int) -> np.ndarray:
    """The 3-D structure for 6-, 18- or 26-connectivity."""
    return ndimage.generate_binary_structure(3, _RANK[connectivity])


def _dense(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Renumber arbitrary labels to 0..n-1 keeping their order."""
    uniq, inverse = np.unique(labels, return_inverse=True)
    return inverse.astype(np.int64), int(uniq.size)


def _empty() -> Labelled:
    e = np.zeros(0, dtype=np.int64)
    return Labelled(e, e, e, e, e, 0, 0)


def delimit(candidates: np.ndarray, convention: Convention, spacing: tuple[float, float, float]) -> Labelled:
    """Label lesion candidates (a bool (z, y, x) array) and apply the minimum-size rules.

    The volume is split into blocks that no component can cross, and each block is
    labelled on its own: sparse masks (a few lesions in a large volume) then cost little
    more than their voxels instead of the whole bounding box.
    """
    work = _delimit_2d if convention.dims == 2 else _delimit_3d
    parts = []
    for block, origin in _independent_blocks(candidates):
        part = work(block, convention, spacing)
        if part.n_units:
            parts.append((part, origin))
    return _concatenate(parts)


def _independent_blocks(candidates: np.ndarray):
    """(block, (z, y, x) of its corner) pieces that share no connected component.

    Components never cross an empty slice; within a run of non-empty slices, 26-connected
    voxels project onto 8-connected pixels, so separate islands of the run's projection
    hold separate components (for every connectivity, which are all subsets of 26).
    """
    for run in _z_runs(candidates):
        block = candidates[run]
        islands, _ = ndimage.label(block.any(axis=0), structure=np.ones((3, 3), dtype=bool))
        for number, box in enumerate(ndimage.find_objects(islands), start=1):
            sub = block[:, box[0], box[1]]
            own = islands[box] == number
            yield (sub if own.all() else sub & own[None]), (run.start, box[0].start, box[1].start)


def _z_runs(candidates: np.ndarray) -> list[slice]:
    """Runs of consecutive slices that hold any candidate."""
    filled = candidates.any(axis=(1, 2)).astype(np.int8)
    edges = np.diff(np.concatenate([[0], filled, [0]]))
    return [slice(int(a), int(b)) for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True)]


def _concatenate(parts: list[tuple[Labelled, tuple[int, int, int]]]) -> Labelled:
    """Join labelled runs: shift coordinates back and make labels unique across runs."""
    if not parts:
        return _empty()
    units = np.cumsum([0] + [p.n_units for p, _ in parts])
    lesions = np.cumsum([0] + [p.n_lesions for p, _ in parts])
    return Labelled(
        z=np.concatenate([p.z + o[0] for p, o in parts]),
        y=np.concatenate([p.y + o[1] for p, o in parts]),
        x=np.concatenate([p.x + o[2] for p, o in parts]),
        unit=np.concatenate([p.unit + u for (p, _), u in zip(parts, units, strict=False)]),
        lesion=np.concatenate([p.lesion + les for (p, _), les in zip(parts, lesions, strict=False)]),
        n_units=int(units[-1]),
        n_lesions=int(lesions[-1]),
    )


def _kept_components(
    candidates: np.ndarray, structure: np.ndarray, keep: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """The voxels ``(z, y, x)`` of the connected components of ``candidates`` and each one's component,
    for the components ``keep(counts)`` accepts (``counts``: voxels per component label); None when none."""
    labels, n = ndimage.label(candidates, structure=structure)
    if n == 0:
        return None
    z, y, x = np.nonzero(labels)
    comp = labels[z, y, x]
    sel = keep(np.bincount(comp, minlength=n + 1))[comp]
    z, y, x, comp = z[sel], y[sel], x[sel], comp[sel]
    return None if comp.size == 0 else (z, y, x, comp)


def _delimit_2d(candidates: np.ndarray, c: Convention, spacing: tuple[float, float, float]) -> Labelled:
    def keep(counts: np.ndarray) -> np.ndarray:
        kept = np.ones(counts.shape, dtype=bool)
        if c.min_pixels is not None:
            kept &= counts >= c.min_pixels
        if c.min_area_mm2 is not None:
            kept &= counts * (spacing[0] * spacing[1]) > c.min_area_mm2 + EPS
        return kept

    found = _kept_components(candidates, in_plane_structure(c.connectivity), keep)
    if found is None:
        return _empty()
    z, y, x, comp = found
    # group the kept slice components into lesions across slices
    kept = np.zeros(candidates.shape, dtype=bool)
    kept[z, y, x] = True
    groups, _ = ndimage.label(kept, structure=volume_structure(26 if c.connectivity == 8 else 6))
    unit, n_units = _dense(comp)
    lesion, n_lesions = _dense(groups[z, y, x])
    return Labelled(z, y, x, unit, lesion, n_units, n_lesions)


def _delimit_3d(candidates: np.ndarray, c: Convention, spacing: tuple[float, float, float]) -> Labelled:
    def keep(counts: np.ndarray) -> np.ndarray:
        if c.min_volume_mm3 is None:
            return np.ones(counts.shape, dtype=bool)
        return counts * float(np.prod(spacing)) >= c.min_volume_mm3 - EPS

    found = _kept_components(candidates, volume_structure(c.connectivity), keep)
    if found is None:
        return _empty()
    z, y, x, comp = found
    lesion, n_lesions = _dense(comp)
    # one weighting unit per (lesion, slice)
    unit, n_units = _dense(lesion * candidates.shape[0] + z)
    return Labelled(z, y, x, unit, lesion, n_units, n_lesions)
