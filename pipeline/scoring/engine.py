"""Agatston, volume, mass and lesion scores of one series under one named convention.

Formulas (FACTS.md section 2), with ``a = pixel area (mm2)``, ``v = voxel volume (mm3)``
on the grid scored (after the convention's optional z resampling):

* Agatston = sum over weighting units of ``pixels x a x weight(peak HU) x f``, where
  ``f = slice increment / 3`` or ``SliceThickness / 3`` as the convention says, and the
  weight is 1, 2, 3, 4 from the band starts (130/200/300/400 or the Gräni kVp row).
* volume = lesion voxels x ``v``.
* mass (mg) = ``mass_factor x sum(HU x v) / 1000``. ``mass_factor`` has the unit of the
  DICOM Calcium Scoring Mass Factor (0018,9351): mg HA per cm3 per HU, i.e.
  ``c = HA density / (HU of calibration insert - HU of water)``; ``/1000`` turns mm3 into
  cm3. Without a factor the mass is None, never guessed.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.conventions import DEFAULT_CONVENTION, Convention, get_convention, kvp_bands
from deepcac2.pipeline.risk_categories import categorize
from deepcac2.pipeline.scoring.lesions import Labelled, delimit
from deepcac2.pipeline.scoring.mapping import mapped
from deepcac2.pipeline.scoring.z_resample import resample_z
from deepcac2.pipeline.stage_values import VESSEL_LABELS, CTVolume, Geometry, Lesion, Scores, VesselScore


def over_threshold(hu: np.ndarray, threshold: float, inclusive: bool) -> np.ndarray:
    """Voxels that pass the detection threshold (``>=`` or ``>``)."""
    return hu >= threshold if inclusive else hu > threshold


def weights(peak_hu: np.ndarray, bands: tuple[float, float, float, float]) -> np.ndarray:
    """Agatston density weight 1..4 of each peak; band starts are inclusive, the minimum is 1."""
    peak = np.asarray(peak_hu, dtype=float)
    return 1 + (peak >= bands[1]).astype(int) + (peak >= bands[2]) + (peak >= bands[3])


def slice_factor(convention: Convention, geometry: Geometry, slice_thickness: float | None) -> float:
    """The 3 mm-equivalence factor: increment/3 or thickness/3 (after resampling: the new spacing/3)."""
    if convention.slice_factor == "increment" or convention.resample_z_mm is not None:
        return geometry.spacing[2] / 3.0
    if slice_thickness is None or not math.isfinite(slice_thickness) or slice_thickness <= 0:
        raise DeepCACError(
            ErrorCode.E_SCORING,
            f"convention {convention.name!r} weights slices by SliceThickness/3, but the series has no valid "
            f"SliceThickness ({slice_thickness!r})",
        )
    return float(slice_thickness) / 3.0


def _bbox(mask: np.ndarray) -> tuple[slice, slice, slice] | None:
    """The bounding box of a bool volume, computed on projections (no full nonzero())."""
    yx = mask.any(axis=0)
    if not yx.any():
        return None
    ys, xs = np.flatnonzero(yx.any(axis=1)), np.flatnonzero(yx.any(axis=0))
    sy, sx = slice(ys[0], ys[-1] + 1), slice(xs[0], xs[-1] + 1)
    zs = np.flatnonzero(mask[:, sy, sx].any(axis=(1, 2)))
    return slice(zs[0], zs[-1] + 1), sy, sx


def _check_inputs(
    hu: np.ndarray, mask: np.ndarray, vessels: np.ndarray | None, mass_factor: float | None, kvp: float | None
) -> None:
    if hu.ndim != 3:
        raise DeepCACError(ErrorCode.E_SCORING, f"HU volume must be 3-D (z, y, x), got shape {hu.shape}")
    if mask.shape != hu.shape:
        raise DeepCACError(ErrorCode.E_MASK_GEOMETRY, f"mask shape {mask.shape} differs from CT shape {hu.shape}")
    if vessels is not None and vessels.shape != hu.shape:
        raise DeepCACError(
            ErrorCode.E_MASK_GEOMETRY, f"vessel label map shape {vessels.shape} differs from CT shape {hu.shape}"
        )
    if mass_factor is not None and (not math.isfinite(mass_factor) or mass_factor <= 0):
        raise DeepCACError(ErrorCode.E_SCORING, f"mass factor must be positive and finite, got {mass_factor!r}")
    if kvp is not None and (not math.isfinite(kvp) or kvp <= 0):
        raise DeepCACError(ErrorCode.E_SCORING, f"kVp must be positive and finite (or None), got {kvp!r}")


def score_series(
    hu: np.ndarray,
    geometry: Geometry,
    cac_mask: np.ndarray,
    *,
    convention: str | Convention = DEFAULT_CONVENTION,
    kvp: float | None = None,
    slice_thickness: float | None = None,
    vessels: np.ndarray | None = None,
    mass_factor: float | None = None,
) -> Scores:
    """Score one series. ``cac_mask`` is the candidate region (nonzero = in), on the CT grid.

    Lesion voxels are mask AND over the threshold, or the mask as it is when the
    convention says ``mask_threshold=False`` (``deepcac``). ``vessels`` is an optional
    label map with values from ``VESSEL_LABELS`` (0 = none).
    """
    conv = get_convention(convention)
    hu = np.asarray(hu)
    mask = np.asarray(cac_mask)
    mask = mask if mask.dtype == bool else mask != 0
    _check_inputs(hu, mask, vessels, mass_factor, kvp)
    bands = kvp_bands(kvp, conv.kvp_adjusted)
    if conv.mapped_mask:
        mask = mapped(hu, mask, bands[0], conv.inclusive, conv.connectivity)

    box = _bbox(mask)
    if box is None:
        grid = geometry
        if conv.resample_z_mm is not None:  # report the grid the convention would have scored on
            grid = Geometry(geometry.origin, (*geometry.spacing[:2], float(conv.resample_z_mm)), geometry.direction)
        return _assemble(conv, grid, slice_thickness, bands, kvp, None, None, None, vessels, mass_factor, (0, 0, 0))
    # crop in y, x to the mask (the expensive part); z too unless resampling needs the full extent
    zbox = slice(None) if conv.resample_z_mm is not None else box[0]
    hu_c, mask_c = hu[zbox, box[1], box[2]], mask[zbox, box[1], box[2]]
    ves_c = None if vessels is None else np.asarray(vessels)[zbox, box[1], box[2]]
    grid = geometry
    if conv.resample_z_mm is not None:
        hu_c, (mask_c, ves_c), grid = resample_z(hu_c, [mask_c, ves_c], geometry, conv.resample_z_mm)
    offset = (0 if conv.resample_z_mm is not None else int(box[0].start), int(box[1].start), int(box[2].start))

    if hu_c.dtype.kind == "f" and not np.isfinite(hu_c[mask_c]).all():
        raise DeepCACError(ErrorCode.E_SCORING, "the CT has non-finite HU values inside the mask")
    cand = mask_c & over_threshold(hu_c, bands[0], conv.inclusive) if conv.mask_threshold else mask_c
    if ves_c is not None and ves_c.size and (int(ves_c.max()) > max(VESSEL_LABELS) or int(ves_c.min()) < 0):
        raise DeepCACError(
            ErrorCode.E_SCORING, f"vessel labels must be 0 or one of {sorted(VESSEL_LABELS)}, got {np.unique(ves_c)}"
        )
    labelled = delimit(cand, conv, grid.spacing)
    values = hu_c[labelled.z, labelled.y, labelled.x].astype(np.float64)
    return _assemble(conv, grid, slice_thickness, bands, kvp, labelled, values, ves_c, vessels, mass_factor, offset)


def _assemble(
    conv: Convention,
    grid: Geometry,
    slice_thickness: float | None,
    bands: tuple[float, float, float, float],
    kvp: float | None,
    lab: Labelled | None,
    values: np.ndarray | None,
    ves_c: np.ndarray | None,
    vessels: np.ndarray | None,
    mass_factor: float | None,
    offset: tuple[int, int, int],
) -> Scores:
    zf = slice_factor(conv, grid, slice_thickness)
    params = conv.params()
    params["applied"] = {
        "thresholds_hu": list(bands),
        "slice_factor": zf,
        "kvp": kvp,
        "grid_spacing": list(grid.spacing),
    }
    lesions = _lesions(conv, grid, zf, bands, lab, values, ves_c, mass_factor, offset) if lab and lab.n_lesions else []
    voxel = grid.voxel_volume_mm3
    n_vox = 0 if values is None else values.size
    total_hu = 0.0 if values is None else float(values.sum())
    agatston = math.fsum(les.agatston for les in lesions)
    per_vessel: dict[str, VesselScore] = {}
    if vessels is not None:
        for name in VESSEL_LABELS.values():
            mine = [les for les in lesions if les.vessel == name]
            hu_sum = sum(les.mean_hu * les.volume_mm3 for les in mine)
            per_vessel[name] = VesselScore(
                agatston=math.fsum(les.agatston for les in mine),
                volume_mm3=math.fsum(les.volume_mm3 for les in mine),
                mass_mg=None if mass_factor is None else mass_factor * hu_sum / 1000.0,
                lesion_count=len(mine),
            )
    return Scores(
        convention=conv.name,
        convention_params=params,
        agatston=agatston,
        volume_mm3=n_vox * voxel,
        mass_mg=None if mass_factor is None else mass_factor * total_hu * voxel / 1000.0,
        lesion_count=len(lesions),
        lesions=tuple(lesions),
        per_vessel=per_vessel,
        categories=categorize(agatston),
    )


def _unit_scores(conv: Convention, grid: Geometry, zf: float, bands, lab: Labelled, values: np.ndarray) -> np.ndarray:
    """Agatston score of each weighting unit."""
    pixels = np.bincount(lab.unit, minlength=lab.n_units)
    peak = ndimage.maximum(values, lab.unit, np.arange(lab.n_units))
    per_pixel = grid.spacing[0] * grid.spacing[1] * zf
    if conv.round_decimals is None:
        return pixels * per_pixel * weights(peak, bands)
    # the DeepCAC code rounds with Python's round(); do the same, per unit (units are few)
    d = conv.round_decimals
    per_pixel = round(per_pixel, d)
    w = weights(peak, bands)
    return np.array([round(float(p) * per_pixel * int(k), d) for p, k in zip(pixels, w, strict=True)])


def _lesions(conv, grid, zf, bands, lab: Labelled, values, ves_c, mass_factor, offset) -> list[Lesion]:
    n = lab.n_lesions
    units = _unit_scores(conv, grid, zf, bands, lab, values)
    unit_lesion = np.zeros(lab.n_units, dtype=np.int64)
    unit_lesion[lab.unit] = lab.lesion
    agatston = np.bincount(unit_lesion, weights=units, minlength=n)
    count = np.bincount(lab.lesion, minlength=n)
    hu_sum = np.bincount(lab.lesion, weights=values, minlength=n)
    index = np.arange(n)
    peak = ndimage.maximum(values, lab.lesion, index)
    first = ndimage.minimum(lab.z, lab.lesion, index) + offset[0]
    last = ndimage.maximum(lab.z, lab.lesion, index) + offset[0]
    coords = zip((lab.x, lab.y, lab.z), offset[::-1], strict=True)
    ijk = np.stack([np.bincount(lab.lesion, weights=c + o, minlength=n) / count for c, o in coords], axis=1)
    centroid = grid.index_to_lps(ijk)
    vessel = _majority_vessel(lab, ves_c, n)
    # plain Python lists: building thousands of Lesions from numpy scalars is slow
    area = (count * (grid.spacing[0] * grid.spacing[1])).tolist()
    volume = (count * grid.voxel_volume_mm3).tolist()
    mean = (hu_sum / count).tolist()
    cols = (first.astype(int).tolist(), last.astype(int).tolist(), peak.tolist(), agatston.tolist())
    return [
        Lesion(i + 1, vessel[i], cols[0][i], cols[1][i], area[i], cols[2][i], mean[i], volume[i], cols[3][i], tuple(c))
        for i, c in enumerate(centroid.tolist())
    ]


def _majority_vessel(lab: Labelled, ves_c: np.ndarray | None, n: int) -> list[str | None]:
    """The most frequent nonzero vessel label of each lesion (ties: the lower label); None if none."""
    if ves_c is None:
        return [None] * n
    k = max(VESSEL_LABELS) + 1
    v = ves_c[lab.z, lab.y, lab.x].astype(np.int64)
    table = np.bincount(lab.lesion * k + v, minlength=n * k).reshape(n, k)[:, 1:]
    best = (table.argmax(axis=1) + 1).tolist()
    has = table.any(axis=1).tolist()
    return [VESSEL_LABELS[b] if h else None for b, h in zip(best, has, strict=True)]


def score_ct(
    ct: CTVolume,
    cac_mask: np.ndarray,
    *,
    convention: str | Convention = DEFAULT_CONVENTION,
    vessels: np.ndarray | None = None,
    mass_factor: float | None = None,
) -> Scores:
    """Score a loaded series; kVp, thickness and the mass factor come from the CT.

    A ``mass_factor`` given here (a user calibration) overrides the CT's.
    """
    return score_series(
        ct.hu,
        ct.geometry,
        cac_mask,
        convention=convention,
        kvp=ct.kvp,
        slice_thickness=ct.slice_thickness,
        vessels=vessels,
        mass_factor=ct.mass_factor if mass_factor is None else mass_factor,
    )
