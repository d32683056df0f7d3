"""QA's one walk (each file read once) finds what its three former walks found, row for row."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq

from deepcac2.pipeline.orchestrate.standin_stages import SEG_CLASS, SR_CLASS, write_object
from deepcac2.pipeline.stage_values import SeriesRef
from deepcac2.qa import integrity
from deepcac2.qa.binding import input_results
from deepcac2.qa.dicom_checks import find_objects
from deepcac2.qa.walk import walk


def _folder(root):
    (root / "tables").mkdir(parents=True)
    pq.write_table(pa.table({"x": [1]}), root / "tables" / "cac_series.parquet")
    for i in range(3):
        ref = SeriesRef(f"1.2.3.{i}", patient_id="P")
        folder = root / "dicom" / ref.series_uid
        folder.mkdir(parents=True)
        write_object(folder / "seg.dcm", SEG_CLASS, "SEG", f"1.2.9.{i}.1", f"1.2.9.{i}.2", ref)
        write_object(folder / "sr.dcm", SR_CLASS, "SR", f"1.2.9.{i}.3", f"1.2.9.{i}.4", ref)
    dup = root / "dicom" / "1.2.3.0" / "seg-copy.dcm"  # a second SEG of one series
    dup.write_bytes((root / "dicom" / "1.2.3.1" / "seg.dcm").read_bytes())
    (root / "dicom" / "broken.dcm").write_bytes(b"not dicom at all")  # unreadable, no marker
    marked = b"\0" * 128 + b"DICM" + b"\x02\x00\x00\x00garbage"  # a marker, then nothing parsable
    (root / "dicom" / "torn").write_bytes(marked)
    (root / "dicom" / "noext").write_bytes((root / "dicom" / "1.2.3.2" / "sr.dcm").read_bytes())
    os.symlink(root / "dicom" / "1.2.3.2" / "seg.dcm", root / "dicom" / "link.dcm")
    (root / "state").mkdir()
    (root / "state" / "kept.dcm").write_bytes((root / "dicom" / "1.2.3.2" / "seg.dcm").read_bytes())


def test_one_walk_gives_the_bindings_objects_and_uids_of_three(tmp_path):
    _folder(tmp_path)
    walked = walk(tmp_path)
    assert walked.inputs == input_results(tmp_path)
    assert walked.objects == find_objects(tmp_path)
    assert walked.sop_uids == integrity._object_uids(tmp_path, {})
    # what the folder holds, so the equalities above are not of empty results
    assert len(walked.objects.segs) == 3 and len(walked.objects.srs) == 3 and walked.objects.duplicates
    assert {p.name for p in walked.objects.unreadable} == {"broken.dcm"}
    assert walked.sop_uids["dicom/torn"] == "" and "dicom/link.dcm" in walked.sop_uids
    assert not any(r.message == "dicom/link.dcm" for r in walked.inputs)  # a symlink is not an input
    rows = [{"seg_sop_instance_uid": f"1.2.9.{i}.1", "sr_sop_instance_uid": f"1.2.9.{i}.3"} for i in range(3)]
    assert integrity.check_unreferenced(tmp_path, rows, walked=walked.sop_uids) == integrity.check_unreferenced(
        tmp_path, rows
    )
