"""A small synthetic RUN_DIR for release tests, shaped like ``deepcac2 run`` output.

Tables follow the registered schemas (``deepcac2.schemas.registry``); DICOM objects are
minimal Part 10 files with the identifiers the release layout needs; QA results follow
``deepcac2.qa.result.CHECKS_SCHEMA``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from deepcac2.pipeline.conventions import CONVENTIONS
from deepcac2.pipeline.convert.primary import mark_primary
from deepcac2.qa.report import write_report
from deepcac2.qa.result import CheckResult, Severity, results_table
from deepcac2.qa.walk import walk
from deepcac2.schemas.registry import get_table

SEG_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.34"
UID_ROOT = "1.2.826.0.1.3680043.10.1234."


def uid(*parts: object) -> str:
    """A deterministic UID (so two builds of the same run are byte-identical)."""
    return generate_uid(prefix=UID_ROOT, entropy_srcs=[str(p) for p in parts])


def conform(rows: list[dict[str, object]], table: str) -> pa.Table:
    """Rows as a table of the registered schema; absent columns are null."""
    schema = get_table(table).arrow
    return pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows], schema=schema)


def write_dicom(path: Path, patient: str, study: str, series: str, sop: str, modality: str) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SEG_CLASS if modality == "SEG" else SR_CLASS
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = sop
    ds.PatientID = patient
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.Modality = modality
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def random_scores(n: int, seed: int = 0) -> list[float]:
    """30 % zeros, the rest log-uniform over 1..2000: every risk band gets rows."""
    rng = np.random.default_rng(seed)
    return [0.0 if rng.random() < 0.3 else float(np.round(10 ** rng.uniform(0, 3.3), 1)) for _ in range(n)]


def series_rows(
    n_patients: int, scores: list[float] | None = None, series_uids: list[str] | None = None, model: str = "1.0"
) -> list[dict[str, object]]:
    """Three study years per patient, one CT series each; only ``agatston_deepcac`` and its
    categories are filled (the release derives nothing else from other conventions)."""
    scores = scores or random_scores(3 * n_patients)
    params = json.dumps({"deepcac": CONVENTIONS["deepcac"].params()}, sort_keys=True)
    rows = []
    for p in range(n_patients):
        for year in range(3):
            i = len(rows)
            rows.append(
                {
                    "SeriesInstanceUID": series_uids[i] if series_uids and i < len(series_uids) else uid("ct", p, year),
                    "StudyInstanceUID": uid("study", p, year),
                    "PatientID": f"{100000 + p}",
                    "collection_id": "nlst",
                    "study_year": year,
                    "agatston_deepcac": scores[i],
                    "volume_mm3_deepcac": scores[i] * 0.8,
                    "lesion_count_deepcac": int(scores[i] > 0) + int(scores[i] > 100),
                    "qa_flags": ["mass_unknown"] if i % 4 else ["cac_outside_heart", "mass_unknown"],
                    "seg_series_uid": uid(
                        "out", series_uids[i] if series_uids and i < len(series_uids) else uid("ct", p, year), "SEG"
                    ),
                    "sr_series_uid": uid(
                        "out", series_uids[i] if series_uids and i < len(series_uids) else uid("ct", p, year), "SR"
                    ),
                    "loader_notes": [],
                    "model_name": "deepcac2-unet",
                    "model_version": model,
                    "model_weights_sha256": "ab" * 32,
                    "model_id": f"deepcac2-unet:{model}:abababababab",
                    "toolkit_version": "0.1.0",
                    "conventions_json": params,
                }
            )
    return rows


def make_run(
    run_dir: Path,
    n_patients: int = 6,
    *,
    qa: bool = True,
    blocking_failure: bool = False,
    images: bool = True,
    rows: list[dict[str, object]] | None = None,
) -> Path:
    """Write a RUN_DIR like the orchestrator's: tables/, dicom/ (flat here, to exercise the
    re-layout), qa/checks.parquet, qa/report.html and qa/images/<series>.png."""
    rows = series_rows(n_patients) if rows is None else rows
    for r in rows:  # the row names its objects, as the converter's rows do (the release ships only those)
        r.setdefault("seg_sop_instance_uid", uid("sop", r["SeriesInstanceUID"], "SEG"))
        r.setdefault("sr_sop_instance_uid", uid("sop", r["SeriesInstanceUID"], "SR"))
    tables = run_dir / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    pq.write_table(conform(mark_primary(rows), "cac_series"), tables / "cac_series.parquet")
    lesions = [
        {
            "SeriesInstanceUID": r["SeriesInstanceUID"],
            "convention": "deepcac",
            "lesion_id": 1,
            "first_slice": 3,
            "last_slice": 4,
            "agatston": r["agatston_deepcac"],
        }
        for r in rows
        if r["agatston_deepcac"]
    ]
    pq.write_table(conform(lesions, "cac_lesions"), tables / "cac_lesions.parquet")
    failure = {
        "SeriesInstanceUID": uid("failed", 1),
        "stage": "fetch_load",
        "error_code": "E_GEOMETRY_GAP",
        "message": "gap of 7.5 mm",
        "attempts": 1,
        "transient": False,
        "toolkit_version": "0.1.0",
    }
    pq.write_table(conform([failure], "failures"), tables / "failures.parquet")
    run = {
        "run_id": "r1",
        "finished_at": pd.Timestamp("2026-03-04T05:06:07Z").to_pydatetime(),
        "toolkit_version": "0.1.0",
        "config_json": "{}",
    }
    pq.write_table(conform([run], "runs"), tables / "runs.parquet")
    for r in rows:
        for modality in ("SEG", "SR"):
            sop = uid("sop", r["SeriesInstanceUID"], modality)
            write_dicom(
                run_dir / "dicom" / f"{sop}.dcm",
                str(r["PatientID"]),
                str(r["StudyInstanceUID"]),
                uid("out", r["SeriesInstanceUID"], modality),
                sop,
                modality,
            )
    if qa:
        results = write_checks(run_dir, blocking_failure, rows[0]["SeriesInstanceUID"])
        write_report(results, mark_primary(rows), run_dir / "qa" / "report.html", convention="deepcac")
    if images:
        write_images(run_dir / "qa" / "images", [str(r["SeriesInstanceUID"]) for r in rows])
    return run_dir


def write_checks(run_dir: Path, blocking_failure: bool, series_uid: str = "1.2.3") -> list[CheckResult]:
    results = [
        CheckResult("table.cac_series.schema", "cac_series", True, Severity.BLOCKING, "matches the schema"),
        CheckResult("seg.heart_components", series_uid, False, Severity.WARNING, "two components", 2.0),
    ]
    if blocking_failure:
        results.append(CheckResult("dicom.dciodvfy", "dicom/x.dcm", False, Severity.BLOCKING, "Error - missing"))
    (run_dir / "qa").mkdir(parents=True, exist_ok=True)
    bound = walk(run_dir).inputs  # as `deepcac2 qa` does: the SHA-256 of every table and object checked
    pq.write_table(results_table(results + bound), run_dir / "qa" / "checks.parquet")
    return results


def write_images(folder: Path, series_uids: list[str]) -> None:
    """Small overlay-like PNGs (a grey disc with a red spot), one per series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:64, :64]
    img = np.where((yy - 32) ** 2 + (xx - 32) ** 2 < 600, 0.6, 0.1)
    rgb = np.dstack([img, img, img])
    for k, s in enumerate(series_uids):
        spot = (yy - 20 - k % 20) ** 2 + (xx - 36) ** 2 < 9
        rgb2 = rgb.copy()
        rgb2[spot] = (1.0, 0.1, 0.1)
        plt.imsave(folder / f"{s}.png", rgb2, metadata={"Software": None})
