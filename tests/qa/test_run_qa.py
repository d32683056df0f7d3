"""QA on a real pipeline run: passes on the good output, and each deliberately broken output fails.

The run is made once per session by the real chain (synth -> cohort -> ``deepcac2 run``);
each test breaks a copy of it in one way and checks that QA blocks on exactly that.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pydicom
import pytest

from deepcac2.qa.run import run_qa

pytestmark = pytest.mark.slow
DEEPCAC2 = [sys.executable, "-m", "deepcac2"]


@pytest.fixture(scope="session")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two small synthetic chest series through the real pipeline: (run folder, cohort file)."""
    from deepcac2.pipeline.cohort.select import index_local
    from deepcac2.pipeline.cohort.table import write_cohort as write_cohort_table
    from deepcac2.pipeline.synth.named_cohorts import write_cohort

    root = tmp_path_factory.mktemp("qa-run")
    for seed in (1, 2):
        write_cohort("chest", root / "dicom" / f"s{seed}", seed=seed, slices=40, rows=256, plaques=2)
    table, _ = index_local(root / "dicom")
    cohort = write_cohort_table(table, root / "cohort.parquet")
    run = root / "run"
    subprocess.run(
        [
            *DEEPCAC2,
            "run",
            "--cohort",
            str(cohort),
            "--out",
            str(run),
            "--workers",
            "1",
            "--threads",
            "1",
            "--no-progress",
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    assert pq.read_table(run / "tables" / "cac_series.parquet").num_rows == 2
    return run, cohort


@pytest.fixture
def run_copy(good_run: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    run, cohort = good_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("qa"))
    return copy, cohort


def _blocking(run: Path, cohort: Path) -> dict[str, set[str]]:
    outcome = run_qa(run, cohort=cohort)
    failed: dict[str, set[str]] = {}
    for r in outcome.blocking_failures:
        failed.setdefault(r.check, set()).add(r.subject)
    return failed


def _first_series(run: Path) -> str:
    return sorted(pq.read_table(run / "tables" / "cac_series.parquet").column("SeriesInstanceUID").to_pylist())[0]


def test_good_run_passes_every_blocking_check(good_run: tuple[Path, Path]) -> None:
    run, cohort = good_run
    assert (run / "cohort.parquet").read_bytes() == cohort.read_bytes()  # the run keeps its cohort
    outcome = run_qa(run, out_dir=run.parent / "qa-good")  # so QA finds it without being told
    assert outcome.blocking_failures == []
    passed = {r.check for r in outcome.results if r.passed}
    for check in (
        "dicom.dciodvfy",
        "dicom.seg.highdicom_parse",
        "dicom.sr.highdicom_parse",
        "dicom.seg.dcmqi_round_trip",
        "refs.identity",
        "refs.source_instances",
        "refs.frame_of_reference",
        "sr.matches_table",
        "sr.references_seg_segment",
        "table.cac_series.categories",
        "coverage.missing",
        "review.picture",
        "dicom.all_referenced",
    ):
        assert check in passed, f"{check} did not run or did not pass"
    assert outcome.checks_path.exists() and outcome.report_path.exists()
    uids = pq.read_table(run / "tables" / "cac_series.parquet").column("SeriesInstanceUID").to_pylist()
    assert sorted(p.stem for p in (run.parent / "qa-good" / "images").glob("*.png")) == sorted(uids)
    html = outcome.report_path.read_text()
    assert "no blocking failures" in html and "data:image/png;base64" in html


def test_corrupt_seg_is_blocked(run_copy: tuple[Path, Path]) -> None:
    run, cohort = run_copy
    uid = _first_series(run)
    seg = next(p for p in (run / "dicom").rglob("seg.dcm") if p.parent.name == uid)
    data = seg.read_bytes()
    seg.write_bytes(data[: len(data) // 2])  # truncated mid pixel data
    failed = _blocking(run, cohort)
    assert any(uid in subjects or any(uid in s for s in subjects) for subjects in failed.values()), failed
    assert {"dicom.seg.highdicom_parse", "dicom.dciodvfy"} & set(failed)


def test_seg_referencing_the_wrong_series_is_blocked(run_copy: tuple[Path, Path]) -> None:
    run, cohort = run_copy
    uid = _first_series(run)
    seg_path = next(p for p in (run / "dicom").rglob("seg.dcm") if p.parent.name == uid)
    ds = pydicom.dcmread(seg_path)
    ds.ReferencedSeriesSequence[0].SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.save_as(seg_path)
    failed = _blocking(run, cohort)
    assert uid in failed.get("refs.objects_present", set()) | failed.get("refs.identity", set()), failed


def test_row_missing_from_cac_series_is_blocked(run_copy: tuple[Path, Path]) -> None:
    run, cohort = run_copy
    path = run / "tables" / "cac_series.parquet"
    table = pq.read_table(path)
    pq.write_table(table.slice(1), path)
    failed = _blocking(run, cohort)
    assert "cohort" in failed.get("coverage.missing", set()), failed


def test_score_that_disagrees_with_its_category_is_blocked(run_copy: tuple[Path, Path]) -> None:
    run, cohort = run_copy
    path = run / "tables" / "cac_series.parquet"
    table = pq.read_table(path)
    uid = table.column("SeriesInstanceUID")[0].as_py()
    column = table.column("risk_deepcac_deepcac")
    wrong = ["high" if v != "high" else "very low" for v in column.to_pylist()[:1]] + column.to_pylist()[1:]
    table = table.set_column(
        table.schema.get_field_index("risk_deepcac_deepcac"),
        table.schema.field("risk_deepcac_deepcac"),
        pc.cast(wrong, column.type),
    )
    pq.write_table(table, path)
    failed = _blocking(run, cohort)
    assert uid in failed.get("table.cac_series.categories", set()), failed


def _set_numeric(items, code: str, value: str) -> int:
    """Set every NUM item with concept ``code`` in an SR content tree; returns how many were set."""
    n = 0
    for item in items:
        name = item.get("ConceptNameCodeSequence")
        if name and name[0].CodeValue == code and "MeasuredValueSequence" in item:
            measured = item.MeasuredValueSequence[0]
            measured.NumericValue = value
            if "FloatingPointValue" in measured:  # highdicom adds it when DS rounds; readers prefer it
                measured.FloatingPointValue = float(value)
            n += 1
        if "ContentSequence" in item:
            n += _set_numeric(item.ContentSequence, code, value)
    return n


def test_sr_value_that_differs_from_the_table_is_blocked(run_copy: tuple[Path, Path]) -> None:
    run, cohort = run_copy
    uid = _first_series(run)
    sr_path = next(p for p in (run / "dicom").rglob("sr.dcm") if p.parent.name == uid)
    ds = pydicom.dcmread(sr_path)
    assert _set_numeric(ds.ContentSequence, "112058", "12345.5") > 0  # Calcium score
    ds.save_as(sr_path)
    failed = _blocking(run, cohort)
    assert uid in failed.get("sr.matches_table", set()), failed


def test_value_out_of_its_declared_range_is_blocked(run_copy: tuple[Path, Path]) -> None:
    run, cohort = run_copy
    path = run / "tables" / "cac_series.parquet"
    table = pq.read_table(path)
    index = table.schema.get_field_index("volume_mm3_literature")
    values = [-1.0, *table.column(index).to_pylist()[1:]]
    pq.write_table(table.set_column(index, table.schema.field(index), pc.cast(values, table.column(index).type)), path)
    failed = _blocking(run, cohort)
    assert "cac_series.volume_mm3_literature" in failed.get("table.cac_series.range", set()), failed


def test_reference_release_adds_drift_checks(good_run: tuple[Path, Path], tmp_path: Path) -> None:
    run, cohort = good_run
    outcome = run_qa(run, cohort=cohort, reference=run, out_dir=tmp_path / "qa")
    drift = [r for r in outcome.results if r.check.startswith("stats.drift")]
    assert {r.check for r in drift} == {"stats.drift.categories", "stats.drift.scores"}
    assert all(r.passed for r in drift)  # a run compared with itself has not drifted


def test_coronary_calcium_in_the_aorta_is_blocked(run_copy: tuple[Path, Path]) -> None:
    """The run writes what QA needs (flags and counts on the row): a row that says coronary calcium lies
    in the aorta mask blocks the release."""
    run, cohort = run_copy
    path = run / "tables" / "cac_series.parquet"
    table = pq.read_table(path)
    assert "cac_in_aorta_voxels" in table.column_names and "candidate_rules_json" in table.column_names
    uid = table.column("SeriesInstanceUID")[0].as_py()
    flags = table.column("qa_flags").to_pylist()
    flags[0] = sorted({*(flags[0] or []), "cac_in_aorta"})
    table = table.set_column(
        table.schema.get_field_index("qa_flags"),
        table.schema.field("qa_flags"),
        pa.array(flags, table.schema.field("qa_flags").type),
    )
    pq.write_table(table, path)
    failed = _blocking(run, cohort)
    assert uid in failed.get("series.cac_in_aorta", set()), failed


def _set_encoding(items, code: str, keyword: str, value: object) -> int:
    """Change only one encoding (``NumericValue`` or ``FloatingPointValue``) of every NUM item ``code``."""
    n = 0
    for item in items:
        name = item.get("ConceptNameCodeSequence")
        if name and name[0].CodeValue == code and "MeasuredValueSequence" in item:
            setattr(item.MeasuredValueSequence[0], keyword, value)
            n += 1
        if "ContentSequence" in item:
            n += _set_encoding(item.ContentSequence, code, keyword, value)
    return n


@pytest.mark.parametrize("keyword,value", [("NumericValue", "999.5"), ("FloatingPointValue", 999.5)])
def test_each_numeric_encoding_of_an_sr_value_is_checked(run_copy: tuple[Path, Path], keyword, value) -> None:
    """Viewers show NumericValue, highdicom reads FloatingPointValue: changing either alone is caught."""
    run, cohort = run_copy
    uid = _first_series(run)
    sr_path = next(p for p in (run / "dicom").rglob("sr.dcm") if p.parent.name == uid)
    ds = pydicom.dcmread(sr_path)
    assert _set_encoding(ds.ContentSequence, "122660", keyword, value) > 0  # calcium volume
    ds.save_as(sr_path)
    outcome = run_qa(run, cohort=cohort)
    bad = [r for r in outcome.blocking_failures if r.check == "sr.matches_table" and r.subject == uid]
    assert bad and keyword in bad[0].message, "; ".join(
        f"{r.check}: {r.message}" for r in outcome.results if r.subject == uid
    )


def test_nan_and_inf_scores_are_out_of_range(run_copy: tuple[Path, Path]) -> None:
    run, cohort = run_copy
    path = run / "tables" / "cac_series.parquet"
    table = pq.read_table(path)
    for column, bad in (("agatston_deepcac", float("nan")), ("mass_mg_canon", float("inf"))):
        index = table.schema.get_field_index(column)
        values = [bad, *table.column(index).to_pylist()[1:]]
        table = table.set_column(index, table.schema.field(index), pc.cast(values, table.column(index).type))
    pq.write_table(table, path)
    failed = _blocking(run, cohort)
    assert {"cac_series.agatston_deepcac", "cac_series.mass_mg_canon"} <= failed.get("table.cac_series.range", set())


def test_a_dicom_object_no_row_references_is_blocked(run_copy: tuple[Path, Path]) -> None:
    """A stale SEG (a series that failed on rerun) must not pass QA, wherever it sits in the run."""
    run, cohort = run_copy
    uid = _first_series(run)
    seg = next(p for p in (run / "dicom").rglob("seg.dcm") if p.parent.name == uid)
    ds = pydicom.dcmread(seg)
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    (run / "dicom" / "1.2.3.4.5").mkdir()
    ds.save_as(run / "dicom" / "1.2.3.4.5" / "seg.dcm")
    failed = _blocking(run, cohort)
    assert failed.get("dicom.unreferenced") == {"dicom/1.2.3.4.5/seg.dcm"}, failed
    assert "dicom" in failed.get("dicom.all_referenced", set())
