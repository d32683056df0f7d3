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


def _uid(what: str, series_uid: str) -> str:
    return f"2.25.{int(hashlib.sha256((what + series_uid).encode()).hexdigest()[:30], 16)}"


def object_uids(series_uid: str) -> dict[str, str]:
    """The SOP and series UIDs of a series' stand-in SEG and SR (the rows name them, ``standin_stages`` writes them)."""
    return {k: _uid(k, series_uid) for k in ("seg", "sr", "seg_series", "sr_series")}


#: columns that hold one value per run (model, versions, parameters), not one per series
PER_RUN = {
    "collection_id": "nlst",
    "anatomy_provider": "standin",
    "anatomy_version": "0",
    "model_name": "standin",
    "model_version": "0",
    "model_weights_sha256": hashlib.sha256(b"stand-in weights").hexdigest(),
    "model_id": "standin-0",
    "model_description": "stand-in rows of the scale benchmark",
    "toolkit_version": "0.0.0",
    "conventions_json": '{"deepcac": {"threshold_hu": 130}, "literature": {"threshold_hu": 130}}',
    "candidate_rules_json": "{}",
}


def _consistent_scores(series: dict[str, Any], n: int) -> None:
    """Scores only for the run's conventions (0 without lesions), each risk category the band of its score."""
    from deepcac2.pipeline.conventions import CONVENTIONS as ALL
    from deepcac2.pipeline.risk_categories import SCHEME_NAMES, category

    for conv in ALL:
        used = conv in CONVENTIONS
        for quantity in ("agatston", "volume_mm3", "mass_mg"):
            if f"{quantity}_{conv}" in series:
                series[f"{quantity}_{conv}"] = (series[f"{quantity}_{conv}"] if n else 0.0) if used else None
        if not used and f"lesion_count_{conv}" in series:
            series[f"lesion_count_{conv}"] = None
        score = series.get(f"agatston_{conv}")
        for scheme in SCHEME_NAMES:
            if f"risk_{scheme}_{conv}" in series:
                series[f"risk_{scheme}_{conv}"] = None if score is None else category(scheme, score)


def series_rows(series_uid: str, patient_id: str, study_year: int = 0) -> dict[str, list[dict[str, Any]]]:
    """The rows one done series adds to each table; the objects they name are those of ``object_uids``."""
    from deepcac2.schemas.registry import TABLES

    rng = random.Random(hashlib.sha256(series_uid.encode()).digest())
    n = lesion_count(rng)
    uids = object_uids(series_uid)
    sr_uid, seg_uid = uids["sr"], uids["seg"]
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
        **PER_RUN,
        loader_notes=[],
        sr_sop_instance_uid=sr_uid,
        seg_sop_instance_uid=seg_uid,
        sr_series_uid=uids["sr_series"],
        seg_series_uid=uids["seg_series"],
        **{f"{kind}_seg_{what}": None for kind in ("vessel", "heart") for what in ("series_uid", "sop_instance_uid")},
        **{f"lesion_count_{c}": n for c in CONVENTIONS},
    )
    _consistent_scores(series, n)
    lesions, measurements = [], []
    for convention in CONVENTIONS:
        for lesion in range(1, n + 1):
            lesions.append(
                fill(
                    TABLES["cac_lesions"],
                    rng,
                    SeriesInstanceUID=series_uid,
                    convention=convention,
                    lesion_id=lesion,
                    seg_sop_instance_uid=seg_uid,
                )
            )
            for code, meaning in QUANTITIES:
                quantity = {"CodeValue": code, "CodingSchemeDesignator": "DCM", "CodeMeaning": meaning}
                measurements.append(
                    fill(
                        TABLES["measurements"],
                        rng,
                        SOPInstanceUID=sr_uid,
                        SeriesInstanceUID=uids["sr_series"],
                        sourceSegmentedSeriesUID=series_uid,
                        segmentationSeriesUID=uids["seg_series"],
                        PatientID=patient_id,
                        measurementGroup_number=len(measurements) // len(QUANTITIES),
                        segmentationInstanceUID=seg_uid,
                        Quantity=quantity,
                        convention=convention,
                    )
                )
    return {"cac_series": [series], "cac_lesions": lesions, "measurements": measurements}
