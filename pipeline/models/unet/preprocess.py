"""DeepCAC2 preprocessing exactly as the published code runs it, and its exact inverse.

The published code (MHub ``deepcac2``, ``src/inference.py`` + ``src/subject.py``) reads the
CT and the heart from NIfTI files with TorchIO 0.19.1 and runs ``Resample(0.7, 0.7, 2.5)`` ->
``CropOrPad((256, 256, 58), mask_name='heart')`` -> ``Clamp(-135, 500)`` ->
``ZNormalization()`` -> ``RescaleIntensity((0, 1))``; after the network it inverts the crop
and resamples the label onto the CT with ``Resample(original image)`` (nearest neighbour).
Each step here does the same arithmetic (see ``docs/models.md``, "Faithfulness"):

* geometry: the CT's origin and spacing as a NIfTI header stores them (float32), carried as
  TorchIO's RAS affine and turned back into SimpleITK metadata the way TorchIO does;
* grid: TorchIO's ``ceil(size * spacing / new_spacing)`` voxels, the first voxel at
  continuous index ``0.5 * (new_spacing / spacing - 1)`` (the corner of the first old voxel
  stays the corner of the first new one);
* resampling: SimpleITK linear on the image in its own pixel type (an int16 CT gives an int16
  result: ITK truncates the interpolated value), nearest on the heart, outside -> 0;
* crop or pad: TorchIO's centre-of-bounding-box rule with its half-voxel shift, pad value 0,
  the origin moved with ``nibabel.affines.apply_affine`` as TorchIO's Pad/Crop do;
* intensities: torch ``clamp`` in the image's dtype, float32 z-normalisation (torch mean and
  unbiased std, in TorchIO's element order), min/max rescaling in float32 numpy.

Arrays outside this module are ``(z, y, x)``; TorchIO (and the network) use ``(x, y, z)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
import torch

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.stage_values import Geometry

#: published values, in (x, y, z) like the published code
SPACING_XYZ: tuple[float, float, float] = (0.7, 0.7, 2.5)
SHAPE_XYZ: tuple[int, int, int] = (256, 256, 58)
CLAMP_HU: tuple[int, int] = (-135, 500)
#: pixel type of the CT the reference resamples: "int16" (a NIfTI/NRRD holding the stored
#: integers) or "float32" (plastimatch's DICOM loader makes float volumes)
RESAMPLE_DTYPES: tuple[str, ...] = ("int16", "float32")

#: LPS <-> RAS
_FLIP_XY = np.diag([-1.0, -1.0, 1.0])


def nifti_geometry(geometry: Geometry) -> Geometry:
    """The geometry the reference reads back from its NIfTI file: origin and spacing in float32."""
    return Geometry(
        tuple(float(v) for v in np.asarray(geometry.origin, dtype=np.float32)),
        tuple(float(v) for v in np.asarray(geometry.spacing, dtype=np.float32)),
        tuple(float(v) for v in geometry.direction),
    )


def ras_affine(geometry: Geometry) -> np.ndarray:
    """TorchIO's 4x4 RAS affine of a SimpleITK geometry (``io.get_ras_affine_from_sitk``)."""
    rotation = _FLIP_XY @ np.asarray(geometry.direction, dtype=np.float64).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = rotation * np.asarray(geometry.spacing, dtype=np.float64)
    affine[:3, 3] = _FLIP_XY @ np.asarray(geometry.origin, dtype=np.float64)
    return affine


def geometry_of_affine(affine: np.ndarray) -> Geometry:
    """SimpleITK metadata of a RAS affine as TorchIO derives it (``io.get_sitk_metadata_from_ras_affine``)."""
    zoom = affine[:3, :3]
    spacing = np.sqrt(np.sum(zoom * zoom, axis=0))
    direction = _FLIP_XY @ (zoom / spacing)
    origin = _FLIP_XY @ affine[:3, 3]
    return Geometry(
        tuple(float(v) for v in origin),
        tuple(float(v) for v in spacing),
        tuple(float(v) for v in direction.flatten()),
    )


def shift_affine(affine: np.ndarray, index_xyz) -> np.ndarray:
    """The affine whose voxel 0 is voxel ``index_xyz`` of ``affine`` (TorchIO's Crop/Pad origin update)."""
    out = affine.copy()
    # nibabel.affines.apply_affine: pts @ rzs.T + trans
    out[:3, 3] = np.dot(np.asarray(index_xyz, dtype=np.float64)[None, :], affine[:3, :3].T)[0] + affine[:3, 3]
    return out


def to_sitk(array: np.ndarray, geometry: Geometry) -> sitk.Image:
    img = sitk.GetImageFromArray(array)
    img.SetOrigin(geometry.origin)
    img.SetSpacing(geometry.spacing)
    img.SetDirection(geometry.direction)
    return img


def to_network_order(array_zyx: np.ndarray) -> np.ndarray:
    """(z, y, x) -> (x, y, z), the TorchIO order the published network was trained in."""
    return np.ascontiguousarray(np.transpose(array_zyx, (2, 1, 0)))


def from_network_order(array_xyz: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(array_xyz, (2, 1, 0)))


def resampled_grid(
    geometry: Geometry, shape_zyx: tuple[int, int, int], spacing_xyz: tuple[float, float, float]
) -> tuple[Geometry, tuple[int, int, int]]:
    """TorchIO 0.19.1 ``Resample.get_reference_image`` for a target spacing.

    ``geometry`` is the floating image's geometry as TorchIO hands it to SimpleITK.
    """
    old_spacing = np.array(geometry.spacing)
    new_spacing = np.array(spacing_xyz)
    old_size = np.array(shape_zyx[::-1])
    new_size = np.ceil(old_size * old_spacing / new_spacing).astype(np.uint16)
    new_size[old_size == 1] = 1
    if np.any(new_size < 1):
        raise DeepCACError(ErrorCode.E_DIMENSIONS, f"volume {shape_zyx} too small to resample to {spacing_xyz} mm")
    new_origin_index = 0.5 * (new_spacing / old_spacing - 1)
    probe = sitk.Image([1, 1, 1], sitk.sitkUInt8)
    probe.SetOrigin(geometry.origin)
    probe.SetSpacing(geometry.spacing)
    probe.SetDirection(geometry.direction)
    origin = probe.TransformContinuousIndexToPhysicalPoint(new_origin_index.tolist())
    grid = Geometry(tuple(origin), tuple(new_spacing.tolist()), tuple(geometry.direction))
    return grid, (int(new_size[2]), int(new_size[1]), int(new_size[0]))


def resample_to(
    array: np.ndarray, geometry: Geometry, grid: Geometry, shape_zyx: tuple[int, int, int], *, label: bool
) -> np.ndarray:
    """SimpleITK resampling onto ``grid``: linear for images, nearest for labels, outside -> 0.

    The output keeps the input's pixel type, as TorchIO's Resample does: an integer image
    gets ITK's cast of the interpolated value (truncation toward zero).
    """
    resampler = sitk.ResampleImageFilter()
    resampler.SetInterpolator(sitk.sitkNearestNeighbor if label else sitk.sitkLinear)
    resampler.SetOutputOrigin(grid.origin)
    resampler.SetOutputSpacing(grid.spacing)
    resampler.SetOutputDirection(grid.direction)
    resampler.SetSize([int(s) for s in shape_zyx[::-1]])
    return sitk.GetArrayFromImage(resampler.Execute(to_sitk(array, geometry)))


def ct_for_resampling(hu: np.ndarray, resample_dtype: str) -> np.ndarray:
    """The CT in the pixel type the reference resamples (see :data:`RESAMPLE_DTYPES`)."""
    if resample_dtype not in RESAMPLE_DTYPES:
        raise DeepCACError(
            ErrorCode.E_INFERENCE, f"resample dtype {resample_dtype!r} is not one of {', '.join(RESAMPLE_DTYPES)}"
        )
    if resample_dtype == "float32":
        return hu.astype(np.float32, copy=False)
    if hu.dtype == np.int16:
        return hu
    lo, hi = np.iinfo(np.int16).min, np.iinfo(np.int16).max
    if hu.min() < lo or hu.max() > hi or (hu.dtype.kind == "f" and not np.array_equal(hu, np.round(hu))):
        # no int16 file could hold these values: the reference would have read floats
        return hu.astype(np.float32, copy=False)
    return hu.astype(np.int16)


def crop_or_pad_bounds(
    mask_xyz: np.ndarray, target_xyz: tuple[int, int, int]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """TorchIO ``CropOrPad(mask_name=...)._compute_mask_center_crop_or_pad``: (padding, cropping).

    Each is ``(x_ini, x_fin, y_ini, y_fin, z_ini, z_fin)`` voxels. Centre = mean(bb_min,
    bb_max + 1); when exactly one of "centre on a voxel index" and "target even" holds, the
    centre moves down by half a voxel, so ``centre -/+ target / 2`` are integers.
    """
    if not mask_xyz.any():
        raise DeepCACError(ErrorCode.E_NO_HEART, "the heart mask is empty on the resampled grid")
    padding, cropping = [], []
    for axis, target in enumerate(target_xyz):
        other = tuple(a for a in range(3) if a != axis)
        present = np.flatnonzero(mask_xyz.any(axis=other))
        centre = np.mean((present[0], present[-1] + 1))
        if (target % 2 == 0) ^ (centre % 1 == 0):
            centre -= 0.5
        begin, end = centre - target / 2, centre + target / 2
        size = mask_xyz.shape[axis]
        padding += [max(-begin, 0), max(end - size, 0)]
        cropping += [max(begin, 0), max(size - end, 0)]
    return tuple(int(v) for v in padding), tuple(int(v) for v in cropping)


def crop_or_pad(array_xyz: np.ndarray, padding: tuple[int, ...], cropping: tuple[int, ...]) -> np.ndarray:
    """Pad with 0, then crop, as TorchIO's Pad and Crop do (``(x, y, z)`` arrays)."""
    padded = np.pad(array_xyz, [padding[0:2], padding[2:4], padding[4:6]], mode="constant", constant_values=0)
    box = tuple(slice(cropping[2 * a], padded.shape[a] - cropping[2 * a + 1]) for a in range(3))
    return np.ascontiguousarray(padded[box])


def normalise(image_xyz: np.ndarray, clamp: tuple[int, int] = CLAMP_HU) -> np.ndarray:
    """``Clamp`` -> ``ZNormalization`` -> ``RescaleIntensity((0, 1))`` on an ``(x, y, z)`` array.

    Same operations, dtypes and element order as TorchIO (float32; the std is torch's
    unbiased one). RescaleIntensity's 0/100 percentile clip is the identity and is skipped.
    """
    t = torch.from_numpy(np.ascontiguousarray(image_xyz))[None].clamp(clamp[0], clamp[1])
    t = t.clone().float()
    values = t[torch.ones_like(t, dtype=torch.bool)]
    mean, std = values.mean(), values.std()
    if std == 0:
        raise DeepCACError(ErrorCode.E_INFERENCE, "the cropped CT is constant after clamping; nothing to segment")
    t -= mean
    t /= std
    array = t.numpy()[0]
    in_min, in_max = array.min(), array.max()
    array -= in_min
    array /= in_max - in_min
    return array


@dataclass
class Preprocessed:
    """The network input and what the way back needs. ``image``/``heart`` are ``(z, y, x)``."""

    image: np.ndarray
    heart: np.ndarray
    #: TorchIO's RAS affine of the crop
    affine: np.ndarray
    #: TorchIO bounds (x_ini, x_fin, y_ini, y_fin, z_ini, z_fin) of the pad and of the crop
    padding: tuple[int, ...]
    cropping: tuple[int, ...]
    #: the CT's affine as the reference read it, and its shape (z, y, x)
    source_affine: np.ndarray
    source_shape: tuple[int, int, int]

    @property
    def geometry(self) -> Geometry:
        """The crop as a SimpleITK geometry (what TorchIO hands to ITK)."""
        return geometry_of_affine(self.affine)

    @property
    def centre_lps(self) -> np.ndarray:
        """Physical centre of the crop (mm, LPS): where the heart put the 256x256x58 box."""
        size = np.array(self.image.shape[::-1], dtype=float)
        return self.geometry.index_to_lps((size - 1) / 2)


def preprocess(
    hu: np.ndarray,
    geometry: Geometry,
    heart: np.ndarray,
    spacing_xyz: tuple[float, float, float] = SPACING_XYZ,
    shape_xyz: tuple[int, int, int] = SHAPE_XYZ,
    resample_dtype: str = "int16",
) -> Preprocessed:
    """The published preprocessing of one CT ``(z, y, x)`` with its heart mask on the CT grid."""
    if hu.shape != heart.shape:
        raise DeepCACError(ErrorCode.E_MASK_GEOMETRY, f"heart mask {heart.shape} does not match CT {hu.shape}")
    source_affine = ras_affine(nifti_geometry(geometry))
    floating = geometry_of_affine(source_affine)
    grid, grid_shape = resampled_grid(floating, hu.shape, spacing_xyz)
    image = resample_to(ct_for_resampling(hu, resample_dtype), floating, grid, grid_shape, label=False)
    heart_r = resample_to(heart.astype(np.uint8), floating, grid, grid_shape, label=True)
    # sitk_to_nib: the resampled image's affine
    affine = ras_affine(grid)
    image_xyz, heart_xyz = to_network_order(image), to_network_order(heart_r)
    padding, cropping = crop_or_pad_bounds(heart_xyz > 0, shape_xyz)
    affine = shift_affine(affine, -np.array(padding[0::2]))
    affine = shift_affine(affine, np.array(cropping[0::2]))
    image_c = normalise(crop_or_pad(image_xyz, padding, cropping))
    heart_c = crop_or_pad(heart_xyz, padding, cropping) > 0
    return Preprocessed(
        image=from_network_order(image_c),
        heart=from_network_order(heart_c),
        affine=affine,
        padding=padding,
        cropping=cropping,
        source_affine=source_affine,
        source_shape=tuple(int(s) for s in hu.shape),  # type: ignore[arg-type]
    )


def to_ct_grid(label: np.ndarray, pre: Preprocessed) -> np.ndarray:
    """A ``(z, y, x)`` label on the crop back onto the CT grid, as the reference does it.

    ``apply_inverse_transform`` pads the crop back (the inverse Crop, origin moved by the
    crop start) and crops the padding off (the inverse Pad), then ``Resample(image)`` puts the
    label onto the CT's own affine, nearest neighbour (outside -> 0).
    """
    label_xyz = to_network_order(label)
    cropping, padding = pre.cropping, pre.padding
    back = np.pad(label_xyz, [cropping[0:2], cropping[2:4], cropping[4:6]], mode="constant", constant_values=0)
    affine = shift_affine(pre.affine, -np.array(cropping[0::2]))
    box = tuple(slice(padding[2 * a], back.shape[a] - padding[2 * a + 1]) for a in range(3))
    back = np.ascontiguousarray(back[box])
    affine = shift_affine(affine, np.array(padding[0::2]))
    return resample_to(
        from_network_order(back),
        geometry_of_affine(affine),
        geometry_of_affine(pre.source_affine),
        pre.source_shape,
        label=True,
    )
