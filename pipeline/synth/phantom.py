"""The synthetic NLST-like chest: spec in, voxels and exact ground truth out (no DICOM here).

``build_chest(ChestSpec(...))`` returns a ``Phantom``: HU volume, geometry, label maps
and one ``LesionTruth`` per coronary plaque. Plaques are axis-aligned boxes of constant
HU on the voxel grid, so in the noise-free, blur-free mode every score is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.stage_values import VESSEL_NAMES, Geometry
from deepcac2.pipeline.synth.anatomy import paint_thorax
from deepcac2.pipeline.synth.calcium import paint_great_calcium
from deepcac2.pipeline.synth.great_chest import GreatChest, paint_great_chest
from deepcac2.pipeline.synth.habitus import check_habitus
from deepcac2.pipeline.synth.heart_phantom import paint_distractors, paint_heart
from deepcac2.pipeline.synth.labels import DISTRACTOR_GROUP, Distractor, Tissue, hu_lut
from deepcac2.pipeline.synth.shapes import Grid

#: HU range a CT series can hold (12-bit unsigned with intercept -1024)
HU_MIN, HU_MAX = -1024, 3071
#: plaques keep this many voxels of clearance (in-plane, through-plane) from anything dense
CLEARANCE = (2, 1)
#: "dense" for the clearance check: below the lowest detection threshold in use (119 HU at 135 kV)
DENSE_HU = 100


def _bad(msg: str, **detail: object) -> DeepCACError:
    return DeepCACError(ErrorCode.E_SYNTH_SPEC, msg, **detail)


@dataclass(frozen=True)
class PlaqueSpec:
    """One calcified plaque: a box of constant HU centred on a coronary centreline.

    ``position`` is the fraction of the vessel length from its origin; ``size_mm`` is
    the box size (x, y, z), or one number for a cube. The box is rounded to whole
    voxels, at least one per axis.
    """

    vessel: str
    size_mm: float | tuple[float, float, float] = 3.0
    hu: int = 400
    position: float = 0.5

    def __post_init__(self) -> None:
        if self.vessel not in VESSEL_NAMES:
            raise _bad(f"unknown vessel {self.vessel!r}; use one of {', '.join(VESSEL_NAMES)}")
        if not 0.0 <= self.position <= 1.0:
            raise _bad(f"plaque position must be in [0, 1], got {self.position}")
        if np.any(np.asarray(self.size_mm, dtype=float) <= 0) or np.size(self.size_mm) not in (1, 3):
            raise _bad(f"plaque size must be one or three positive numbers, got {self.size_mm}")
        if not HU_MIN <= int(self.hu) <= HU_MAX or int(self.hu) != self.hu:
            raise _bad(f"plaque HU must be an integer in [{HU_MIN}, {HU_MAX}], got {self.hu}")


@dataclass(frozen=True)
class ChestSpec:
    """What to build. Defaults give a heart-centred 512x512x64 noise-free scan at 2.5 mm."""

    seed: int = 0
    rows: int = 512
    cols: int = 512
    n_slices: int = 64
    pixel_spacing_mm: float = 0.7
    slice_thickness_mm: float = 2.5
    slice_increment_mm: float = 2.5
    kvp: int = 120
    #: Gaussian noise SD in HU; 0 = noise-free
    noise_sd_hu: float = 0.0
    #: in-plane correlation of the noise (Gaussian sigma in pixels; 0 = white)
    noise_correlation_px: float = 0.7
    #: partial-volume blur, Gaussian sigma in mm (in-plane; through-plane it is scaled by thickness/pixel); 0 = none
    blur_sigma_mm: float = 0.0
    plaques: tuple[PlaqueSpec, ...] = ()
    #: aortic wall, aortic valve and mitral annulus calcium (bone next to the heart is always there)
    distractors: bool = True
    #: Calcium Scoring Mass Factor in mg/cm3 per HU, written as (0018,9351); None = absent
    mass_factor: float | None = None
    #: z (mm) of the scan centre relative to the heart centre; None: heart-centred, shifted up for long scans
    z_center_mm: float | None = None
    #: varies the noise alone (e.g. two kernels of one scan: same anatomy, different noise)
    noise_seed: int = 0
    #: real mediastinal anatomy: aortic arch and descending aorta against the left atrium,
    #: pulmonary trunk and branches, vena cava, esophagus, lymph nodes, costal cartilage,
    #: patient-to-patient variation, and calcium in them (see docs/synth.md)
    great_vessels: bool = False
    #: the patient's anatomy (heart, lungs, vessels, their calcium) is drawn from this seed when set,
    #: so several studies of one patient share it; None: from ``seed``. Noise always comes from ``seed``.
    anatomy_seed: int | None = None
    #: great-vessel chests: hearts that are hard to find (``habitus.HABITUS``: ``anterior_contact``,
    #: ``wide_heart``, ``obese``; any combination)
    habitus: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "plaques", tuple(self.plaques))
        object.__setattr__(self, "habitus", tuple(self.habitus))
        try:
            check_habitus(self.habitus)
        except ValueError as e:
            raise _bad(str(e)) from None
        if self.habitus and not self.great_vessels:
            raise _bad("habitus needs a great-vessel chest (great_vessels=True)")
        if not (16 <= self.rows <= 2048 and 16 <= self.cols <= 2048 and 1 <= self.n_slices <= 2000):
            raise _bad(
                f"rows/cols must be in [16, 2048] and slices in [1, 2000], got {self.rows}x{self.cols}x{self.n_slices}"
            )
        for name in ("pixel_spacing_mm", "slice_thickness_mm", "slice_increment_mm"):
            value = getattr(self, name)
            if not (np.isfinite(value) and 0.05 <= value <= 20.0):
                raise _bad(f"{name} must be in [0.05, 20] mm, got {value}")
        if not 70 <= self.kvp <= 150:
            raise _bad(f"kVp must be in [70, 150], got {self.kvp}")
        if self.noise_sd_hu < 0 or self.blur_sigma_mm < 0 or self.noise_correlation_px < 0:
            raise _bad("noise and blur settings must be >= 0")
        if self.mass_factor is not None and not (np.isfinite(self.mass_factor) and self.mass_factor > 0):
            raise _bad(f"mass factor must be positive, got {self.mass_factor}")

    @property
    def exact(self) -> bool:
        """Noise-free and blur-free: the expected scores are exact, not nominal."""
        return self.noise_sd_hu == 0 and self.blur_sigma_mm == 0


@dataclass(frozen=True)
class LesionTruth:
    """One ground-truth calcium lesion of constant HU.

    ``box`` is ``(k0, k1, j0, j1, i0, i1)``, half-open voxel index ranges. For box
    lesions every voxel of the box belongs to the lesion; otherwise ``pixels_per_slice``
    says how many pixels of each slice do (each slice's pixels form one 4-connected
    component).
    """

    lesion_id: int
    vessel: str | None
    hu: int
    box: tuple[int, int, int, int, int, int]
    pixels_per_slice: tuple[tuple[int, int], ...]
    kind: str = "plaque"
    #: where along the vessel it ended up (the spec's position, moved if that place was taken)
    position: float | None = None
    #: QRM inserts: the hydroxyapatite density it stands for
    density_mg_cm3: float | None = None

    @property
    def n_voxels(self) -> int:
        return sum(n for _, n in self.pixels_per_slice)

    @staticmethod
    def from_box(lesion_id: int, vessel: str | None, hu: int, box: tuple[int, ...], **kw: object) -> LesionTruth:
        k0, k1, j0, j1, i0, i1 = (int(b) for b in box)
        per_slice = tuple((k, (j1 - j0) * (i1 - i0)) for k in range(k0, k1))
        return LesionTruth(lesion_id, vessel, int(hu), (k0, k1, j0, j1, i0, i1), per_slice, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class CalciumTruth:
    """The non-coronary calcium of one structure (a ``labels.Distractor`` value), noise-free.

    ``n_voxels`` counts every voxel with the label; ``n_voxels_130`` those >= 130 HU;
    ``components`` the 26-connected pieces (None for bone near the heart, which is whole
    bones).
    """

    label: int
    structure: str
    group: str
    n_voxels: int
    n_voxels_130: int
    volume_mm3: float
    hu_max: int
    components: int | None


@dataclass
class Phantom:
    """A synthetic CT volume with its label maps and ground truth. Arrays are (z, y, x)."""

    hu: np.ndarray  # int16
    geometry: Geometry
    heart: np.ndarray  # bool
    cac_vessels: np.ndarray  # uint8, VESSEL_LABELS values, 0 elsewhere
    distractors: np.ndarray  # uint8, labels.Distractor values
    anatomy: np.ndarray  # uint8, labels.Tissue values
    truth: tuple[LesionTruth, ...]
    slice_thickness_mm: float
    kvp: int
    mass_factor: float | None
    #: noise-free and blur-free: expected scores are exact
    exact: bool
    seed: int
    #: the truth CAC mask (= cac_vessels > 0 for chests; the inserts for QRM)
    cac: np.ndarray = field(default=None)  # type: ignore[assignment]
    #: coronary centrelines, LPS mm
    vessel_paths: dict[str, np.ndarray] = field(default_factory=dict)
    kind: str = "chest"
    #: non-coronary calcium by structure (from ``distractors`` and the noise-free HU)
    calcium: tuple[CalciumTruth, ...] = ()
    #: built with ``ChestSpec.great_vessels``
    great_vessels: bool = False
    #: great-vessel chests: the patient's anatomy draws (``body.Body`` as a dict) and landmarks (LPS mm)
    landmarks: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.cac is None:
            self.cac = self.cac_vessels > 0


def chest_grid(spec: ChestSpec) -> Grid:
    sx = sy = spec.pixel_spacing_mm
    sz = spec.slice_increment_mm
    extent = (spec.n_slices - 1) * sz
    zc = spec.z_center_mm if spec.z_center_mm is not None else max(0.0, 0.5 * extent - 120.0)
    origin = (-(spec.cols - 1) / 2 * sx, -(spec.rows - 1) / 2 * sy, zc - extent / 2)
    return Grid((spec.n_slices, spec.rows, spec.cols), origin, (sx, sy, sz))


def build_chest(spec: ChestSpec) -> Phantom:
    """Build the chest of ``spec``. Deterministic: the same spec gives the same arrays."""
    grid = chest_grid(spec)
    anatomy_seed = spec.seed if spec.anatomy_seed is None else spec.anatomy_seed
    rng = np.random.default_rng([anatomy_seed, 0])
    fov = min(spec.rows, spec.cols) * spec.pixel_spacing_mm
    anat = np.zeros(grid.shape, dtype=np.uint8)
    heart_mask = np.zeros(grid.shape, dtype=bool)
    distractors = np.zeros(grid.shape, dtype=np.uint8)
    chest = None
    if spec.great_vessels:
        # the great-vessel chest's own draws come from their own stream: the plain chest's stay as they were
        rng_body = np.random.default_rng([anatomy_seed, 2])
        chest = paint_great_chest(anat, heart_mask, grid, min(1.0, fov / 340.0), rng, rng_body, spec.habitus)
        heart = chest.heart
        hu = hu_lut()[anat]
        if spec.distractors:
            paint_great_calcium(anat, hu, distractors, grid, chest, rng_body)
    else:
        thorax = paint_thorax(anat, grid, min(1.0, fov / 340.0), rng)
        heart = paint_heart(anat, heart_mask, grid, thorax, rng)
        hu = hu_lut()[anat]
        if spec.distractors:
            paint_distractors(anat, hu, distractors, grid, heart, thorax, rng)
    _mark_bone_near_heart(anat, heart_mask, distractors, grid)
    cac_vessels = np.zeros(grid.shape, dtype=np.uint8)
    truth = _place_plaques(spec, grid, heart.paths, anat, hu, cac_vessels, heart_mask)
    calcium = calcium_truth(distractors, hu, grid)
    if not spec.exact:
        hu = degrade(hu, spec, np.random.default_rng([spec.seed, 1, spec.noise_seed]))
    geometry = Geometry(origin=grid.origin, spacing=grid.spacing)
    return Phantom(
        hu=hu,
        geometry=geometry,
        heart=heart_mask,
        cac_vessels=cac_vessels,
        distractors=distractors,
        anatomy=anat,
        truth=truth,
        slice_thickness_mm=spec.slice_thickness_mm,
        kvp=spec.kvp,
        mass_factor=spec.mass_factor,
        exact=spec.exact,
        seed=spec.seed,
        vessel_paths=heart.paths,
        calcium=calcium,
        great_vessels=spec.great_vessels,
        landmarks={**_landmarks(chest), "habitus": list(spec.habitus)} if spec.great_vessels else {},
    )


def _landmarks(chest: GreatChest) -> dict[str, object]:
    gv = chest.vessels
    out: dict[str, object] = {"body": {k: v for k, v in vars(chest.body).items()}}
    if gv is not None:
        out.update(
            arch_top=[round(float(v), 3) for v in gv.arch_top],
            pulmonary_bifurcation=[round(float(v), 3) for v in gv.bifurcation],
            aortic_root=[round(float(v), 3) for v in chest.heart.aortic_root],
            carina=list(chest.thorax.carina),
            nodes=[
                {"station": n.station, "center": [round(float(v), 3) for v in n.center],
                 "radii": [round(float(v), 3) for v in n.radii], "n_voxels": n.n_voxels}
                for n in chest.nodes
            ],
        )  # fmt: skip
    return out


def calcium_truth(distractors: np.ndarray, hu: np.ndarray, grid: Grid) -> tuple[CalciumTruth, ...]:
    """Per ``Distractor`` value: voxels, voxels >= 130 HU, volume, peak HU, connected pieces."""
    where = np.nonzero(distractors)
    if len(where[0]) == 0:
        return ()
    values = distractors[where]
    voxel = float(np.prod(grid.spacing))
    out = []
    for label in np.unique(values):
        kind = Distractor(int(label))
        sel = values == label
        k, j, i = (w[sel] for w in where)
        vals = hu[k, j, i]
        pieces = None
        if kind != Distractor.BONE_NEAR_HEART:
            box = (slice(k.min(), k.max() + 1), slice(j.min(), j.max() + 1), slice(i.min(), i.max() + 1))
            _, pieces = ndimage.label(distractors[box] == label, ndimage.generate_binary_structure(3, 3))
        out.append(
            CalciumTruth(
                label=int(label),
                structure=kind.name.lower(),
                group=DISTRACTOR_GROUP[kind],
                n_voxels=int(sel.sum()),
                n_voxels_130=int((vals >= 130).sum()),
                volume_mm3=float(sel.sum()) * voxel,
                hu_max=int(vals.max()),
                components=None if pieces is None else int(pieces),
            )
        )
    return tuple(out)


def _mark_bone_near_heart(anat: np.ndarray, heart: np.ndarray, labels: np.ndarray, grid: Grid) -> None:
    """Bone within 25 mm of the heart's bounding box: the ribs, sternum and spine a model must ignore."""
    objects = ndimage.find_objects(heart.view(np.uint8))
    if not objects:
        return
    margin = np.ceil(25.0 / np.asarray(grid.spacing)[::-1]).astype(int)
    lo = np.maximum(np.array([s.start for s in objects[0]]) - margin, 0)
    hi = np.array([s.stop for s in objects[0]]) + margin
    sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    sub = anat[sl]
    bone = (sub == Tissue.CORTICAL_BONE) | (sub == Tissue.CANCELLOUS_BONE)
    labels[sl][bone] = Distractor.BONE_NEAR_HEART


def _place_plaques(
    spec: ChestSpec,
    grid: Grid,
    paths: dict[str, np.ndarray],
    anat: np.ndarray,
    hu: np.ndarray,
    cac_vessels: np.ndarray,
    heart: np.ndarray,
) -> tuple[LesionTruth, ...]:
    """Put each plaque box on its vessel, sliding along the vessel if the spot is not clear."""
    out = []
    spacing = np.asarray(grid.spacing)
    origin = np.asarray(grid.origin)
    shape = np.array(grid.shape)  # (nz, ny, nx)
    for n, p in enumerate(spec.plaques, start=1):
        path = paths.get(p.vessel)
        if path is None or len(path) == 0:
            raise _bad(f"plaque {n}: vessel {p.vessel} is outside this field of view")
        size = np.broadcast_to(np.asarray(p.size_mm, dtype=float), (3,))
        nvox = np.maximum(1, np.rint(size / spacing).astype(int))[::-1]  # (z, y, x)
        # try the requested spot, then nearby ones, alternating sides
        tries = [p.position] + [p.position + d * sgn for d in np.arange(0.02, 1.0, 0.02) for sgn in (1, -1)]
        for pos in (t for t in tries if 0.0 <= t <= 1.0):
            centre = path[int(round(pos * (len(path) - 1)))]
            cidx = np.rint((centre - origin) / spacing).astype(int)[::-1]
            lo = cidx - (nvox - 1) // 2
            hi = lo + nvox
            if np.any(lo < 0) or np.any(hi > shape):
                continue
            margin = np.array([CLEARANCE[1], CLEARANCE[0], CLEARANCE[0]])
            glo, ghi = np.maximum(lo - margin, 0), np.minimum(hi + margin, shape)
            gsl = tuple(slice(a, b) for a, b in zip(glo, ghi, strict=True))
            if (hu[gsl] >= DENSE_HU).any() or (cac_vessels[gsl] > 0).any():
                continue
            sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
            anat[sl] = Tissue.CAC
            hu[sl] = int(p.hu)
            cac_vessels[sl] = VESSEL_NAMES[p.vessel]
            heart[sl] = True
            box = (lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])
            out.append(LesionTruth.from_box(n, p.vessel, int(p.hu), box, position=round(float(pos), 4)))
            break
        else:
            raise _bad(f"plaque {n} ({p.vessel}, {p.size_mm} mm) finds no clear place on its vessel in this volume")
    return tuple(out)


def degrade(hu: np.ndarray, spec: ChestSpec, rng: np.random.Generator) -> np.ndarray:
    """Partial-volume blur, then (optionally in-plane correlated) Gaussian noise; int16 out."""
    out = hu.astype(np.float32)
    if spec.blur_sigma_mm > 0:
        px = spec.pixel_spacing_mm
        # through-plane the slice profile (FWHM = thickness) adds to the blur
        sigma_z = np.hypot(spec.blur_sigma_mm, spec.slice_thickness_mm / 2.355) / spec.slice_increment_mm
        out = ndimage.gaussian_filter(out, sigma=(sigma_z, spec.blur_sigma_mm / px, spec.blur_sigma_mm / px))
    if spec.noise_sd_hu > 0:
        noise = rng.standard_normal(out.shape, dtype=np.float32)
        if spec.noise_correlation_px > 0:
            c = spec.noise_correlation_px
            noise = ndimage.gaussian_filter(noise, sigma=(0, c, c))
            noise *= 1.0 / max(float(noise[:: max(1, len(noise) // 8)].std()), 1e-6)
        out += noise * np.float32(spec.noise_sd_hu)
    return np.clip(np.rint(out), HU_MIN, HU_MAX).astype(np.int16)


def random_plaques(
    rng: np.random.Generator,
    n: int,
    size_mm: tuple[float, float] = (1.5, 6.0),
    hu: tuple[int, int] = (130, 900),
) -> tuple[PlaqueSpec, ...]:
    """``n`` plaques on random vessels, positions, sizes and peak HU (for training data)."""
    vessels = list(VESSEL_NAMES)
    return tuple(
        PlaqueSpec(
            vessel=vessels[int(rng.integers(len(vessels)))],
            size_mm=tuple(float(v) for v in rng.uniform(*size_mm, 3)),  # type: ignore[arg-type]
            hu=int(rng.integers(hu[0], hu[1] + 1)),
            position=float(rng.uniform(0.05, 0.95)),
        )
        for _ in range(n)
    )
