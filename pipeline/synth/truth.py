"""Expected scores of a phantom, computed analytically from its lesions.

This is deliberately *not* the scoring engine: it never labels components. Each
ground-truth lesion has one constant HU and, on each slice, one 4-connected cross
section of known pixel count; lesions are kept apart by the generator. So per
convention the rules reduce to arithmetic on those counts:

* a voxel is lesion if ``HU >= threshold`` (``>`` when the convention is not inclusive);
  with ``mask_threshold`` False every mask voxel is lesion, whatever its HU;
* weight 1, 2, 3, 4 from the band starts (130/200/300/400, or the Gräni kVp row);
  below the second band start the weight is 1;
* 2-D conventions keep a slice's cross section if it has ``>= min_pixels`` pixels and
  an area ``> min_area_mm2``; 3-D conventions keep a lesion of volume ``>= min_volume_mm3``;
* Agatston = sum of kept areas x weight x (slice spacing or SliceThickness) / 3; with
  ``round_decimals`` d, per cross section: round(pixels x round(pixel area x factor, d) x weight, d);
* volume = kept voxels x voxel volume; mass = mass_factor x sum(voxel volume x HU) / 1000
  (mg, with mass_factor in mg/cm3 per HU), only when the series has a mass factor;
* a convention that resamples z to a spacing other than the series' has no analytic
  answer: its values are None with a reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from deepcac2.pipeline.synth.phantom import LesionTruth, Phantom

#: Gräni 2018 rows from FACTS.md §2 (detection, w2, w3, w4); the 120 kV row is the classic scale.
GRANI = {70: (207, 318, 477, 636), 80: (177, 271, 408, 544), 100: (145, 222, 334, 446), 135: (119, 183, 274, 364)}
CLASSIC = (130.0, 200.0, 300.0, 400.0)


@dataclass(frozen=True)
class VesselExpected:
    agatston: float
    volume_mm3: float
    mass_mg: float | None
    lesion_count: int


@dataclass(frozen=True)
class ExpectedScores:
    """The expected result of one series under one convention."""

    convention: str
    agatston: float | None
    volume_mm3: float | None
    mass_mg: float | None
    lesion_count: int | None
    #: True: exact (noise-free); False: nominal (the noise-free values of a noisy series)
    exact: bool
    reason: str | None = None
    per_vessel: dict[str, VesselExpected] = field(default_factory=dict)
    categories: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bands(kvp: float | None, adjusted: bool) -> tuple[float, float, float, float]:
    if not adjusted or kvp is None:
        return CLASSIC
    rows = {**GRANI, 120: CLASSIC}
    nearest = min(rows, key=lambda k: (abs(k - kvp), k))
    return tuple(float(v) for v in rows[nearest])  # type: ignore[return-value]


def weight(hu: float, band_starts: tuple[float, float, float, float]) -> int:
    return 4 if hu >= band_starts[3] else 3 if hu >= band_starts[2] else 2 if hu >= band_starts[1] else 1


def categories(agatston: float) -> dict[str, str]:
    """Risk category in each scheme of FACTS.md §2, labelled as the release tables label them.

    Bands are integer intervals, so the score is rounded to the nearest integer first
    (ties to even), as DeepCAC2's AGSCalculator does: 0.4 is "0", 100.6 is "101-300".
    """
    a = round(agatston)
    deepcac = "very low" if a == 0 else "low" if a <= 100 else "moderate" if a <= 300 else "high"
    classic = "0" if a == 0 else "1-10" if a <= 10 else "11-100" if a <= 100 else "101-400" if a <= 400 else ">400"
    drs = "0" if a == 0 else "1-99" if a < 100 else "100-299" if a < 300 else ">=300"
    return {"deepcac": deepcac, "classic": classic, "cac_drs": drs}


def _kept(les: LesionTruth, conv: Any, spacing: tuple[float, float, float], kvp: float | None) -> tuple[list[int], int]:
    """(pixel counts of the kept cross sections, weight) of one lesion; no counts if it is not counted."""
    starts = bands(kvp, conv.kvp_adjusted)
    if getattr(conv, "mask_threshold", True):
        detected = les.hu >= starts[0] if conv.inclusive else les.hu > starts[0]
        if not detected:
            return [], 0
    pixel_area = spacing[0] * spacing[1]
    w = weight(les.hu, starts)
    counts = [n for _, n in les.pixels_per_slice]
    if conv.dims == 3:
        volume = les.n_voxels * pixel_area * spacing[2]
        if conv.min_volume_mm3 is not None and volume < conv.min_volume_mm3:
            return [], w
        return counts, w
    kept = [
        n
        for n in counts
        if (conv.min_pixels is None or n >= conv.min_pixels)
        and (conv.min_area_mm2 is None or n * pixel_area > conv.min_area_mm2)
    ]
    return kept, w


def _agatston(counts: list[int], w: int, pixel_area: float, factor: float, decimals: int | None) -> float:
    if decimals is None:
        return sum(counts) * pixel_area * w * factor
    per_pixel = round(pixel_area * factor, decimals)
    return sum(round(n * per_pixel * w, decimals) for n in counts)


def expected_scores(
    lesions: Iterable[LesionTruth],
    spacing: tuple[float, float, float],
    thickness: float,
    kvp: float | None,
    mass_factor: float | None,
    conventions: Mapping[str, Any],
    exact: bool = True,
) -> dict[str, ExpectedScores]:
    """Expected scores per convention (``conventions`` maps name -> Convention, read as data)."""
    lesions = list(lesions)
    voxel_mm3 = spacing[0] * spacing[1] * spacing[2]
    out = {}
    for name, conv in conventions.items():
        if conv.resample_z_mm is not None and abs(conv.resample_z_mm - spacing[2]) > 1e-6:
            out[name] = ExpectedScores(
                name, None, None, None, None, exact,
                reason=f"convention resamples z to {conv.resample_z_mm} mm, the series has {spacing[2]} mm: not analytic",
            )  # fmt: skip
            continue
        factor = (spacing[2] if conv.slice_factor == "increment" else thickness) / 3.0
        per: dict[str, list[float]] = {}
        for les in lesions:
            counts, w = _kept(les, conv, spacing, kvp)
            if not counts:
                continue
            nvox = sum(counts)
            acc = per.setdefault(les.vessel or "none", [0.0, 0.0, 0.0, 0])
            acc[0] += _agatston(counts, w, spacing[0] * spacing[1], factor, getattr(conv, "round_decimals", None))
            acc[1] += nvox * voxel_mm3
            acc[2] += nvox * voxel_mm3 * les.hu
            acc[3] += 1

        def mass(hu_mm3: float) -> float | None:
            return None if mass_factor is None else mass_factor * hu_mm3 / 1000.0

        agatston = sum(a[0] for a in per.values())
        out[name] = ExpectedScores(
            convention=name,
            agatston=agatston,
            volume_mm3=sum(a[1] for a in per.values()),
            mass_mg=mass(sum(a[2] for a in per.values())),
            lesion_count=int(sum(a[3] for a in per.values())),
            exact=exact,
            per_vessel={
                v: VesselExpected(a[0], a[1], mass(a[2]), int(a[3])) for v, a in sorted(per.items()) if v != "none"
            },
            categories=categories(agatston),
        )
    return out


def phantom_expected(phantom: Phantom, conventions: Mapping[str, Any] | None = None) -> dict[str, ExpectedScores]:
    """Expected scores of a phantom under every named convention (default: all of CONVENTIONS)."""
    if conventions is None:
        from deepcac2.pipeline.conventions import CONVENTIONS as conventions  # data only
    return expected_scores(
        phantom.truth,
        phantom.geometry.spacing,
        phantom.slice_thickness_mm,
        phantom.kvp,
        phantom.mass_factor,
        conventions,
        exact=phantom.exact,
    )
