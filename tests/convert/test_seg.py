"""The DICOM SEG: valid, complete references, round trip through dcmqi, deterministic."""

from __future__ import annotations

import dataclasses
import filecmp
from pathlib import Path

import highdicom as hd
import numpy as np
import pytest
from pydicom import dcmread

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.seg.sop import build_seg, write_seg

from . import synthetic
from .dicomtools import dciodvfy_errors, dcmqi_segments

EXPECTED_SEGMENTS = {
    # number: (label, category, type, region) as codes are written in PS3.16
    1: ("Heart", ("91723000", "SCT"), ("80891009", "SCT"), None),
    2: ("Coronary calcium", ("49755003", "SCT"), ("237897009", "SCT"), ("41801008", "SCT")),
    3: ("LM calcium", ("49755003", "SCT"), ("237897009", "SCT"), ("3227004", "SCT")),
    4: ("LAD calcium", ("49755003", "SCT"), ("237897009", "SCT"), ("59438005", "SCT")),
    5: ("LCX calcium", ("49755003", "SCT"), ("237897009", "SCT"), ("57396003", "SCT")),
    6: ("RCA calcium", ("49755003", "SCT"), ("237897009", "SCT"), ("13647002", "SCT")),
}


def _code(item) -> tuple[str, str]:
    return (item.CodeValue, item.CodingSchemeDesignator)


def test_segments_codes_algorithm_and_identity(ct, tmp_path: Path) -> None:
    seg = dcmread(write_seg(build_seg(ct, synthetic.prediction(ct.shape)), tmp_path / "seg.dcm"))
    assert len(seg.SegmentSequence) == 6
    for item in seg.SegmentSequence:
        label, category, prop, region = EXPECTED_SEGMENTS[item.SegmentNumber]
        assert item.SegmentLabel == label
        assert _code(item.SegmentedPropertyCategoryCodeSequence[0]) == category
        assert _code(item.SegmentedPropertyTypeCodeSequence[0]) == prop
        if region:
            assert _code(item.AnatomicRegionSequence[0]) == region
        alg = item.SegmentationAlgorithmIdentificationSequence[0]
        assert (alg.AlgorithmName, alg.AlgorithmVersion) == (synthetic.CARD.name, synthetic.CARD.version)
        assert _code(alg.AlgorithmFamilyCodeSequence[0]) == ("123110", "DCM")  # Artificial Intelligence
    assert seg.StudyInstanceUID == ct.study_uid
    assert seg.FrameOfReferenceUID == ct.frame_of_reference_uid
    assert seg.SeriesNumber == 3 * 100 + 41  # source SeriesNumber 3
    assert str(seg.ContentCreatorName) == "DeepCAC2^Automatic"
    assert (seg.ContentDate, seg.ContentTime) == ("19990102", "101500")  # the source study's
    # every slice, in slice order, also those outside the slab highdicom was given
    in_order = [i.sop_instance_uid for i in ct.instances]
    assert [r.ReferencedSOPInstanceUID for r in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence] == in_order
    assert [r.ReferencedSOPInstanceUID for r in seg.SourceImageSequence] == in_order
    assert {r.ReferencedSOPClassUID for r in seg.SourceImageSequence} == {ct.headers[0].SOPClassUID}
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == ct.series_uid


def test_dciodvfy_has_no_errors(ct, tmp_path: Path, dciodvfy: str) -> None:
    for name, pred in {
        "calcium": synthetic.prediction(ct.shape),
        "zero": synthetic.prediction(ct.shape, calcium=False),
        "novessels": synthetic.prediction(ct.shape, vessels=False),
    }.items():
        path = write_seg(build_seg(ct, pred), tmp_path / f"{name}.dcm")
        assert dciodvfy_errors(dciodvfy, path) == [], name


@pytest.mark.parametrize("calcium", [True, False])
def test_dcmqi_round_trip_voxel_for_voxel(ct, tmp_path: Path, calcium: bool) -> None:
    pred = synthetic.prediction(ct.shape, calcium=calcium)
    path = write_seg(build_seg(ct, pred), tmp_path / "seg.dcm")
    got = dcmqi_segments(path, tmp_path / "dcmqi", ct.geometry, ct.shape)
    expected = {"Heart": pred.heart, "Coronary calcium": pred.cac}
    for value, name in {1: "LM", 2: "LAD", 3: "LCX", 4: "RCA"}.items():
        expected[f"{name} calcium"] = pred.vessels == value
    for label, mask in expected.items():
        if not mask.any():
            # dcmqi may leave out a segment with no frames; if present it must be empty
            assert label not in got or not got[label].any(), label
            continue
        assert np.array_equal(got[label], mask), label
    assert got["Heart"].sum() == pred.heart.sum() > 0


def test_empty_frames_are_omitted(ct) -> None:
    pred = synthetic.prediction(ct.shape)
    seg = build_seg(ct, pred)
    # independent count: slices with any voxel, per segment
    n = int(pred.heart.any(axis=(1, 2)).sum() + pred.cac.any(axis=(1, 2)).sum())
    n += sum(int((pred.vessels == v).any(axis=(1, 2)).sum()) for v in (1, 2, 3, 4))
    assert seg.NumberOfFrames == n


def test_rebuild_is_byte_identical(ct, tmp_path: Path) -> None:
    pred = synthetic.prediction(ct.shape)
    a = write_seg(build_seg(ct, pred), tmp_path / "a.dcm")
    b = write_seg(build_seg(ct, pred), tmp_path / "b.dcm")
    assert filecmp.cmp(a, b, shallow=False)
    other = dataclasses.replace(synthetic.CARD, weights_sha256="cd" * 32)
    c = build_seg(ct, dataclasses.replace(pred, card=other))
    assert c.SOPInstanceUID != dcmread(a).SOPInstanceUID and c.SeriesInstanceUID != dcmread(a).SeriesInstanceUID


def test_labelmap_reads_back_with_priority(ct, tmp_path: Path) -> None:
    pred = synthetic.prediction(ct.shape)
    path = write_seg(build_seg(ct, pred, encoding="labelmap"), tmp_path / "lm.dcm")
    seg = hd.seg.segread(path)
    assert seg.SegmentationType == "LABELMAP"
    # expected label map built here: vessels over calcium over heart
    expected = np.where(pred.heart, 1, 0)
    expected[pred.cac] = 2
    expected[pred.vessels > 0] = pred.vessels[pred.vessels > 0] + 2
    got = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=[i.sop_instance_uid for i in ct.instances], combine_segments=True
    )
    assert got.shape == ct.shape
    assert np.array_equal(got, expected)
    assert set(np.unique(got).tolist()) == {0, 1, 4, 6}  # every calcium voxel has a vessel here


def test_header_count_mismatch_is_refused(ct) -> None:
    ct.headers = ct.headers[:-1]
    with pytest.raises(DeepCACError) as e:
        build_seg(ct, synthetic.prediction(ct.shape))
    assert e.value.code is ErrorCode.E_SEG_WRITE


def test_unknown_algorithm_family_is_refused(ct) -> None:
    pred = synthetic.prediction(ct.shape)
    pred.card = dataclasses.replace(synthetic.CARD, family="Crystal ball")
    with pytest.raises(DeepCACError) as e:
        build_seg(ct, pred)
    assert e.value.code is ErrorCode.E_SEG_WRITE


@pytest.mark.parametrize(
    "source, offset, expected",
    [
        (3, 41, 341),
        ("12", 42, 1242),
        (None, 41, 41),
        ("", 42, 42),
        ("x", 41, 41),
        (99_999_999, 41, 9_999_999 * 100 + 41),
    ],
)
def test_series_number_convention(source, offset: int, expected: int) -> None:
    from deepcac2.pipeline.seg.sop import derived_series_number

    got = derived_series_number(source, offset)
    assert got == expected and 0 < got <= 2**31 - 1


def test_source_without_study_date_gets_the_documented_fallback(ct) -> None:
    for h in ct.headers:  # Type 2: present but empty
        h.StudyDate, h.StudyTime = "", ""
        h.SeriesDate, h.SeriesTime = "20010203", "040506"
    seg = build_seg(ct, synthetic.prediction(ct.shape))
    assert (seg.ContentDate, seg.ContentTime) == ("20010203", "040506")
    for h in ct.headers:
        del h.SeriesDate
    seg = build_seg(ct, synthetic.prediction(ct.shape))
    assert (seg.ContentDate, seg.ContentTime) == ("19000101", "000000")
