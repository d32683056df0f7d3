"""A QRM-like cardio calcification phantom: 9 calcium cylinders in a water body.

Like the QRM cardio calcification insert (FACTS.md §2): cylinders of 1, 3 and 5 mm
diameter (length = diameter) at 200, 400 and 800 mg HA/cm3, plus calibration rods
of 200 mg HA/cm3 and water. HA density maps to HU linearly (``HU_PER_MG`` per kVp),
and the series carries the matching Calcium Scoring Mass Factor, 1 / HU_PER_MG
mg/cm3 per HU, so ``mass = factor x sum(voxel mm3 x HU) / 1000`` is exactly the HA mass
of the voxelised inserts in mg.

Insert centres sit on voxel centres, so each insert's cross-section on a slice is a
symmetric digital disk (one 4-connected component).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.stage_values import Geometry
from deepcac2.pipeline.synth.labels import Distractor, Tissue
from deepcac2.pipeline.synth.phantom import HU_MAX, HU_MIN, LesionTruth, Phantom, degrade
from deepcac2.pipeline.synth.shapes import Grid

DIAMETERS_MM = (1.0, 3.0, 5.0)
DENSITIES_MG_CM3 = (200.0, 400.0, 800.0)
#: HU per mg HA/cm3 (simple linear model; a harder beam gives fewer HU)
HU_PER_MG = {120: 1.0, 140: 0.9}
ROD_DIAMETER_MM = 20.0


@dataclass(frozen=True)
class QRMSpec:
    seed: int = 0
    rows: int = 512
    cols: int = 512
    n_slices: int = 24
    pixel_spacing_mm: float = 0.5
    slice_thickness_mm: float = 2.5
    slice_increment_mm: float = 2.5
    kvp: int = 120
    noise_sd_hu: float = 0.0
    noise_correlation_px: float = 0.7
    blur_sigma_mm: float = 0.0

    def __post_init__(self) -> None:
        if self.kvp not in HU_PER_MG:
            raise DeepCACError(ErrorCode.E_SYNTH_SPEC, f"QRM phantom kVp must be one of {sorted(HU_PER_MG)}")
        if self.n_slices < 3 or self.rows < 64 or self.cols < 64:
            raise DeepCACError(ErrorCode.E_SYNTH_SPEC, "QRM phantom needs at least 64x64 pixels and 3 slices")

    @property
    def exact(self) -> bool:
        return self.noise_sd_hu == 0 and self.blur_sigma_mm == 0

    @property
    def mass_factor(self) -> float:
        return 1.0 / HU_PER_MG[self.kvp]


def insert_hu(density_mg_cm3: float, kvp: int) -> int:
    return int(round(density_mg_cm3 * HU_PER_MG[kvp]))


def build_qrm(spec: QRMSpec) -> Phantom:
    sx = sy = spec.pixel_spacing_mm
    sz = spec.slice_increment_mm
    nz, ny, nx = spec.n_slices, spec.rows, spec.cols
    # centre voxel (nz//2, ny//2, nx//2) sits exactly at LPS (0, 0, 0)
    origin = (-(nx // 2) * sx, -(ny // 2) * sy, -(nz // 2) * sz)
    grid = Grid((nz, ny, nx), origin, (sx, sy, sz))
    z = grid.axis(2)[:, None, None]
    y = grid.axis(1)[None, :, None]
    x = grid.axis(0)[None, None, :]
    s = min(1.0, min(nx * sx, ny * sy) / 340.0)
    anat = np.zeros((nz, ny, nx), dtype=np.uint8)
    hu = np.full((nz, ny, nx), -1000, dtype=np.int16)
    body = (x / (150.0 * s)) ** 2 + (y / (100.0 * s)) ** 2 <= 1.0
    anat[np.broadcast_to(body, anat.shape)] = Tissue.WATER
    hu[np.broadcast_to(body, hu.shape)] = 0
    housing = (x**2 + y**2 <= (50.0 * s) ** 2) & (np.abs(z) <= 20.0)
    distractors = np.zeros_like(anat)
    for xc, density in ((110.0 * s, 200.0), (-110.0 * s, 0.0)):
        # centre the rods on a voxel centre too
        xc = round(xc / sx) * sx
        rod = np.broadcast_to((x - xc) ** 2 + y**2 <= (ROD_DIAMETER_MM * s / 2) ** 2, anat.shape)
        anat[rod] = Tissue.QRM_ROD
        hu[rod] = insert_hu(density, spec.kvp)
        distractors[rod] = Distractor.CALIBRATION_ROD
    cac = np.zeros(anat.shape, dtype=bool)
    truth = []
    pitch = max(10.0, 25.0 * s)
    for row, density in enumerate(DENSITIES_MG_CM3):
        for col, diameter in enumerate(DIAMETERS_MM):
            xc = round((col - 1) * pitch / sx) * sx
            yc = round((row - 1) * pitch / sy) * sy
            inside = ((x - xc) ** 2 + (y - yc) ** 2 <= (diameter / 2) ** 2) & (np.abs(z) <= diameter / 2)
            value = insert_hu(density, spec.kvp)
            anat[inside] = Tissue.QRM_INSERT
            hu[inside] = value
            cac |= inside
            k, j, i = np.nonzero(inside)
            per_slice = tuple((int(kk), int((k == kk).sum())) for kk in np.unique(k))
            box = (int(k.min()), int(k.max()) + 1, int(j.min()), int(j.max()) + 1, int(i.min()), int(i.max()) + 1)
            truth.append(
                LesionTruth(
                    lesion_id=len(truth) + 1,
                    vessel=None,
                    hu=value,
                    box=box,
                    pixels_per_slice=per_slice,
                    kind="qrm_insert",
                    density_mg_cm3=density,
                )
            )
    if not spec.exact:
        hu = degrade(hu, spec, np.random.default_rng([spec.seed, 1]))  # type: ignore[arg-type]
    hu = np.clip(hu, HU_MIN, HU_MAX).astype(np.int16)
    return Phantom(
        hu=hu,
        geometry=Geometry(origin=origin, spacing=(sx, sy, sz)),
        heart=np.broadcast_to(housing, anat.shape).copy(),
        cac_vessels=np.zeros_like(anat),
        distractors=distractors,
        anatomy=anat,
        truth=tuple(truth),
        slice_thickness_mm=spec.slice_thickness_mm,
        kvp=spec.kvp,
        mass_factor=spec.mass_factor,
        exact=spec.exact,
        seed=spec.seed,
        cac=cac,
        kind="qrm",
    )
