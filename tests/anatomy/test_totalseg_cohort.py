"""Cohort columns for the anatomy stage: candidate TotalSegmentator SEGs per CT series."""

from __future__ import annotations

import shutil

import pandas as pd
import pydicom

from deepcac2.pipeline.cohort import seg_candidates
from deepcac2.pipeline.cohort.select import index_local_and_explain
from deepcac2.pipeline.cohort.table import cohort_to_refs, read_cohort, write_cohort


def test_idc_rule_same_study_and_series_number_with_several_candidates():
    ct = pd.DataFrame(
        {
            "StudyInstanceUID": ["S1", "S1", "S2", "S3"],
            "SeriesNumber": ["1", "2", "1", None],
            "SeriesInstanceUID": ["c1", "c2", "c3", "c4"],
        }  # fmt: skip
    )
    segs = pd.DataFrame(
        {
            "StudyInstanceUID": ["S1", "S1", "S1", "S2"],
            "ct_number": ["1", "1", "3", "2"],
            "SeriesInstanceUID": ["g1", "g2", "g3", "g4"],
            "crdc_series_uuid": ["u1", "u2", "u3", "u4"],
            "series_aws_url": ["s3://b/u1/*", "s3://b/u2/*", "s3://b/u3/*", "s3://b/u4/*"],
        }  # fmt: skip
    )
    out = seg_candidates.attach_idc(ct, segs)
    assert out["totalseg_candidates"].tolist() == [2, 0, 0, 0]
    first = out["totalseg_series_uid"]
    assert first[0] == "g1" and first[1:].isna().all()
    assert [c["SeriesInstanceUID"] for c in out["totalseg_candidate_series"][0]] == ["g1", "g2"]
    assert seg_candidates.coverage(out) == (0, 1, 3)
    assert "0 series with one, 1 with several, 3 with none (25.0% covered" in seg_candidates.coverage_line((0, 1, 3))


def test_from_dir_links_the_seg_file_to_its_ct_and_the_refs_carry_it(seg_case, tmp_path, capsys):
    table, skipped, explanation = index_local_and_explain(seg_case.root)
    assert table.num_rows == 1, "the SEG is a candidate, not a series to process"
    row = table.to_pylist()[0]
    uid = str(pydicom.dcmread(seg_case.seg, stop_before_pixels=True).SeriesInstanceUID)
    assert row["SeriesInstanceUID"] == seg_case.ct.series_uid
    assert (row["totalseg_series_uid"], row["totalseg_candidates"]) == (uid, 1)
    assert row["totalseg_candidate_series"][0]["location"] == str(seg_case.seg.resolve())
    assert explanation.totalseg == (1, 0, 0)
    path = write_cohort(table, tmp_path / "cohort.parquet")
    ref = cohort_to_refs(read_cohort(path))[0]
    assert ref.params["totalseg"][0]["SeriesInstanceUID"] == uid


def test_a_seg_referencing_nothing_here_leaves_the_ct_uncovered(seg_case, tmp_path):
    folder = tmp_path / "f"
    shutil.copytree(seg_case.ct_folder, folder / "ct")
    ds = pydicom.dcmread(seg_case.seg)
    ds.ReferencedSeriesSequence[0].SeriesInstanceUID = "1.2.3.4.5"
    ds.save_as(folder / "seg.dcm", enforce_file_format=True)
    table, _, explanation = index_local_and_explain(folder)
    assert table.num_rows == 1 and table.to_pylist()[0]["totalseg_candidates"] == 0
    assert explanation.totalseg == (0, 0, 1)
