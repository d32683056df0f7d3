"""QA's one walk of a folder (each file read once): what it finds, against the files this test writes."""

from __future__ import annotations

import hashlib
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pydicom

from deepcac2.pipeline.dev.standin_stages import SEG_CLASS, SR_CLASS, write_object
from deepcac2.pipeline.loader.read import run_objects
from deepcac2.pipeline.stage_values import SeriesRef
from deepcac2.qa import integrity
from deepcac2.qa.binding import OBJECT_INPUT, TABLE_INPUT
from deepcac2.qa.result import CheckResult, Severity
from deepcac2.qa.walk import walk

#: every DICOM object outside tables/, qa/, state/ and logs/ -> its SOPInstanceUID ("" unparsable)
OBJECT_UIDS = {
    "dicom/1.2.3.0/heart.dcm": "1.2.9.0.5",
    "dicom/1.2.3.0/seg-copy.dcm": "1.2.9.1.1",  # series 1.2.3.1's SEG, copied
    "dicom/1.2.3.0/seg.dcm": "1.2.9.0.1",
    "dicom/1.2.3.0/sr.dcm": "1.2.9.0.3",
    "dicom/1.2.3.1/seg.dcm": "1.2.9.1.1",
    "dicom/1.2.3.1/sr.dcm": "1.2.9.1.3",
    "dicom/1.2.3.2/seg.dcm": "1.2.9.2.1",
    "dicom/1.2.3.2/sr.dcm": "1.2.9.2.3",
    "dicom/link.dcm": "1.2.9.2.1",  # a symlink: found, but not an input
    "dicom/noext": "1.2.9.2.3",  # DICOM by its marker, not its name
    "dicom/torn": "",  # the marker, then nothing parsable
}


def _folder(root):
    (root / "tables").mkdir(parents=True)
    pq.write_table(pa.table({"x": [1]}), root / "tables" / "cac_series.parquet")
    pq.write_table(pa.table({"y": [2]}), root / "tables" / "measurements.parquet")
    (root / "tables" / "notes.txt").write_text("not a table")
    for i in range(3):
        ref = SeriesRef(f"1.2.3.{i}", patient_id="P")
        folder = root / "dicom" / ref.series_uid
        folder.mkdir(parents=True)
        write_object(folder / "seg.dcm", SEG_CLASS, "SEG", f"1.2.9.{i}.1", f"1.2.9.{i}.2", ref)
        write_object(folder / "sr.dcm", SR_CLASS, "SR", f"1.2.9.{i}.3", f"1.2.9.{i}.4", ref)
    heart = pydicom.dcmread(root / "dicom" / "1.2.3.0" / "seg.dcm")
    heart.SOPInstanceUID = heart.file_meta.MediaStorageSOPInstanceUID = "1.2.9.0.5"
    heart.ContentLabel = "HEART"
    heart.save_as(root / "dicom" / "1.2.3.0" / "heart.dcm")
    seg_of = {i: (root / "dicom" / f"1.2.3.{i}" / "seg.dcm").read_bytes() for i in range(3)}
    sr_of = {i: (root / "dicom" / f"1.2.3.{i}" / "sr.dcm").read_bytes() for i in range(3)}
    (root / "dicom" / "1.2.3.0" / "seg-copy.dcm").write_bytes(seg_of[1])  # a second SEG of series 1.2.3.1
    (root / "dicom" / "broken.dcm").write_bytes(b"not dicom at all")  # unreadable, no marker
    (root / "dicom" / "torn").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x00\x00garbage")
    (root / "dicom" / "noext").write_bytes(sr_of[2])
    (root / "dicom" / "notes.txt").write_text("not DICOM")
    os.symlink(root / "dicom" / "1.2.3.2" / "seg.dcm", root / "dicom" / "link.dcm")
    for folder, name, data in (("state", "kept.dcm", sr_of[0]), ("logs", "old", seg_of[0]), ("qa", "x", sr_of[1])):
        (root / folder).mkdir()
        (root / folder / name).write_bytes(data)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_walk_finds_each_table_and_object_once(tmp_path):
    _folder(tmp_path)
    walked = walk(tmp_path)
    assert walked.sop_uids == OBJECT_UIDS and list(walked.sop_uids) == sorted(OBJECT_UIDS)
    # the same objects, in the same order, as the release build lists
    assert [p.relative_to(tmp_path).as_posix() for p in run_objects(tmp_path)] == list(OBJECT_UIDS)
    tables = ["tables/cac_series.parquet", "tables/measurements.parquet"]
    info = Severity.INFO
    assert walked.inputs == [
        *(CheckResult(TABLE_INPUT, t, True, info, "", sha256=_sha(tmp_path / t)) for t in tables),
        *(
            CheckResult(OBJECT_INPUT, uid or rel, True, info, rel, sha256=_sha(tmp_path / rel))
            for rel, uid in OBJECT_UIDS.items()
            if rel != "dicom/link.dcm"
        ),
    ]
    assert len({r.sha256 for r in walked.inputs}) == len(walked.inputs) - 2  # two copies: same bytes, same hash


def test_the_walk_sorts_every_dcm_file_into_seg_and_sr_by_source_series(tmp_path):
    _folder(tmp_path)
    objects = walk(tmp_path).objects
    d = tmp_path / "dicom"
    assert objects.root == tmp_path
    # the last of a series' files in path order is kept; each earlier one is a duplicate
    assert objects.segs == {
        "1.2.3.0": d / "1.2.3.0/seg.dcm",
        "1.2.3.1": d / "1.2.3.1/seg.dcm",
        "1.2.3.2": d / "link.dcm",
    }
    assert objects.extra_segs == {"1.2.3.0": {"heart": d / "1.2.3.0/heart.dcm"}}
    # every ``*.dcm`` file counts, under state/ too (as QA always read them): a stray object there is a duplicate
    srs = {"1.2.3.0": tmp_path / "state/kept.dcm", "1.2.3.1": d / "1.2.3.1/sr.dcm", "1.2.3.2": d / "1.2.3.2/sr.dcm"}
    assert objects.srs == srs
    assert objects.duplicates == ["1.2.3.1", "1.2.3.2", "1.2.3.0"]
    assert objects.unreadable == [d / "broken.dcm"]


def test_unreferenced_objects_are_those_no_row_names(tmp_path):
    _folder(tmp_path)
    rows = [{"seg_sop_instance_uid": f"1.2.9.{i}.1", "sr_sop_instance_uid": f"1.2.9.{i}.3"} for i in range(3)]
    b = Severity.BLOCKING
    assert integrity.check_unreferenced(rows, walk(tmp_path).sop_uids) == [
        CheckResult("dicom.unreferenced", rel, False, b, "a DICOM object no cac_series row names (stale or stray)")
        for rel in ("dicom/1.2.3.0/heart.dcm", "dicom/torn")
    ] + [CheckResult("dicom.all_referenced", "dicom", False, b, "2 of 11 DICOM objects unreferenced", 2.0)]
    rows[0]["heart_seg_sop_instance_uid"] = "1.2.9.0.5"
    assert [r.subject for r in integrity.check_unreferenced(rows, walk(tmp_path).sop_uids) if not r.passed] == [
        "dicom/torn",
        "dicom",
    ]


def test_files_are_found_in_sorted_rglob_order_without_listing_the_whole_tree(tmp_path, monkeypatch):
    """The walk's file order is ``sorted(rglob)``'s (files and folders of one name prefix interleaved,
    symlinked folders not entered), and it never asks for the whole tree at once: at NLST size that
    list held ~150 MiB for the whole walk."""
    from pathlib import Path

    from deepcac2.qa.walk import files_sorted

    for rel in ("a/x", "a.b", "a/y/z", "b", "A", "c/d.dcm", "a-/q"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    (tmp_path / "c" / "file-link").symlink_to(tmp_path / "b")
    (tmp_path / "dir-link").symlink_to(tmp_path / "a", target_is_directory=True)
    expected = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    monkeypatch.setattr(Path, "rglob", lambda *a, **k: (_ for _ in ()).throw(AssertionError("whole tree listed")))
    assert list(files_sorted(tmp_path)) == expected
    _folder(tmp_path / "run")
    walk(tmp_path / "run")  # the walk itself lists no whole tree
