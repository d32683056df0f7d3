"""An empty or unusable PatientID is caught at ``cohort`` (rule ``patient_id``) and ``run`` (E_PATIENT_ID),
by the same rule ``release build`` applies to its folders, so it never first fails there."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline import process
from deepcac2.pipeline.cohort.select import index_local_and_explain
from deepcac2.pipeline.identifiers import is_valid_patient_id, validate_patient_id
from deepcac2.pipeline.stage_values import SeriesRef
from deepcac2.release.layout import read_object
from tests.convert import synthetic

BAD = ["", "   ", None, float("nan"), "a b", "../x", "-lead", "x/y", "é1", "a" * 65]
GOOD = ["100012", "LUNG1-001", "a.b_c-d", " 100012 "]


@pytest.mark.parametrize("value", BAD)
def test_bad_patient_ids_have_their_code(value) -> None:
    assert not is_valid_patient_id(value) or value != value  # nan: not a valid id either
    with pytest.raises(DeepCACError) as e:
        validate_patient_id(value, "1.2.3")
    assert e.value.code is ErrorCode.E_PATIENT_ID and "PatientID" in e.value.message


@pytest.mark.parametrize("value", GOOD)
def test_good_patient_ids_pass(value) -> None:
    assert validate_patient_id(value) == value.strip() and is_valid_patient_id(value)


def _series(folder: Path, patient_id: str | None, seed: int = 0) -> Path:
    datasets = synthetic.ct_datasets(n=6, rows=16, cols=16, seed=seed)
    for ds in datasets:
        if patient_id is None:
            del ds.PatientID
        else:
            ds.PatientID = patient_id
    synthetic.write_series(datasets, folder)
    return folder


@pytest.mark.parametrize("patient_id", ["", None, "a b"])
def test_run_refuses_the_series_at_load_and_the_release_would_too(tmp_path: Path, patient_id) -> None:
    folder = _series(tmp_path / "s", patient_id)
    uid = str(dcmread(next(folder.iterdir())).SeriesInstanceUID)
    with pytest.raises(DeepCACError) as e:
        process.load(SeriesRef(series_uid=uid, location=str(folder)), folder)
    assert e.value.code is ErrorCode.E_PATIENT_ID
    # the release's folder rule is the same one: what load refuses, the layout refuses
    with pytest.raises(DeepCACError) as e:
        read_object(next(folder.iterdir()))
    assert e.value.code is ErrorCode.E_RELEASE_INPUT


def test_cohort_excludes_the_series_by_rule(tmp_path: Path) -> None:
    _series(tmp_path / "bad", "")
    _series(tmp_path / "good", "100012", seed=1)
    table, _, explanation = index_local_and_explain(tmp_path)
    assert table.column("PatientID").to_pylist() == ["100012"]
    removed = {s.rule: s.removed.series for s in explanation.steps}
    assert removed["patient_id"] == 1
