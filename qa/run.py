"""``run_qa``: every check on a run (or release) folder; writes ``qa/checks.parquet`` and ``qa/report.html``.

``checks.parquet`` also records the SHA-256 of every table and object of the folder
(``qa.binding``), so a release is never built on QA of other bytes.

Table checks always cover every row. The per-object checks (dciodvfy, highdicom
parse, dcmqi round trip, SR read-back, references, plausibility) cover every series
up to ``sample`` series, and a stated, seeded sample of that size beyond it.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pydicom
from tqdm import tqdm

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.location import COHORT_FILE, QA_CHECKS, QA_DIR, TABLES_DIR
from deepcac2.pipeline.conventions import DEFAULT_CONVENTION
from deepcac2.pipeline.process import REVIEW_PICTURE
from deepcac2.qa import dicom_checks, failure_checks, integrity, plausibility, series_checks, stats
from deepcac2.qa.report import write_report
from deepcac2.qa.result import CheckResult, Severity, write_results
from deepcac2.qa.review import sample_series, write_review_sheet
from deepcac2.qa.row_views import TableRows
from deepcac2.qa.table_checks import check_table_file
from deepcac2.qa.walk import walk
from deepcac2.schemas.registry import TABLES

DEFAULT_SAMPLE = 500


@dataclass(frozen=True)
class QAOutcome:
    results: list[CheckResult]
    checks_path: Path
    report_path: Path

    @property
    def blocking_failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.blocking_failure]


def _read_rows(path: Path) -> list[dict[str, Any]]:
    return pq.read_table(path).to_pylist() if path.exists() else []


def _find_cohort(run_dir: Path, cohort: str | Path | None) -> Path | None:
    if cohort is not None:
        return Path(cohort)
    candidate = run_dir / COHORT_FILE
    return candidate if candidate.exists() else None


def _table_results(tables_dir: Path) -> list[CheckResult]:
    out = []
    for name, schema in sorted(TABLES.items()):
        path = tables_dir / f"{name}.parquet"
        if name == "cohort":
            continue  # an input, checked by the cohort stage
        if not path.exists():
            required = name in ("cac_series", "failures")
            out.append(CheckResult(f"table.{name}.present", name, not required, Severity.BLOCKING, f"{path} missing"))
            continue
        out += check_table_file(path, schema)  # a batch at a time: never the whole table
    return out


def gather_pictures(run_dir: Path, series_uids: list[str], images_dir: Path) -> list[CheckResult]:
    """Link each series' review picture (written by the pipeline beside its SEG) into ``images/<uid>.png``.

    The review sheet and the release dashboard point there. Hard links: no copies of
    127k pictures; a copy only where the file system refuses links.
    """
    found = {p.parent.name: p for p in run_dir.rglob(REVIEW_PICTURE) if images_dir not in p.parents}
    images_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for uid in sorted(series_uids):
        src = found.get(uid)
        if src is not None:
            dst = images_dir / f"{uid}.png"
            dst.unlink(missing_ok=True)
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)
        out.append(CheckResult("review.picture", uid, src is not None, Severity.WARNING, "" if src else "no picture"))
    return out


def _object_checks(row: dict, objects: dicom_checks.RunObjects) -> list[CheckResult]:
    """Each SEG of a series (parse, dcmqi round trip), plausibility across them, and its SR against the row."""
    uid = row["SeriesInstanceUID"]
    out: list[CheckResult] = []
    segments: dict[str, set[int]] = {}
    masks: dict[str, dict[int, object]] = {}
    voxel_ml = 0.0
    seg_path = objects.segs.get(uid)
    order = dicom_checks.source_instances(seg_path) if seg_path is not None else []
    for kind, path in [("cac", seg_path), *sorted(objects.extra_segs.get(uid, {}).items())]:
        if path is None:
            continue
        results, read = dicom_checks.check_seg(uid, path, order)
        out += [dataclasses.replace(r, message=f"{kind} SEG: {r.message}") for r in results]
        sop = str(pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]).SOPInstanceUID)
        segments[sop], masks[kind], voxel_ml = read.numbers, read.masks, read.voxel_ml or voxel_ml
    if seg_path is not None:
        heart = masks.get("heart", {}).get(dicom_checks.HEART_SEGMENT) if "heart" in masks else None
        out += dicom_checks.plausibility(uid, heart, masks.get("cac", {}).get(dicom_checks.CAC_SEGMENT), voxel_ml)
    sr_path = objects.srs.get(uid)
    if sr_path is not None:
        sr_results = dicom_checks.check_sr_parse(uid, sr_path)
        out += sr_results
        if all(r.passed for r in sr_results):
            out += integrity.check_sr_matches_table(uid, sr_path, row, segments)
            out += integrity.check_idc_views(uid, sr_path)
    return out


def run_qa(
    run_dir: str | Path,
    *,
    cohort: str | Path | None = None,
    reference: str | Path | None = None,
    sample: int = DEFAULT_SAMPLE,
    seed: int = 0,
    review_sample: int = 20,
    convention: str = DEFAULT_CONVENTION,
    out_dir: str | Path | None = None,
) -> QAOutcome:
    run_dir = Path(run_dir)
    tables = run_dir / TABLES_DIR
    if not tables.is_dir():
        raise DeepCACError(ErrorCode.E_QA_INPUT, f"{run_dir} has no tables/ folder: is it a run or release folder?")
    out_dir = Path(out_dir) if out_dir else run_dir / QA_DIR
    # first: what QA reads is what it records; every file read once (SHA-256, SOP Class, source series)
    walked = walk(run_dir)
    inputs = walked.inputs
    rows = TableRows.read(tables / "cac_series.parquet")  # a view per row, not a dict of 100+ columns
    failures = _read_rows(tables / "failures.parquet")
    results = _table_results(tables)
    results += series_checks.check_categories(rows)
    results += series_checks.check_flags(rows)
    results += failure_checks.check_failures(failures)
    results += plausibility.check_plausibility(rows, convention)

    cohort_path = _find_cohort(run_dir, cohort)
    locations: dict[str, str] = {}
    if cohort_path is not None:
        cohort_rows = TableRows.read(cohort_path, columns=("SeriesInstanceUID", "location"), missing_ok=False)
        cohort_uids = cohort_rows.column("SeriesInstanceUID")
        locations = {r["SeriesInstanceUID"]: r["location"] for r in cohort_rows if r.get("location")}
        failed = sorted({r["SeriesInstanceUID"] for r in failures})
        results += series_checks.check_coverage(cohort_uids, [r["SeriesInstanceUID"] for r in rows], failed)
    else:
        results.append(
            CheckResult(
                "coverage.cohort_known", "cohort", False, Severity.WARNING, "no cohort given; coverage unchecked"
            )
        )

    # per-object checks on every series, or a seeded sample of them
    objects = walked.objects
    chosen = set(sample_series([r["SeriesInstanceUID"] for r in rows], sample, seed))
    if len(rows) > sample:
        results.append(
            CheckResult(
                "qa.sample", "cac_series", True, Severity.INFO,
                f"per-object checks on a seeded sample of {sample} of {len(rows)} series (seed {seed})", float(sample),
            )
        )  # fmt: skip
    sampled = objects.subset(chosen)
    results += dicom_checks.check_files(objects)
    results += integrity.check_unreferenced(rows, walked.sop_uids)
    results += dicom_checks.check_conformance(sampled.all_paths(), run_dir)
    sampled_rows = [r for r in rows if r["SeriesInstanceUID"] in chosen]
    results += integrity.check_references(sampled, sampled_rows, locations)
    for row in tqdm(sampled_rows, desc="deepcac2 qa", unit="series", disable=None):
        results += _object_checks(row, sampled)

    results += stats.distributions(rows, convention)
    results += stats.outliers(rows, convention)
    if reference is not None:
        ref_rows = TableRows.read(Path(reference) / TABLES_DIR / "cac_series.parquet")
        if not ref_rows:
            raise DeepCACError(ErrorCode.E_QA_INPUT, f"reference {reference} has no tables/cac_series.parquet")
        results += stats.drift(rows, ref_rows, convention)

    out_dir.mkdir(parents=True, exist_ok=True)
    results += gather_pictures(run_dir, [r["SeriesInstanceUID"] for r in rows], out_dir / "images")
    checks_path = out_dir / QA_CHECKS
    write_results(results + inputs, checks_path)
    report_path = write_report(results, rows, out_dir / "report.html", convention=convention, failures=failures)
    write_review_sheet(rows, out_dir / "review_sheet.csv", n=review_sample, seed=seed, convention=convention)
    return QAOutcome(results + inputs, checks_path, report_path)
