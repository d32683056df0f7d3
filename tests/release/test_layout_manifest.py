"""DICOM re-layout rules and manifest primitives."""

from __future__ import annotations

import hashlib
from pathlib import Path

import crc32c
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.release import manifest
from deepcac2.release.build import build_release, cohort_facts
from deepcac2.release.layout import find_dicom_objects
from tests.release.runfactory import make_run, series_rows, write_dicom

UID = "1.2.826.0.1.3680043.10.1234."


def test_crc32c_is_castagnoli_in_hex(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"123456789")
    entry = manifest.hash_file(tmp_path, "f")
    assert entry.crc32c == "e3069283"  # the CRC-32C check value (RFC 3720, B.4)
    assert entry.md5 == hashlib.md5(b"123456789").hexdigest() and entry.size_bytes == 9
    big = bytes(range(256)) * 9000  # spans several read chunks
    (tmp_path / "g").write_bytes(big)
    assert manifest.hash_file(tmp_path, "g", chunk=1000).crc32c == f"{crc32c.crc32c(big):08x}"


def test_non_dicom_files_are_ignored_and_sorted(tmp_path: Path) -> None:
    write_dicom(tmp_path / "b" / "x.dcm", "P2", UID + "2", UID + "22", UID + "222", "SR")
    write_dicom(tmp_path / "a.dcm", "P1", UID + "1", UID + "11", UID + "111", "SEG")
    (tmp_path / "notes.dcm").write_text("not DICOM")
    (tmp_path / "tables").mkdir()
    write_dicom(tmp_path / "tables" / "skip.dcm", "P3", UID + "3", UID + "33", UID + "333", "SR")
    objs = find_dicom_objects(tmp_path)
    assert [o.release_path for o in objs] == [
        f"dicom/P1/{UID}1/SEG_{UID}11/{UID}111.dcm",
        f"dicom/P2/{UID}2/SR_{UID}22/{UID}222.dcm",
    ]


@pytest.mark.parametrize("patient", ["../etc", "a/b", "", " "])
def test_unsafe_identifiers_are_refused(tmp_path: Path, patient: str) -> None:
    write_dicom(tmp_path / "x.dcm", patient, UID + "1", UID + "11", UID + "111", "SEG")
    with pytest.raises(DeepCACError) as exc:
        find_dicom_objects(tmp_path)
    assert exc.value.code is ErrorCode.E_RELEASE_INPUT and "PatientID" in exc.value.message


def test_duplicate_sop_instance_uid_is_refused(tmp_path: Path) -> None:
    write_dicom(tmp_path / "x.dcm", "P1", UID + "1", UID + "11", UID + "111", "SEG")
    write_dicom(tmp_path / "y.dcm", "P1", UID + "1", UID + "12", UID + "111", "SR")
    with pytest.raises(DeepCACError) as exc:
        find_dicom_objects(tmp_path)
    assert "appears twice" in exc.value.message


def test_cohort_policy_and_rules_reach_the_card(tmp_path: Path) -> None:
    reasons = [
        "policy deepcac: passed ct, not_localizer, min_instances; deepcac: best of 3 in study (thickness 2.5 mm)",
        "policy deepcac: passed ct, not_localizer, min_instances; deepcac: best of 1 in study (thickness 2.0 mm)",
    ]
    table = pa.table({"selection_reason": reasons})
    assert cohort_facts(table) == ("deepcac", "ct, not_localizer, min_instances", "(not recorded)")
    table = table.replace_schema_metadata({"policy": "all", "idc_index_data": "21.0.0"})
    assert cohort_facts(table) == ("all", "ct, not_localizer, min_instances", "21.0.0")
    run = make_run(tmp_path / "RUN", n_patients=1, images=False, rows=series_rows(1))
    pq.write_table(table, run / "cohort.parquet")
    rel = build_release(run, "1.0.0", tmp_path / "REL")
    text = (rel / "DATASET_CARD.md").read_text()
    assert "cohort policy **all**" in text and "ct, not_localizer, min_instances" in text
    assert "`idc-index-data` 21.0.0" in text
    assert (rel / "tables" / "cohort.parquet").read_bytes() == (run / "cohort.parquet").read_bytes()


def test_a_cohort_the_run_did_not_process_is_refused(tmp_path: Path) -> None:
    run = make_run(tmp_path / "RUN", n_patients=1, images=False)
    cohort = tmp_path / "cohort.parquet"
    pq.write_table(pa.table({"selection_reason": ["policy all: passed ct"]}), cohort)
    (run / "state").mkdir()
    (run / "state" / "run.json").write_text('{"cohort_sha256": "' + "0" * 64 + '"}')
    with pytest.raises(DeepCACError) as exc:
        build_release(run, "1.0.0", tmp_path / "REL", cohort=cohort)
    assert exc.value.code is ErrorCode.E_RELEASE_INPUT and "SHA-256" in exc.value.message
    digest = hashlib.sha256(cohort.read_bytes()).hexdigest()
    (run / "state" / "run.json").write_text('{"cohort_sha256": "' + digest + '"}')
    assert (build_release(run, "1.0.0", tmp_path / "REL", cohort=cohort) / "tables" / "cohort.parquet").exists()
