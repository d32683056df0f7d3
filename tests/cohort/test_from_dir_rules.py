"""``cohort --from-dir``: symlinks and loops, empty results, non-image objects, the fingerprint the run checks."""

from __future__ import annotations

import os
import time

import pytest
from cohort_dicom import write_ct
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from deepcac2.cli import main as cli_main
from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline import process
from deepcac2.pipeline.cohort.select import index_local
from deepcac2.pipeline.cohort.table import cohort_to_refs, read_cohort


def _series(folder, n=4, series=None):
    series = series or generate_uid()
    study = generate_uid()
    for i in range(n):
        write_ct(folder / f"IM{i:03d}.dcm", series=series, study=study, z=i * 2.5)
    return series


def _sr(path):
    """A non-image DICOM object (a Comprehensive 3D SR header) as sits next to series in exports."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.34"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.Modality, ds.PatientID = generate_uid(), generate_uid(), "SR", "P1"
    ds.save_as(path, enforce_file_format=True)


def test_symlinked_series_folders_are_followed_and_loops_end(tmp_path):
    elsewhere = tmp_path / "storage" / "s1"
    uid = _series(elsewhere)
    root = tmp_path / "cohort-root"
    root.mkdir()
    (root / "linked").symlink_to(elsewhere, target_is_directory=True)
    (root / "linked-again").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "up").symlink_to(root, target_is_directory=True)  # a loop
    own = _series(root / "own")
    table, _ = index_local(root)
    rows = {r["SeriesInstanceUID"]: r for r in table.to_pylist()}
    assert set(rows) == {uid, own}
    assert rows[uid]["instanceCount"] == 4  # once, though two links lead to it


def test_zero_series_is_an_error_unless_allowed(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "c.parquet"
    assert cli_main(["cohort", "--from-dir", str(empty), "-o", str(out)]) == 3
    err = capsys.readouterr().err
    assert "error E_COHORT_EMPTY" in err and "no DICOM series found" in err and "--allow-empty" in err
    assert not out.exists()
    # a folder whose every file has an invalid UID: the skipped reasons say why, then the same error
    junk = tmp_path / "junk"
    for i in range(3):
        write_ct(junk / f"x{i}.dcm", series="", study=generate_uid())
    assert cli_main(["cohort", "--from-dir", str(junk), "-o", str(out)]) == 3
    err = capsys.readouterr().err
    assert "skipped 3 file(s): E_UID_INVALID" in err and "E_COHORT_EMPTY" in err
    assert cli_main(["cohort", "--from-dir", str(junk), "-o", str(out), "--allow-empty"]) == 0
    assert read_cohort(out).num_rows == 0


def test_non_image_objects_are_skipped_with_a_reason(tmp_path):
    uid = _series(tmp_path / "s")
    _sr(tmp_path / "s" / "report.dcm")
    table, skipped = index_local(tmp_path)
    assert table.column("SeriesInstanceUID").to_pylist() == [uid]
    assert [(os.path.basename(p), why) for p, why in skipped] == [("report.dcm", "non-image DICOM object (SR)")]


def test_an_unwritable_output_is_refused_before_indexing(tmp_path, capsys):
    _series(tmp_path / "s")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cli_main(["cohort", "--from-dir", str(tmp_path / "s"), "-o", str(blocker / "c.parquet")]) == 3
    assert "error E_OUTPUT_UNWRITABLE: cannot write the cohort file (-o)" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--sample", "0"], ["--limit", "-1"], ["--workers", "0"], ["--seed", "-2"]])
def test_cohort_arguments_are_range_checked(tmp_path, args, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli_main(["cohort", "--from-dir", str(tmp_path), *args])
    assert exit_.value.code == 2 and "out of range" in capsys.readouterr().err


def test_a_changed_local_series_is_refused_before_loading(tmp_path):
    folder = tmp_path / "s"
    _series(folder, n=5)
    table, _ = index_local(tmp_path)
    (ref,) = cohort_to_refs(table)
    assert ref.params["source_fingerprint"].startswith("5:")
    assert process.fetch(ref) == folder  # unchanged: no error
    (folder / "IM004.dcm").unlink()  # a slice deleted after the cohort was made
    with pytest.raises(DeepCACError) as err:
        process.fetch(ref)
    assert err.value.code is ErrorCode.E_INPUT_CHANGED
    assert "4 files now, 5 when the cohort was made" in err.value.message and "--rescan" in err.value.message
    # a file rewritten in place (same count, same name): its size or mtime tells
    table, _ = index_local(tmp_path)
    (ref,) = cohort_to_refs(table)
    stamp = time.time() + 10
    os.utime(folder / "IM000.dcm", (stamp, stamp))
    with pytest.raises(DeepCACError) as err:
        process.fetch(ref)
    assert "file names, sizes or times" in err.value.message
    # without a recorded fingerprint (IDC cohorts, --rescan) nothing is compared
    bare = type(ref)(ref.series_uid, location=ref.location, params={})
    assert process.fetch(bare) == folder
