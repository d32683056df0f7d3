"""The loader's geometry as DICOM attributes.

Spacing, thickness, orientation and positions of our objects come from
``CTVolume.geometry`` (what the loader measured and checked), never from the source's
attributes: a source's ``SpacingBetweenSlices`` may be negative (seen in real data; PS3.3
forbids it) or disagree with its positions, and copying it made SEGs that dciodvfy rejects
and dcmqi cannot read.
"""

from __future__ import annotations

import math

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.valuerep import format_number_as_ds

from deepcac2.pipeline.stage_values import CTVolume

_PATIENT = hd.CoordinateSystemNames.PATIENT


def ds(value: float) -> float:
    """A number as a DS (16 characters) holds it, so what we write reads back the same."""
    return float(format_number_as_ds(float(value)))


def slice_thickness(ct: CTVolume) -> float:
    """Nominal thickness the loader read, else the slice spacing (a SEG voxel must have one)."""
    t = ct.slice_thickness
    return ds(t) if t is not None and math.isfinite(t) and t > 0 else ds(ct.geometry.spacing[2])


def image_orientation(ct: CTVolume) -> list[float]:
    """Row then column direction cosines: the i and j axes of the loader's direction matrix."""
    d = ct.geometry.direction_matrix
    return [ds(v) for v in (*d[:, 0], *d[:, 1])]


def pixel_measures(ct: CTVolume) -> hd.PixelMeasuresSequence:
    sx, sy, sz = ct.geometry.spacing
    return hd.PixelMeasuresSequence(
        pixel_spacing=[ds(sy), ds(sx)],  # row spacing, column spacing
        slice_thickness=slice_thickness(ct),
        spacing_between_slices=ds(sz),
    )


def plane_orientation(ct: CTVolume) -> hd.PlaneOrientationSequence:
    return hd.PlaneOrientationSequence(_PATIENT, image_orientation(ct))


def slice_positions(ct: CTVolume, z: slice | None = None) -> np.ndarray:
    """LPS position of voxel (0, 0, k) of every slice k in ``z`` (all slices by default)."""
    ks = np.arange(ct.shape[0])[z if z is not None else slice(None)]
    ijk = np.stack([np.zeros_like(ks), np.zeros_like(ks), ks], axis=1)
    return ct.geometry.index_to_lps(ijk)


def plane_positions(ct: CTVolume, z: slice | None = None) -> list[hd.PlanePositionSequence]:
    return [hd.PlanePositionSequence(_PATIENT, [ds(v) for v in p]) for p in slice_positions(ct, z)]


#: what the SR image library's descriptors read of an image, besides the loader's geometry
_DESCRIBED = ("SOPClassUID", "SOPInstanceUID", "Modality", "FrameOfReferenceUID", "Rows", "Columns")


def geometry_header(ct: CTVolume, header: Dataset) -> Dataset:
    """The named attributes an SR image library describes (TID 1602), with the loader's geometry.

    Built from ``_DESCRIBED`` only, never a copy of the whole header: a source's private
    elements (a malformed one raises on access) must not reach the writer.
    """
    out = Dataset()
    for keyword in _DESCRIBED:
        if keyword in header:
            setattr(out, keyword, header.get(keyword))
    sx, sy, sz = ct.geometry.spacing
    out.PixelSpacing = [ds(sy), ds(sx)]
    out.SliceThickness = slice_thickness(ct)
    out.SpacingBetweenSlices = ds(sz)
    out.ImageOrientationPatient = image_orientation(ct)
    out.ImagePositionPatient = [ds(v) for v in slice_positions(ct, slice(0, 1))[0]]
    return out
