"""One rule for stray files (the same as the cohort's), pydicom's warnings as notes, symlinked folders."""

from __future__ import annotations

import os

import numpy as np
import pytest

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.cohort.select import index_local
from deepcac2.pipeline.loader import load_series
from deepcac2.pipeline.loader.read import list_files


def _strays(folder):
    (folder / "notes.txt").write_text("scanned on Tuesday")
    (folder / "Thumbs.db").write_bytes(os.urandom(2048))
    (folder / "IM_garbage").write_bytes(os.urandom(4096))  # no DICOM name, no DICOM marker: stray too


def test_stray_files_are_skipped_with_a_note(series):
    folder, spec = series()
    _strays(folder)
    ct = load_series(folder)
    assert ct.hu.shape[0] == spec.n
    notes = [n for n in ct.notes if "not DICOM" in n]
    assert len(notes) == 1 and "skipped 3 file(s)" in notes[0], ct.notes
    assert all(name in notes[0] for name in ("notes.txt", "Thumbs.db", "IM_garbage"))


def test_a_damaged_file_that_claims_dicom_is_still_unreadable(series):
    """The loader's bad-input codes are unchanged: a .dcm of random bytes, or a file with the DICM marker."""
    folder, _ = series()
    (folder / "extra.dcm").write_bytes(os.urandom(4096))
    with pytest.raises(DeepCACError) as err:
        load_series(folder)
    assert err.value.code is ErrorCode.E_UNREADABLE_FILE
    (folder / "extra.dcm").unlink()
    (folder / "marked").write_bytes(b"\0" * 128 + b"DICM" + os.urandom(300))
    with pytest.raises(DeepCACError) as err:
        load_series(folder)
    assert err.value.code is ErrorCode.E_UNREADABLE_FILE


def test_cohort_and_loader_judge_the_same_files_the_same_way(series, tmp_path):
    folder, spec = series()
    _strays(folder)
    (folder / "broken.dcm").write_bytes(os.urandom(64))
    table, skipped = index_local(folder)
    assert table.num_rows == 1 and table.column("instanceCount")[0].as_py() == spec.n
    reasons = {os.path.basename(p): why for p, why in skipped}
    assert {k: v for k, v in reasons.items() if v == "not a DICOM file"}.keys() == {
        "notes.txt",
        "Thumbs.db",
        "IM_garbage",
    }
    assert reasons["broken.dcm"].startswith("E_UNREADABLE_FILE")


def test_pydicom_warnings_become_notes_not_output(series, capfd):
    """A UID pydicom finds invalid (a component with a leading zero) warns once per file on reading."""

    def odd_class(k, ds):
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.02"

    folder, spec = series(odd_class, n=8)
    capfd.readouterr()
    ct = load_series(folder)
    assert "Invalid value for VR UI" not in capfd.readouterr().err
    notes = [n for n in ct.notes if n.startswith("pydicom:")]
    assert len(notes) == 1 and "Invalid value for VR UI: '1.2.840.10008.5.1.4.1.1.02'" in notes[0], ct.notes
    assert "Please see" not in notes[0]  # the first sentence only
    assert ct.hu.shape[0] == spec.n


def test_warnings_of_a_failed_load_go_into_the_errors_detail(series, capfd):
    def bad_uid(k, ds):
        ds["SeriesInstanceUID"].value = "1.2.abc.3"

    folder, _ = series(bad_uid, n=30)
    capfd.readouterr()
    with pytest.raises(DeepCACError) as err:
        load_series(folder)
    assert err.value.code is ErrorCode.E_UID_INVALID
    assert "Invalid value for VR UI" not in capfd.readouterr().err  # not 30 lines on the console
    assert "Invalid value for VR UI" in err.value.detail.get("warnings", "")


def test_symlinked_folders_are_followed_once_and_loops_end(series, tmp_path):
    folder, spec = series(n=6, name="real")
    root = tmp_path / "tree"
    root.mkdir()
    (root / "series").symlink_to(folder, target_is_directory=True)
    (root / "again").symlink_to(folder, target_is_directory=True)  # the same folder twice
    (folder / "loop").symlink_to(root, target_is_directory=True)  # a cycle back up
    files = list_files(root)
    assert len(files) == spec.n  # each file once, however many ways lead to it
    ct = load_series(root)
    assert ct.hu.shape[0] == spec.n and np.isfinite(ct.hu).all()
