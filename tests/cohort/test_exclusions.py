"""The cohort step records every excluded series with its rule (``exclusions``), beside the cohort file."""

from __future__ import annotations

import pyarrow.parquet as pq
from cohort_dicom import write_ct
from pydicom.uid import generate_uid

from deepcac2.cli import main as cli_main
from deepcac2.pipeline.cohort.select import index_local_and_explain
from deepcac2.pipeline.cohort.table import exclusions_path
from deepcac2.pipeline.orchestrate.store import OutputStore
from deepcac2.schemas.exclusions import TABLE


def _folder(root):
    study = generate_uid()
    uids = {k: generate_uid() for k in ("A", "B", "L", "N")}
    for i in range(52):
        write_ct(root / "a" / f"{i}.dcm", series=uids["A"], study=study, z=i * 2.5)
    for i in range(7):
        write_ct(root / "b" / f"{i}.dcm", series=uids["B"], study=study, z=i * 2.5, kernel="B50f")
    write_ct(root / "loc.dcm", series=uids["L"], study=study, image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    write_ct(root / "n" / "0.dcm", series=uids["N"], study=study, patient="")  # no PatientID
    return uids


def test_every_excluded_series_has_its_rule(tmp_path) -> None:
    uids = _folder(tmp_path / "in")
    table, _, explanation = index_local_and_explain(tmp_path / "in", policy="all")
    assert table.column("SeriesInstanceUID").to_pylist() == [uids["A"]]
    excluded = explanation.exclusions()
    assert excluded.schema.equals(TABLE.arrow, check_metadata=False)
    rules = {r["SeriesInstanceUID"]: (r["rule"], r["rule_kind"]) for r in excluded.to_pylist()}
    # each series by the first rule that removed it; kept + excluded = every series found
    assert rules == {
        uids["L"]: ("not_localizer", "eligibility"),
        uids["B"]: ("min_instances_50", "eligibility"),
        uids["N"]: ("min_instances_50", "eligibility"),
    }
    assert all(r["collection_id"] is None for r in excluded.to_pylist())  # a local folder, not a collection
    # without a policy: localizers and PatientIDs are still excluded, never left to fail the run
    _, _, plain = index_local_and_explain(tmp_path / "in")
    assert {r["SeriesInstanceUID"]: r["rule"] for r in plain.exclusions().to_pylist()} == {
        uids["L"]: "not_localizer",
        uids["N"]: "patient_id",
    }


def test_cli_writes_exclusions_beside_the_cohort_and_the_run_keeps_them(tmp_path) -> None:
    uids = _folder(tmp_path / "in")
    out = tmp_path / "cohort.parquet"
    assert cli_main(["cohort", "--from-dir", str(tmp_path / "in"), "-o", str(out)]) == 0
    written = pq.read_table(exclusions_path(out))
    assert exclusions_path(out).name == "cohort.exclusions.parquet"
    assert sorted(written.column("SeriesInstanceUID").to_pylist()) == sorted([uids["L"], uids["N"]])
    store = OutputStore(tmp_path / "run")
    store.keep_cohort(out)
    assert exclusions_path(tmp_path / "run" / "cohort.parquet").read_bytes() == exclusions_path(out).read_bytes()


def test_a_localizer_slice_inside_a_chest_series_does_not_exclude_it(tmp_path) -> None:
    study, series = generate_uid(), generate_uid()
    write_ct(tmp_path / "s" / "000.dcm", series=series, study=study, image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    for i in range(1, 4):  # sorted after the localizer file, and the most common type
        write_ct(tmp_path / "s" / f"{i:03d}.dcm", series=series, study=study, z=i * 2.5)
    table, _, explanation = index_local_and_explain(tmp_path / "s")
    assert table.column("SeriesInstanceUID").to_pylist() == [series]
    assert table.column("image_type").to_pylist() == ["OPA"] and explanation.exclusions().num_rows == 0
