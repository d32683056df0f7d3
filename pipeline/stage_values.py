"""The small typed values that flow between stages.

Conventions, used everywhere in the toolkit:

* Voxel arrays are numpy arrays indexed ``[k, j, i]`` = ``(z, y, x)``, as SimpleITK's
  ``GetArrayFromImage`` returns them. ``k`` runs along the slice normal in the order
  the loader sorted the slices (by ImagePositionPatient projected on the normal).
* ``Geometry.spacing`` is ``(x, y, z)`` in mm: column spacing, row spacing, slice
  spacing (the distance between slice centres, not the slice thickness).
* ``Geometry.direction`` is a row-major 3x3 matrix whose *columns* are the unit
  vectors of the i, j and k index axes in patient LPS coordinates (SimpleITK's
  convention). ``Geometry.origin`` is the LPS position of the centre of voxel (0, 0, 0).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Vessel labels used in label maps. 0 is background. The values are stable:
#: they are written into SEG segment numbers and the lesion table.
VESSEL_LABELS: dict[int, str] = {1: "LM", 2: "LAD", 3: "LCX", 4: "RCA"}
VESSEL_NAMES: dict[str, int] = {v: k for k, v in VESSEL_LABELS.items()}


@dataclass(frozen=True)
class SeriesRef:
    """Where one source series comes from and what the cohort knows about it."""

    series_uid: str
    study_uid: str | None = None
    patient_id: str | None = None
    collection_id: str | None = None
    #: a local folder, or an ``s3://bucket/prefix/*`` URL
    location: str | None = None
    crdc_series_uuid: str | None = None
    instance_count: int | None = None
    size_bytes: int | None = None
    #: parsed acquisition parameters (study_year, kernel, ...); plain JSON-able values
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Geometry:
    """Where a voxel array sits in patient (LPS) space."""

    origin: tuple[float, float, float]
    spacing: tuple[float, float, float]
    direction: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

    def __post_init__(self) -> None:
        if len(self.origin) != 3 or len(self.spacing) != 3 or len(self.direction) != 9:
            raise ValueError("Geometry needs a 3-vector origin and spacing and a 9-element direction")
        if any(not np.isfinite(s) or s <= 0 for s in self.spacing):
            raise ValueError(f"spacing must be positive and finite, got {self.spacing}")

    @property
    def direction_matrix(self) -> np.ndarray:
        return np.asarray(self.direction, dtype=float).reshape(3, 3)

    @property
    def affine(self) -> np.ndarray:
        """4x4 matrix mapping homogeneous index (i, j, k, 1) to LPS mm."""
        a = np.eye(4)
        a[:3, :3] = self.direction_matrix * np.asarray(self.spacing, dtype=float)[None, :]
        a[:3, 3] = self.origin
        return a

    @property
    def voxel_volume_mm3(self) -> float:
        return float(np.prod(self.spacing))

    def index_to_lps(self, ijk: np.ndarray) -> np.ndarray:
        """Map (..., 3) index coordinates in (i, j, k) order to LPS mm."""
        ijk = np.asarray(ijk, dtype=float)
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def lps_to_index(self, lps: np.ndarray) -> np.ndarray:
        """Map (..., 3) LPS points to continuous (i, j, k) index coordinates."""
        lps = np.asarray(lps, dtype=float)
        inv = np.linalg.inv(self.affine[:3, :3])
        return (lps - np.asarray(self.origin)) @ inv.T


@dataclass(frozen=True)
class InstanceRef:
    """One source image in slice order: enough to reference it from SEG and SR."""

    sop_class_uid: str
    sop_instance_uid: str
    path: str | None = None


@dataclass
class CTVolume:
    """A CT series in Hounsfield units with its geometry and source references.

    ``hu`` is int16 when rescale slope and intercept are integers (the common case,
    half the memory), float32 otherwise.
    """

    hu: np.ndarray
    geometry: Geometry
    series_uid: str
    study_uid: str | None = None
    patient_id: str | None = None
    frame_of_reference_uid: str | None = None
    slice_thickness: float | None = None
    kvp: float | None = None
    #: Calcium Scoring Mass Factor (0018,9351)/(0018,9352), mg/cm3 per HU; None when absent
    mass_factor: float | None = None
    instances: tuple[InstanceRef, ...] = ()
    #: header-only pydicom datasets in slice order (pixel data removed), for SEG/SR writers
    headers: list[Any] = field(default_factory=list, repr=False)
    #: what the loader did on purpose (dropped duplicates, resampled gaps, ...)
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.hu.ndim != 3:
            raise ValueError(f"CT volume must be 3-D (z, y, x), got shape {self.hu.shape}")

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.hu.shape)  # type: ignore[return-value]


@dataclass(frozen=True)
class ModelCard:
    """What produced a prediction. Flows into SEG, SR and every table row."""

    name: str
    version: str
    weights_sha256: str | None
    license: str
    training_data: str
    #: algorithm family for the SEG (DCM code meaning), e.g. "Artificial Intelligence"
    family: str = "Artificial Intelligence"
    description: str = ""

    @property
    def model_id(self) -> str:
        """A short stable identity: name, version and the start of the weights hash."""
        h = (self.weights_sha256 or "noweights")[:12]
        return f"{self.name}:{self.version}:{h}"


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, read in chunks (weights files can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass
class Prediction:
    """A model's output on the CT grid (same shape as ``CTVolume.hu``)."""

    heart: np.ndarray
    cac: np.ndarray
    card: ModelCard
    #: optional vessel label map (uint8, values from VESSEL_LABELS); zero where ``cac`` is False
    vessels: np.ndarray | None = None
    #: thoracic aortic calcium (bool), when the model reports it; never overlaps ``cac``
    aortic: np.ndarray | None = None
    #: aortic valve calcium and mitral annular calcification (bool), when the model reports them;
    #: never overlap ``cac``: valve and annulus calcium is not coronary
    aortic_valve: np.ndarray | None = None
    mitral_annular: np.ndarray | None = None
    #: the ``anatomy.Anatomy`` the model was given: provenance for tables, SEG and SR
    anatomy: Any = None
    #: calcium voxels (>= 130 HU) each named candidate rule rejected, when the model has rules
    rejected: dict[str, int] | None = None

    def __post_init__(self) -> None:
        if self.heart.shape != self.cac.shape:
            raise ValueError(f"heart {self.heart.shape} and cac {self.cac.shape} masks differ in shape")
        if self.vessels is not None and self.vessels.shape != self.cac.shape:
            raise ValueError("vessel label map must have the shape of the cac mask")
        if self.aortic is not None:
            if self.aortic.shape != self.cac.shape:
                raise ValueError("aortic calcium mask must have the shape of the cac mask")
            if (self.aortic & self.cac).any():
                raise ValueError("aortic calcium and coronary calcium masks overlap")
        for name in ("aortic_valve", "mitral_annular"):
            m = getattr(self, name)
            if m is not None and (m.shape != self.cac.shape or (m & self.cac).any()):
                raise ValueError(f"{name} calcium mask must have the shape of the cac mask and not overlap it")


@dataclass(frozen=True)
class Lesion:
    """One calcified lesion as a scoring convention delimits it."""

    lesion_id: int
    vessel: str | None
    first_slice: int
    last_slice: int
    area_mm2: float
    peak_hu: float
    mean_hu: float
    volume_mm3: float
    agatston: float
    centroid_lps: tuple[float, float, float]


@dataclass(frozen=True)
class VesselScore:
    agatston: float
    volume_mm3: float
    mass_mg: float | None
    lesion_count: int


@dataclass(frozen=True)
class Scores:
    """All scores of one series under one named convention."""

    convention: str
    #: the convention's parameters as plain JSON-able values (recorded with every result)
    convention_params: dict[str, Any]
    agatston: float
    volume_mm3: float
    mass_mg: float | None
    lesion_count: int
    lesions: tuple[Lesion, ...] = ()
    per_vessel: dict[str, VesselScore] = field(default_factory=dict)
    #: risk category label per scheme, e.g. {"deepcac": "moderate", "classic": "...", "cac_drs": "..."}
    categories: dict[str, str] = field(default_factory=dict)
