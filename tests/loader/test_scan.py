"""scan_headers: a header-only inventory that reports unreadable files instead of failing."""

from __future__ import annotations

from pydicom.uid import ExplicitVRLittleEndian

from deepcac2.pipeline.loader import group_by_series, scan_headers


def test_scan_groups_series_and_reports_bad_files(series, tmp_path):
    _, a = series(name="root/a", n=5)
    _, b = series(name="root/deep/er/b", n=6, modality="MR", rows=16, cols=24)
    bad = tmp_path / "root" / "broken.dcm"
    bad.write_bytes(b"\x00" * 50)
    summaries = scan_headers(tmp_path / "root")
    assert len(summaries) == 5 + 6 + 1
    errors = [s for s in summaries if not s.readable]
    assert [s.path for s in errors] == [str(bad)]
    assert errors[0].error.startswith("E_UNREADABLE_FILE")
    groups = group_by_series(summaries)
    assert {uid: len(g) for uid, g in groups.items()} == {a.series_uid: 5, b.series_uid: 6}
    first_b = groups[b.series_uid][0]
    assert (first_b.modality, first_b.rows, first_b.cols) == ("MR", 16, 24)
    assert first_b.study_uid == b.study_uid
    assert first_b.transfer_syntax == ExplicitVRLittleEndian
    assert first_b.image_type == ("ORIGINAL", "PRIMARY", "AXIAL")
    assert first_b.orientation == b.iop
    assert first_b.file_size > 16 * 24 * 2
    positions = sorted(s.position[2] for s in groups[a.series_uid])
    assert positions == [a.position(k)[2] for k in range(a.n)]


def test_scan_reports_empty_uids_as_none(series):
    folder, _ = series(series_uid="", mutate=lambda k, ds: setattr(ds, "SOPInstanceUID", ""))
    summaries = scan_headers(folder)
    assert all(s.series_uid is None and s.sop_instance_uid is None for s in summaries)
    assert len(group_by_series(summaries)[""]) == len(summaries)
