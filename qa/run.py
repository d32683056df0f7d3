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
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pydicom
from tqdm import tqdm

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.location import COHORT_FILE, QA_CHECKS, QA_DIR, TABLES_DIR
from deepcac2.pipeline.conventions import CONVENTIONS, DEFAULT_CONVENTION
from deepcac2.pipeline.process import REVIEW_PICTURE
from deepcac2.pipeline.risk_categories import SCHEME_NAMES
from deepcac2.qa import dicom_checks, failure_checks, integrity, on_disk, plausibility, series_checks, stats
from deepcac2.qa.report import _failures_html, _flagged_html, distribution_figure_of, write_report_parts
from deepcac2.qa.result import CheckResult, Severity
from deepcac2.qa.review import write_review_sheet
from deepcac2.qa.series_scan import BATCH_ROWS, DUCKDB_MEMORY, SeriesTable
from deepcac2.qa.sink import LISTS, ResultSink, _result_of
from deepcac2.qa.table_checks import check_table_file
from deepcac2.schemas.registry import TABLES

DEFAULT_SAMPLE = 500


@dataclass(frozen=True)
class QAOutcome:
    """Where QA wrote its results, and their counts (the results themselves are in ``checks_path``)."""

    checks_path: Path
    report_path: Path
    n_results: int
    #: blocking failures and (non-blocking) failed checks, by check
    failed: Counter[str]
    warned: Counter[str]

    @property
    def results(self) -> list[CheckResult]:
        """Every result, read back from ``checks.parquet`` (sorted by check, subject, message)."""
        return [_result_of(row) for row in pq.read_table(self.checks_path).to_pylist()]

    @property
    def blocking_failures(self) -> list[CheckResult]:
        table = pq.read_table(self.checks_path, filters=[("blocking", "=", True), ("passed", "=", False)])
        return [_result_of(row) for row in table.to_pylist()]


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
        out += check_table_file(path, schema, batch_rows=BATCH_ROWS, memory=DUCKDB_MEMORY)  # never the whole table
    return out


def gather_pictures(run_dir: Path, series_uids: list[str], images_dir: Path) -> list[CheckResult]:
    """Link each series' review picture (written by the pipeline beside its SEG) into ``images/<uid>.png``.

    The review sheet and the release dashboard point there. Hard links: no copies of
    127k pictures; a copy only where the file system refuses links.
    """
    found = {p.parent.name: str(p) for p in run_dir.rglob(REVIEW_PICTURE) if images_dir not in p.parents}
    return list(link_pictures(((uid, found.get(uid)) for uid in sorted(series_uids)), images_dir))


def link_pictures(pictures: Iterable[tuple[str, str | None]], images_dir: Path) -> Iterator[CheckResult]:
    """:func:`gather_pictures` of (series UID, its picture or None) pairs, a result per pair as it comes."""
    images_dir.mkdir(parents=True, exist_ok=True)
    for uid, src in pictures:
        if src is not None:
            dst = images_dir / f"{uid}.png"
            dst.unlink(missing_ok=True)
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)
        yield CheckResult("review.picture", uid, src is not None, Severity.WARNING, "" if src else "no picture")


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
    series = SeriesTable(tables / "cac_series.parquet")  # read a batch at a time, never whole (issue 23)
    chosen = set(on_disk.sample_uids(series, sample, seed))
    with ResultSink() as results, tempfile.TemporaryDirectory(prefix="deepcac2-qa-walk-") as scratch:
        # first: what QA reads is what it records; every file read once (SHA-256, SOP Class, source series)
        walked = on_disk.walk_to_disk(run_dir, chosen, results, Path(scratch))
        summary = _row_checks(results, run_dir, series, cohort, convention, walked, chosen, sample, seed)
        if reference is not None:
            ref = SeriesTable(Path(reference) / TABLES_DIR / "cac_series.parquet")
            if not len(ref):
                raise DeepCACError(ErrorCode.E_QA_INPUT, f"reference {reference} has no tables/cac_series.parquet")
            columns = stats.columns_read(convention)
            results += stats.drift_of(
                stats.summarize(series.batches(columns), convention),
                stats.summarize(ref.batches(columns), convention),
                convention,
            )
        out_dir.mkdir(parents=True, exist_ok=True)
        images = out_dir / "images"
        results += link_pictures(on_disk.pictures_in_order(run_dir, series, images, Path(scratch)), images)
        _release_unused()
        checks_path = results.write_checks(out_dir / QA_CHECKS)
        _release_unused()
        report_path = _write_report(results, series, summary, out_dir / "report.html", convention)
        review_uids = on_disk.sample_uids(series, review_sample, seed)
        write_review_sheet(
            series.rows_where_uid_in(set(review_uids), [*REVIEW_COLUMNS, *_scored(convention)]),
            out_dir / "review_sheet.csv", n=review_sample, seed=seed,
            convention=convention, chosen=review_uids,
        )  # fmt: skip
        return QAOutcome(checks_path, report_path, results.count, results.failed, results.warned)


def _row_checks(
    results: ResultSink,
    run_dir: Path,
    series: SeriesTable,
    cohort: str | Path | None,
    convention: str,
    walked: on_disk.WalkedOnDisk,
    chosen: set[str],
    sample: int,
    seed: int,
) -> stats.Summary:
    """Every check but the input bindings, the drift and the pictures, in the report's order."""
    tables = run_dir / TABLES_DIR
    failures = _read_rows(tables / "failures.parquet")
    results += _table_results(tables)
    _release_unused()
    for rows in series.by_series(CATEGORY_COLUMNS):
        results += series_checks.check_categories(rows)
    for rows in series.by_series(FLAG_COLUMNS):
        results += series_checks.check_flags(rows)
    results += failure_checks.check_failures(failures)
    for rows in series.by_study([*STUDY_COLUMNS, *_scored(convention)]):
        results += plausibility.category_disagreement(rows, convention)
    for rows in series.by_series(HEART_COLUMNS):
        results += plausibility.heart_volume(rows)
    for rows in series.by_study([*STUDY_COLUMNS, *_scored(convention)]):
        results += plausibility.sharp_kernel_excess(rows, convention)
    _release_unused()

    cohort_path = _find_cohort(run_dir, cohort)
    locations: dict[str, str] = {}
    if cohort_path is not None:
        locations = on_disk.locations_of(cohort_path, chosen)
        failed = sorted({r["SeriesInstanceUID"] for r in failures})
        results += on_disk.check_coverage(cohort_path, series, failed)
    else:
        results.append(
            CheckResult(
                "coverage.cohort_known", "cohort", False, Severity.WARNING, "no cohort given; coverage unchecked"
            )
        )

    # per-object checks on every series, or a seeded sample of them
    sampled = walked.objects  # the walk kept the sampled series' objects only
    if len(series) > sample:
        results.append(
            CheckResult(
                "qa.sample", "cac_series", True, Severity.INFO,
                f"per-object checks on a seeded sample of {sample} of {len(series)} series (seed {seed})", float(sample),
            )
        )  # fmt: skip
    results += dicom_checks.check_files(sampled)
    results += on_disk.check_unreferenced(series, walked)
    results += dicom_checks.check_conformance(sampled.all_paths(), run_dir)
    sampled_rows = series.rows_where_uid_in(chosen, integrity.row_columns(series.names))  # not every column
    results += integrity.check_references(sampled, sampled_rows, locations)
    for row in tqdm(sampled_rows, desc="deepcac2 qa", unit="series", disable=None):
        results += _object_checks(row, sampled)

    summary = stats.summarize(series.batches(stats.columns_read(convention)), convention)
    results += stats.distributions_of(summary, convention)
    results += stats.outliers_of(summary, series.batches(stats.columns_read(convention)), convention)
    return summary  # the report's figure draws the same scores


def _write_report(
    results: ResultSink, series: SeriesTable, summary: stats.Summary, path: Path, convention: str
) -> Path:
    """The report of the results in ``results``, its lists read back a batch at a time."""
    return write_report_parts(
        path,
        lists={name: (lambda name=name: results.listed(name)) for name in LISTS},
        counts=dict(results.listed_count),
        passed=results.passed,
        n_series=len(series),
        rows_of=lambda subjects: _link_rows(series, subjects),
        convention=convention,
        failures_html=_failures_html(_read_rows(series.path.parent / "failures.parquet")),
        flagged_html=_flagged_html(row for rows in series.batches(LINK_COLUMNS) for row in rows),
        figure=lambda: distribution_figure_of(summary.groups, convention),
    )


#: the columns each pass over cac_series reads
LINK_COLUMNS = ("SeriesInstanceUID", "StudyInstanceUID", "seg_series_uid", "sr_series_uid", "PatientID", "qa_flags")
CATEGORY_COLUMNS = [
    *(f"agatston_{c}" for c in CONVENTIONS),
    *(f"risk_{s}_{c}" for c in CONVENTIONS for s in SCHEME_NAMES),
]
FLAG_COLUMNS = ("qa_flags", "cac_in_aorta_voxels")
REVIEW_COLUMNS = ["SeriesInstanceUID", "PatientID", "StudyInstanceUID", *(f"agatston_{c}" for c in CONVENTIONS),
                  *(f"risk_deepcac_{c}" for c in CONVENTIONS)]  # fmt: skip
HEART_COLUMNS = ("heart_volume_ml", "anatomy_provider")
STUDY_COLUMNS = ["kernel", *(f"agatston_{c}" for c in CONVENTIONS), *(f"risk_deepcac_{c}" for c in CONVENTIONS)]


def _release_unused() -> None:
    """Arrow's allocator gives back what a phase freed: otherwise each phase's peak stays in RSS under the next."""
    pa.default_memory_pool().release_unused()


def _scored(convention: str) -> list[str]:
    """The score and category columns of ``convention`` (one not in ``CONVENTIONS`` too)."""
    return [f"agatston_{convention}", f"risk_deepcac_{convention}"]


def _link_rows(series: SeriesTable, subjects: set[str]) -> dict[str, dict[str, Any]]:
    """The link columns of the rows whose series UID is in ``subjects`` (the last row of a repeated UID)."""
    rows = series.rows_where_uid_in(subjects, LINK_COLUMNS)
    return {str(r.get("SeriesInstanceUID")): r for r in rows}
