"""Stand-in result rows of the registered tables, for scale tests and the ``scale`` benchmark.

Every column of ``cac_series``, ``cac_lesions`` and ``measurements`` is filled from its
schema (a value of its type, inside its range, from its allowed set), so the rows pass the
writer's checks and weigh what real rows weigh. Lesion counts follow a plausible CAC
distribution: zero for about half the series (``P_ZERO``), otherwise geometric with mean
``MEAN_LESIONS``. The rows are a pure function of the series uid (byte-comparable runs).
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import pyarrow as pa

from deepcac2.schemas.base import TableSchema

P_ZERO = 0.5
MEAN_LESIONS = 4.0
MAX_LESIONS = 60
#: conventions per series (the real default run scores more; two keep the bench honest but small)
CONVENTIONS = ("deepcac", "literature")
QUANTITIES = (("112031", "Agatston score"), ("G-D705", "Volume"), ("112033", "Mass"))
KERNELS = ("B30f", "B31f", "B45f", "C", "D", "FC10", "LUNG", "STANDARD")
THICKNESS = (1.0, 1.25, 2.0, 2.5, 3.2, 5.0)


def _value(dtype: pa.DataType, name: str, rng: random.Random, low: float | None, high: float | None) -> Any:
    if pa.types.is_struct(dtype):
        return {f.name: _value(f.type, f.name, rng, None, None) for f in dtype}
    if pa.types.is_list(dtype):
        return []
    if pa.types.is_boolean(dtype):
        return rng.random() < 0.5
    if pa.types.is_integer(dtype):
        lo = int(low or 0)
        return rng.randint(lo, int(high) if high is not None else lo + 500)
    if pa.types.is_floating(dtype):
        lo = float(low or 0.0)
        return round(rng.uniform(lo, float(high) if high is not None else lo + 400.0), 6)
    return f"{name}-{rng.randrange(10**9):09d}"


def fill(schema: TableSchema, rng: random.Random, **given: Any) -> dict[str, Any]:
    """One row of ``schema``: ``given`` values, every other column drawn from its type, range and allowed set."""
    row: dict[str, Any] = {}
    for c in schema.columns:
        if c.name in given:
            row[c.name] = given[c.name]
        elif c.allowed:
            row[c.name] = rng.choice(c.allowed)
        else:
            row[c.name] = _value(c.type, c.name, rng, c.minimum, c.maximum)
    return row


def lesion_count(rng: random.Random) -> int:
    if rng.random() < P_ZERO:
        return 0
    n = 1
    while n < MAX_LESIONS and rng.random() > 1.0 / MEAN_LESIONS:
        n += 1
    return n


def series_rows(series_uid: str, patient_id: str, study_year: int = 0) -> dict[str, list[dict[str, Any]]]:
    """The rows one done series adds to each table."""
    from deepcac2.schemas.registry import TABLES

    rng = random.Random(hashlib.sha256(series_uid.encode()).digest())
    n = lesion_count(rng)
    sr_uid = f"2.25.{int(hashlib.sha256(('sr' + series_uid).encode()).hexdigest()[:30], 16)}"
    seg_uid = f"2.25.{int(hashlib.sha256(('seg' + series_uid).encode()).hexdigest()[:30], 16)}"
    series = fill(
        TABLES["cac_series"],
        rng,
        SeriesInstanceUID=series_uid,
        StudyInstanceUID=f"{series_uid}.0",
        PatientID=patient_id,
        study_year=study_year,
        kernel=rng.choice(KERNELS),
        slice_thickness_mm=rng.choice(THICKNESS),
        qa_flags=[],
        loader_notes=[],
        sr_sop_instance_uid=sr_uid,
        seg_sop_instance_uid=seg_uid,
        **{f"lesion_count_{c}": n for c in CONVENTIONS},
    )
    lesions, measurements = [], []
    for convention in CONVENTIONS:
        for lesion in range(1, n + 1):
            lesions.append(
                fill(TABLES["cac_lesions"], rng, SeriesInstanceUID=series_uid, convention=convention, lesion_id=lesion)
            )
            for code, meaning in QUANTITIES:
                quantity = {"CodeValue": code, "CodingSchemeDesignator": "DCM", "CodeMeaning": meaning}
                measurements.append(
                    fill(
                        TABLES["measurements"],
                        rng,
                        SOPInstanceUID=sr_uid,
                        SeriesInstanceUID=series_uid,
                        PatientID=patient_id,
                        measurementGroup_number=len(measurements) // len(QUANTITIES),
                        segmentationInstanceUID=seg_uid,
                        Quantity=quantity,
                        convention=convention,
                    )
                )
    return {"cac_series": [series], "cac_lesions": lesions, "measurements": measurements}
