"""Slice geometry: orientation, order along the normal, spacing and shear (gantry tilt)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.loader.values import Values


@dataclass(frozen=True)
class SliceFrame:
    """In-plane axes of a series: row (i, +column index) and column (j, +row index) cosines."""

    row: np.ndarray
    col: np.ndarray
    #: column spacing (x) and row spacing (y) in mm
    pixel_spacing: tuple[float, float]

    @property
    def normal(self) -> np.ndarray:
        n = np.cross(self.row, self.col)
        return n / np.linalg.norm(n)


def _vector(ds: Dataset | Values, keyword: str, n: int, path: Path) -> np.ndarray:
    value = ds.get(keyword)
    try:
        v = np.array([float(x) for x in value], dtype=float) if value is not None else None
    except (TypeError, ValueError):
        v = None
    if v is None or v.shape != (n,) or not np.all(np.isfinite(v)):
        raise DeepCACError(
            ErrorCode.E_GEOMETRY_MISSING,
            f"{path.name}: {keyword} is missing or malformed ({value!r}); slice position cannot be known",
            path=path,
        )
    return v


def position(ds: Dataset | Values, path: Path) -> np.ndarray:
    return _vector(ds, "ImagePositionPatient", 3, path)


def slice_frame(ds: Dataset | Values, path: Path) -> SliceFrame:
    """Orientation and pixel spacing of one slice, checked for sense."""
    iop = _vector(ds, "ImageOrientationPatient", 6, path)
    spacing = _vector(ds, "PixelSpacing", 2, path)
    row, col = iop[:3], iop[3:]
    if abs(np.linalg.norm(row) - 1) > 1e-3 or abs(np.linalg.norm(col) - 1) > 1e-3 or abs(row @ col) > 1e-3:
        raise DeepCACError(
            ErrorCode.E_GEOMETRY_MISSING,
            f"{path.name}: ImageOrientationPatient {iop.tolist()} is not two orthogonal unit vectors",
            path=path,
        )
    if np.any(spacing <= 0):
        raise DeepCACError(
            ErrorCode.E_GEOMETRY_MISSING, f"{path.name}: PixelSpacing {spacing.tolist()} is not positive"
        )
    # PixelSpacing is (row spacing, column spacing) = (y, x)
    return SliceFrame(row=row, col=col, pixel_spacing=(float(spacing[1]), float(spacing[0])))


def common_frame(frames: list[SliceFrame], names: list[str], tolerance: float) -> SliceFrame:
    """The one frame all slices share; E_GEOMETRY_ORIENTATION or E_GEOMETRY_UNEVEN otherwise."""
    first = frames[0]
    for frame, name in zip(frames, names, strict=True):
        if np.abs(frame.row - first.row).max() > tolerance or np.abs(frame.col - first.col).max() > tolerance:
            raise DeepCACError(
                ErrorCode.E_GEOMETRY_ORIENTATION,
                f"mixed orientations: {name} has {np.r_[frame.row, frame.col].round(4).tolist()}, "
                f"{names[0]} has {np.r_[first.row, first.col].round(4).tolist()}",
            )
        if not np.allclose(frame.pixel_spacing, first.pixel_spacing, rtol=1e-4, atol=1e-6):
            raise DeepCACError(
                ErrorCode.E_GEOMETRY_UNEVEN,
                f"pixel spacing differs between slices: {name} {frame.pixel_spacing} vs {first.pixel_spacing}",
            )
    return first


@dataclass(frozen=True)
class Spacing:
    """Distances between consecutive slices along the normal, judged against their median."""

    distances: np.ndarray
    median: float
    #: None when regular, else "gap" (distances near whole multiples of the median) or "uneven"
    problem: str | None
    #: the fraction of the median within which a distance counts as regular
    tolerance: float

    @property
    def largest_ratio(self) -> float:
        return float(self.distances.max() / self.median)

    def describe(self) -> str:
        odd = [(k, round(float(d), 3)) for k, d in enumerate(self.distances) if self._odd(d)]
        shown = ", ".join(f"slices {k}->{k + 1}: {d} mm" for k, d in odd[:5])
        more = f" (+{len(odd) - 5} more)" if len(odd) > 5 else ""
        return f"median slice distance {self.median:.4g} mm; irregular: {shown}{more}"

    def _odd(self, d: float) -> bool:
        return abs(d - self.median) > self.tolerance * self.median


def judge_spacing(s: np.ndarray, tolerance: float) -> Spacing:
    """Classify sorted normal projections ``s``: regular, a gap (missing slices) or uneven."""
    d = np.diff(s)
    median = float(np.median(d))
    odd = np.abs(d - median) > tolerance * median
    if not odd.any():
        return Spacing(d, median, None, tolerance)
    ratio = d[odd] / median
    is_gap = bool(np.all((ratio >= 2 - tolerance) & (np.abs(ratio - np.round(ratio)) <= tolerance * np.round(ratio))))
    return Spacing(d, median, "gap" if is_gap else "uneven", tolerance)


def in_plane_drift(positions: np.ndarray, frame: SliceFrame) -> np.ndarray:
    """Per slice, the (column, row) offset in pixels of its position from slice 0's, within the plane.

    Zero for an orthogonal stack; growing with the slice index for a gantry-tilted one.
    """
    delta = positions - positions[0]
    sx, sy = frame.pixel_spacing
    return np.stack([delta @ frame.row / sx, delta @ frame.col / sy], axis=1)


def gantry_tilt_degrees(ds: Dataset) -> float:
    try:
        return float(ds.get("GantryDetectorTilt") or 0.0)
    except (TypeError, ValueError):
        return 0.0
