"""Read a given CAC mask (DICOM SEG, NRRD or NIfTI) onto the voxel grid of its CT.

* NRRD and NIfTI are read with SimpleITK (which turns NIfTI's RAS into LPS). A mask on
  the CT's own grid is used as it is; a mask on the same voxel centres in another axis
  order or direction (e.g. a NIfTI with flipped slices) is brought onto the CT grid with
  an exact nearest-neighbour resample. Anything else is ``E_MASK_GEOMETRY``.
* DICOM SEG is read with highdicom. Frames are mapped to CT slices by the referenced
  SOPInstanceUIDs; a SEG that references none of the CT's instances is placed by its
  plane positions instead (the same check as for NRRD/NIfTI).

Label values: a file with only 0/1 (or values above 4) is a plain mask; values 1..4 with
more than one nonzero value, or a single value 2..4, are the vessel labels of
``stage_values.VESSEL_LABELS``. SEG segments named or coded LM/LAD/LCX/RCA give vessel labels;
a segment of the heart is ignored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.stage_values import VESSEL_LABELS, VESSEL_NAMES, CTVolume, Geometry

#: SCT codes of the coronary arteries (DICOM CID 3604) and of the heart
_VESSEL_SCT = {"3227004": "LM", "59438005": "LAD", "57396003": "LCX", "13647002": "RCA"}
_HEART_SCT = "80891009"
#: how far voxel centres may disagree, as a fraction of the smallest voxel spacing
CENTRE_TOLERANCE = 0.1


@dataclass(frozen=True)
class GivenMask:
    """A mask on the CT grid: ``mask`` (bool) and, when the file carries them, vessel labels."""

    mask: np.ndarray
    vessels: np.ndarray | None
    source: str


def read_mask(path: str | os.PathLike[str], ct: CTVolume) -> GivenMask:
    """Read a SEG (.dcm), NRRD (.nrrd, .seg.nrrd) or NIfTI (.nii, .nii.gz) mask onto ``ct``'s grid."""
    p = Path(path)
    if not p.is_file():
        raise DeepCACError(ErrorCode.E_UNREADABLE_FILE, f"mask file {p} does not exist")
    name = p.name.lower()
    if name.endswith((".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd")):
        try:
            image = sitk.ReadImage(str(p))
        except RuntimeError as exc:
            raise DeepCACError(ErrorCode.E_UNREADABLE_FILE, f"cannot read mask {p}: {exc}") from exc
        labels = onto_ct_grid(image, ct.geometry, ct.shape, str(p))
        mask, vessels = split_labels(labels)
        return GivenMask(mask, vessels, str(p))
    return _read_seg(p, ct)


def split_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """A plain mask, or a mask plus vessel labels (see the module doc for the rule)."""
    values = np.unique(labels)
    nonzero = values[values != 0]
    integral = np.all(np.equal(np.mod(nonzero, 1), 0))
    in_range = nonzero.size > 0 and nonzero.min() >= 1 and nonzero.max() <= max(VESSEL_LABELS)
    is_vessels = integral and in_range and (nonzero.size > 1 or nonzero[0] != 1)
    mask = labels != 0
    return mask, (labels.astype(np.uint8) if is_vessels else None)


def _ct_reference(geometry: Geometry, shape: tuple[int, int, int]) -> sitk.Image:
    ref = sitk.Image([int(shape[2]), int(shape[1]), int(shape[0])], sitk.sitkUInt8)
    ref.SetOrigin(geometry.origin)
    ref.SetSpacing(geometry.spacing)
    ref.SetDirection(geometry.direction)
    return ref


def onto_ct_grid(image: sitk.Image, geometry: Geometry, shape: tuple[int, int, int], what: str) -> np.ndarray:
    """The label array of ``image`` on the CT grid, if its voxel centres are the CT's."""
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise DeepCACError(
            ErrorCode.E_MASK_GEOMETRY, f"{what}: a mask must be one 3-D scalar image, got {image.GetDimension()}-D"
        )
    tol = CENTRE_TOLERANCE * min(geometry.spacing)
    # mask index -> CT continuous index: must be a signed axis permutation plus an integer shift
    m_aff = np.eye(4)
    m_aff[:3, :3] = np.asarray(image.GetDirection()).reshape(3, 3) * np.asarray(image.GetSpacing())[None, :]
    m_aff[:3, 3] = image.GetOrigin()
    to_ct = np.linalg.inv(geometry.affine) @ m_aff
    rot = to_ct[:3, :3]
    size = np.asarray(image.GetSize())
    corners = np.array([[i, j, k] for i in (0, size[0] - 1) for j in (0, size[1] - 1) for k in (0, size[2] - 1)])
    mapped = corners @ rot.T + to_ct[:3, 3]
    unit = np.allclose(np.abs(rot), np.round(np.abs(rot)), atol=1e-3) and np.allclose(
        np.abs(rot).sum(axis=0), 1, atol=1e-3
    )
    centre_error = np.abs(mapped - np.round(mapped)) * np.asarray(geometry.spacing)[None, :]
    inside = (np.round(mapped) >= 0).all() and (np.round(mapped) < np.asarray(shape[::-1])[None, :]).all()
    if not (unit and (centre_error <= tol).all() and inside):
        raise DeepCACError(
            ErrorCode.E_MASK_GEOMETRY,
            f"{what}: mask grid (size {tuple(int(s) for s in size)}, spacing {image.GetSpacing()}, origin "
            f"{image.GetOrigin()}) does not lie on the CT grid (shape {shape[::-1]}, spacing {geometry.spacing}, "
            f"origin {geometry.origin}) within {tol:.3g} mm",
        )
    same = (
        np.allclose(rot, np.eye(3), atol=1e-3)
        and np.allclose(to_ct[:3, 3], 0, atol=tol)
        and tuple(size) == tuple(shape[::-1])
    )
    if not same:
        image = sitk.Resample(image, _ct_reference(geometry, shape), sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    return sitk.GetArrayFromImage(image)


def _segment_vessel(desc) -> str | None:
    label = str(getattr(desc, "SegmentLabel", "")).strip().upper()
    first = label.split()[0] if label else ""
    if first in VESSEL_NAMES:
        return first
    for item in getattr(desc, "AnatomicRegionSequence", []) or []:
        if str(item.CodeValue) in _VESSEL_SCT:
            return _VESSEL_SCT[str(item.CodeValue)]
    return None


def _is_heart(desc) -> bool:
    return any(str(c.CodeValue) == _HEART_SCT for c in getattr(desc, "SegmentedPropertyTypeCodeSequence", []) or [])


def _read_seg(p: Path, ct: CTVolume) -> GivenMask:
    import highdicom as hd  # heavy; only for SEG input

    try:
        seg = hd.seg.segread(str(p))
    except Exception as exc:  # pydicom/highdicom raise many types for a bad file
        raise DeepCACError(ErrorCode.E_UNREADABLE_FILE, f"{p} is not a readable DICOM SEG: {exc}") from exc
    if ct.frame_of_reference_uid and seg.FrameOfReferenceUID != ct.frame_of_reference_uid:
        raise DeepCACError(
            ErrorCode.E_MASK_GEOMETRY,
            f"{p}: SEG frame of reference {seg.FrameOfReferenceUID} is not the CT's {ct.frame_of_reference_uid}",
        )
    descs = {int(d.SegmentNumber): d for d in seg.SegmentSequence if not _is_heart(d)}
    if not descs:
        raise DeepCACError(ErrorCode.E_MASK_GEOMETRY, f"{p}: the SEG has no calcium segment")
    numbers = sorted(descs)
    uids = [i.sop_instance_uid for i in ct.instances]
    referenced = {str(u[2]) for u in seg.get_source_image_uids()}
    if uids and referenced & set(uids):
        pixels = seg.get_pixels_by_source_instance(
            uids, segment_numbers=numbers, assert_missing_frames_are_empty=True, dtype=np.uint8
        )
    else:
        volume = seg.get_volume(segment_numbers=numbers, combine_segments=False, dtype=np.uint8)
        pixels = np.stack(
            [
                onto_ct_grid(
                    volume.get_channel(ReferencedSegmentNumber=n).to_simpleitk(), ct.geometry, ct.shape, str(p)
                )
                for n in numbers
            ],
            axis=-1,
        )
    if pixels.shape[:3] != ct.shape:
        raise DeepCACError(ErrorCode.E_MASK_GEOMETRY, f"{p}: SEG pixels {pixels.shape[:3]} vs CT {ct.shape}")
    mask = pixels.any(axis=-1)
    vessel_of = {n: _segment_vessel(descs[n]) for n in numbers}
    if not any(vessel_of.values()):
        return GivenMask(mask, None, str(p))
    vessels = np.zeros(ct.shape, dtype=np.uint8)
    for pos, n in enumerate(numbers):
        if vessel_of[n]:
            vessels[pixels[..., pos] > 0] = VESSEL_NAMES[vessel_of[n]]
    return GivenMask(mask, vessels, str(p))
