"""What an NLST CT series header looks like: scanners, kernels, the 11-field description, UIDs.

The scanner and kernel mix follows NLST (GE LightSpeed, Siemens Sensation and Volume
Zoom, Philips MX8000 and Brilliance, Toshiba Aquilion). The model codes in the
SeriesDescription are in NLST's style; the exact codes NLST used for each model are
not all known here, so treat them as plausible, not authoritative.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date, timedelta

from pydicom.uid import PYDICOM_ROOT_UID, UID, generate_uid


@dataclass(frozen=True)
class Scanner:
    manufacturer: str  # (0008,0070) as the scanners write it
    model: str  # (0008,1090)
    vendor_code: str  # SeriesDescription field 3
    model_code: str  # SeriesDescription field 4
    #: kernels, soft first
    kernels: tuple[str, ...]


SCANNERS: tuple[Scanner, ...] = (
    Scanner("GE MEDICAL SYSTEMS", "LightSpeed QX/i", "GE", "LSQXI", ("STANDARD", "BONE", "LUNG")),
    Scanner("GE MEDICAL SYSTEMS", "LightSpeed Plus", "GE", "LSPLUS", ("STANDARD", "BONE", "LUNG")),
    Scanner("GE MEDICAL SYSTEMS", "LightSpeed16", "GE", "LS16", ("STANDARD", "LUNG")),
    Scanner("SIEMENS", "Sensation 16", "SIEMENS", "SENSATION16", ("B30f", "B50f", "B80f")),
    Scanner("SIEMENS", "Volume Zoom", "SIEMENS", "VZOOM", ("B30f", "B50f")),
    Scanner("Philips", "MX8000", "PHILIPS", "MX8000", ("C", "D", "B")),
    Scanner("Philips", "Brilliance 16", "PHILIPS", "BRILLIANCE16", ("C", "D")),
    Scanner("TOSHIBA", "Aquilion", "TOSHIBA", "AQUILION", ("FC10", "FC51", "FC01")),
)

#: sharp kernels: more noise, less blur in the generated pixels
SHARP_KERNELS = frozenset({"BONE", "LUNG", "B50f", "B80f", "D", "FC51"})


def uid(*parts: object) -> UID:
    """A deterministic UID of the ordered parts (JSON-joined, so parts never run together).

    Under pydicom's root: ``generate_uid(prefix=None)`` would ignore the entropy and be random.
    """
    return generate_uid(prefix=PYDICOM_ROOT_UID, entropy_srcs=[json.dumps([str(p) for p in parts])])


@dataclass(frozen=True)
class SeriesMeta:
    """The header values of one series that are not in the phantom."""

    patient_id: str
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    study_year: int  # 0, 1, 2 = T0, T1, T2
    study_date: str  # YYYYMMDD
    series_number: int
    scanner: Scanner
    kernel: str
    tube_current_ma: int = 40
    #: "OPA" original primary axial, "OPL" localizer
    image_code: str = "OPA"
    patient_sex: str = "M"
    patient_age_years: int = 62
    study_time: str = "101500"

    def describe(self, fov_mm: float, thickness_mm: float | None, kvp: int) -> str:
        """The 11-field NLST SeriesDescription: year, image code, vendor, model, kernel, FOV, thickness, kVp, mA, 2 more."""
        thick = "na" if thickness_mm is None else f"{thickness_mm:g}"
        fields = [
            str(self.study_year),
            self.image_code,
            self.scanner.vendor_code,
            self.scanner.model_code,
            self.kernel,
            f"{round(fov_mm)}",
            thick,
            str(kvp),
            str(self.tube_current_ma),
            "0.8",  # rotation time (s)
            "1.5",  # pitch
        ]
        return ",".join(fields)

    def with_series(self, tag: str, series_number: int, **changes: object) -> SeriesMeta:
        """Another series of the same study (same frame of reference unless changed)."""
        return replace(self, series_uid=uid(self.study_uid, "series", tag), series_number=series_number, **changes)  # type: ignore[arg-type]


def study_meta(
    cohort: str, seed: int, patient_index: int, study_year: int, scanner: Scanner, kernel: str, **kw: object
) -> SeriesMeta:
    """Header values for the first series of one patient's study in a cohort."""
    patient_id = f"SYN{seed:03d}{patient_index:04d}"
    study_uid = uid(cohort, seed, patient_id, "study", study_year)
    base = date(1999, 8, 2) + timedelta(days=37 * patient_index + 365 * study_year)
    return SeriesMeta(
        patient_id=patient_id,
        study_uid=study_uid,
        series_uid=uid(study_uid, "series", 0),
        frame_of_reference_uid=uid(study_uid, "frame", 0),
        study_year=study_year,
        study_date=base.strftime("%Y%m%d"),
        series_number=2,
        scanner=scanner,
        kernel=kernel,
        patient_sex="M" if patient_index % 2 == 0 else "F",
        patient_age_years=55 + (patient_index * 7) % 20 + study_year,
        **kw,  # type: ignore[arg-type]
    )
