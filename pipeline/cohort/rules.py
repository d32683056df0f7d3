"""Eligibility rules and user filters, each a named boolean mask over the cohort frame.

Rules run in order; ``explain`` reports what each one removed. The frame has the index
columns plus the parsed NLST columns (see ``nlst.NLST_FIELDS``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.identifiers import is_valid_patient_id

#: Transfer syntaxes the loader decodes without loss: uncompressed, RLE, lossless JPEG and
#: lossless JPEG 2000 (pylibjpeg). Lossy JPEG (NLST has 152 JPEG Extended series) changes HU
#: values, which moves calcium scores, so it is not eligible by default.
LOSSLESS_TRANSFER_SYNTAXES: frozenset[str] = frozenset(
    {
        "1.2.840.10008.1.2",  # Implicit VR Little Endian
        "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
        "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
        "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired, still decodable)
        "1.2.840.10008.1.2.5",  # RLE Lossless
        "1.2.840.10008.1.2.4.57",  # JPEG Lossless
        "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
        "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    }
)

MIN_INSTANCES = 50


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    keep: Callable[[pd.DataFrame], pd.Series]


def _transfer_syntax_ok(value: object, allowed: frozenset[str]) -> bool:
    # The index joins the syntaxes of a series' files with commas; every one must be decodable.
    if not isinstance(value, str) or not value:
        return True  # unknown (local folders fill it in); the loader checks each file
    return all(part.strip() in allowed for part in value.split(","))


def eligibility_rules(
    min_instances: int = MIN_INSTANCES, transfer_syntaxes: frozenset[str] = LOSSLESS_TRANSFER_SYNTAXES
) -> list[Rule]:
    """The ``all`` policy: CT, no localizer, original primary axial, enough slices, decodable."""
    return [
        Rule("ct", "Modality is CT", lambda d: d["Modality"] == "CT"),
        not_localizer_rule(),
        Rule(
            "original_primary_axial",
            "NLST image type OPA (series without the NLST form pass: unknown type)",
            lambda d: d["image_type"].isna() | (d["image_type"] == "OPA"),
        ),
        Rule(
            f"min_instances_{min_instances}",
            f"at least {min_instances} instances",
            lambda d: d["instanceCount"] >= min_instances,
        ),
        Rule(
            "transfer_syntax",
            "every file in a lossless transfer syntax the loader decodes",
            lambda d: d["TransferSyntaxUID"].map(lambda v: _transfer_syntax_ok(v, transfer_syntaxes)).astype(bool),
        ),
        patient_id_rule(),
    ]


def not_localizer_rule() -> Rule:
    return Rule(
        "not_localizer",
        "not a localizer (NLST image type OPL/DPL/OSL/DSL, or scout/localizer/topogram in the text)",
        lambda d: ~d["is_localizer"].astype(bool),
    )


def patient_id_rule() -> Rule:
    """The release's PatientID rule (``pipeline.identifiers``), applied here so a series never fails it at ``release build``."""
    return Rule(
        "patient_id",
        "PatientID present and usable as a release folder (letters, digits, '.', '_', '-'); else E_PATIENT_ID",
        lambda d: d["PatientID"].map(is_valid_patient_id).astype(bool),
    )


def always_rules() -> list[Rule]:
    """What every cohort applies, with or without a policy: a localizer is never processed (an
    exclusion, not a failure), and a series the release could not file is caught now."""
    return [not_localizer_rule(), patient_id_rule()]


@dataclass(frozen=True)
class CohortFilters:
    """Optional user restrictions. None means no restriction."""

    study_years: tuple[int, ...] | None = None
    kernels: tuple[str, ...] | None = None
    #: inclusive (min, max) slice thickness in mm
    thickness_mm: tuple[float, float] | None = None
    #: NLST codes (GE, SE, PH, TO) or DICOM Manufacturer prefixes, case-insensitive
    manufacturers: tuple[str, ...] | None = None
    patients: tuple[str, ...] | None = None
    #: keep a reproducible random sample of this many series (after the policy)
    sample: int | None = None
    seed: int = 0
    #: keep the first N series in patient/study/series order (after sampling)
    limit: int | None = None

    def __post_init__(self) -> None:
        for name in ("sample", "limit"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise DeepCACError(ErrorCode.E_COHORT_INVALID, f"{name} must be >= 0, got {value}")
        if self.thickness_mm is not None and self.thickness_mm[0] > self.thickness_mm[1]:
            raise DeepCACError(ErrorCode.E_COHORT_INVALID, f"thickness range {self.thickness_mm} is empty")

    def rules(self) -> list[Rule]:
        """The row filters as rules (sample and limit are applied after the policy)."""
        out: list[Rule] = []
        if self.patients is not None:
            wanted = set(self.patients)
            out.append(Rule("patients", f"PatientID in a list of {len(wanted)}", lambda d: d["PatientID"].isin(wanted)))
        if self.study_years is not None:
            years = set(self.study_years)
            out.append(Rule("study_year", f"study year in {sorted(years)}", lambda d: d["study_year"].isin(years)))
        if self.kernels is not None:
            kernels = {k.upper() for k in self.kernels}
            out.append(
                Rule(
                    "kernel", f"kernel in {sorted(kernels)}", lambda d: d["kernel"].fillna("").str.upper().isin(kernels)
                )
            )
        if self.thickness_mm is not None:
            lo, hi = self.thickness_mm
            out.append(
                Rule(
                    "thickness",
                    f"slice thickness in [{lo}, {hi}] mm",
                    lambda d: d["slice_thickness_mm"].between(lo, hi).fillna(False).astype(bool),
                )
            )
        if self.manufacturers is not None:
            wanted_m = tuple(m.upper() for m in self.manufacturers)

            def _manufacturer(d: pd.DataFrame) -> pd.Series:
                code = d["scanner_manufacturer"].fillna("").str.upper()
                name = d["Manufacturer"].fillna("").str.upper()
                return code.isin(wanted_m) | name.map(lambda n: n.startswith(wanted_m) if n else False).astype(bool)

            out.append(Rule("manufacturer", f"manufacturer in {list(wanted_m)}", _manufacturer))
        return out
