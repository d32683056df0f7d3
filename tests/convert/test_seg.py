"""The DICOM SEGs: no overlap, IDC's naming and codes, the loader's geometry, valid, dcmqi round trip."""

from __future__ import annotations

import dataclasses
import filecmp
from pathlib import Path

import highdicom as hd
import numpy as np
import pytest
from pydicom import dcmread

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.anatomy.base import Anatomy, AnatomyProvenance
from deepcac2.pipeline.seg.sop import build_seg, write_seg

from . import synthetic
from .dicomtools import dciodvfy_errors, dcmqi_segments

CALCIUM = (("49755003", "SCT"), ("237897009", "SCT"))
EXPECTED = {
    # kind: {number: (label, category, type, anatomic region)} as PS3.16 spells the codes
    "cac": {
        1: ("Coronary calcium", *CALCIUM, ("41801008", "SCT")),
        2: ("Thoracic aortic calcium", *CALCIUM, ("113262008", "SCT")),
    },
    "vessels": {
        1: ("LM calcium", *CALCIUM, ("3227004", "SCT")),
        2: ("LAD calcium", *CALCIUM, ("59438005", "SCT")),
        3: ("LCX calcium", *CALCIUM, ("57396003", "SCT")),
        4: ("RCA calcium", *CALCIUM, ("13647002", "SCT")),
    },
    "heart": {1: ("Heart", ("123037004", "SCT"), ("80891009", "SCT"), None)},
}
OFFSETS = {"cac": 41, "vessels": 43, "heart": 44}
DESCRIPTIONS = {
    "cac": "DeepCAC2(deepcac2-test 1.2.3) CAC Segmentation of Series 3",
    "heart": "DeepCAC2(deepcac2-test 1.2.3) Heart Segmentation of Series 3",
    # 65 characters in full: the model name is shortened (marked ~), the version kept
    "vessels": "DeepCAC2(deepcac2-te~ 1.2.3) Vessel CAC Segmentation of Series 3",
}
TS = AnatomyProvenance("idc-totalsegmentator", "TotalSegmentator v1.5.6", "1.2.3.44", "1.2.3.44.1", None)


def _code(item) -> tuple[str, str]:
    return (item.CodeValue, item.CodingSchemeDesignator)


def _masks(pred, kind: str) -> dict[str, np.ndarray]:
    if kind == "heart":
        return {"Heart": pred.heart}
    if kind == "vessels":
        return {
            f"{n} calcium": (pred.vessels == v) & pred.cac for v, n in {1: "LM", 2: "LAD", 3: "LCX", 4: "RCA"}.items()
        }
    out = {"Coronary calcium": pred.cac}
    if pred.aortic is not None:
        out["Thoracic aortic calcium"] = pred.aortic
    return out


@pytest.mark.parametrize("kind", ["cac", "vessels", "heart"])
def test_segments_codes_naming_and_identity(ct, tmp_path: Path, kind: str) -> None:
    pred = synthetic.prediction(ct.shape, aortic=True)
    seg = dcmread(write_seg(build_seg(ct, pred, kind=kind), tmp_path / "seg.dcm"))
    assert {item.SegmentNumber for item in seg.SegmentSequence} == set(EXPECTED[kind])
    for item in seg.SegmentSequence:
        label, category, prop, region = EXPECTED[kind][item.SegmentNumber]
        assert item.SegmentLabel == label
        assert _code(item.SegmentedPropertyCategoryCodeSequence[0]) == category
        assert _code(item.SegmentedPropertyTypeCodeSequence[0]) == prop
        if region:
            assert _code(item.AnatomicRegionSequence[0]) == region
        assert item.SegmentAlgorithmName == "DeepCAC2(deepcac2-test 1.2.3)"  # toolkit, model, version
        assert item.SegmentDescription.strip()
        alg = item.SegmentationAlgorithmIdentificationSequence[0]
        assert alg.AlgorithmVersion == synthetic.CARD.version
        assert _code(alg.AlgorithmFamilyCodeSequence[0]) == ("123110", "DCM")  # Artificial Intelligence
    assert seg.SeriesDescription == DESCRIPTIONS[kind]
    assert seg.SeriesNumber == 3 * 100 + OFFSETS[kind]  # source SeriesNumber 3
    assert seg.get("SegmentsOverlap", "NO") == "NO"
    assert seg.StudyInstanceUID == ct.study_uid
    assert seg.FrameOfReferenceUID == ct.frame_of_reference_uid
    assert str(seg.ContentCreatorName) == "DeepCAC2^Automatic"
    assert (seg.ContentDate, seg.ContentTime) == ("19990102", "101500")  # the source study's
    # every slice, in slice order, also those outside the slab highdicom was given
    in_order = [i.sop_instance_uid for i in ct.instances]
    assert [r.ReferencedSOPInstanceUID for r in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence] == in_order
    assert [r.ReferencedSOPInstanceUID for r in seg.SourceImageSequence] == in_order
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == ct.series_uid


def test_no_segment_overlaps_another(ct, tmp_path: Path) -> None:
    pred = synthetic.prediction(ct.shape, aortic=True)
    for kind in ("cac", "vessels", "heart"):
        seg = hd.seg.segread(write_seg(build_seg(ct, pred, kind=kind), tmp_path / f"{kind}.dcm"))
        masks = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=[i.sop_instance_uid for i in ct.instances], combine_segments=False
        )
        assert masks.shape[-1] == len(EXPECTED[kind])
        assert (masks.sum(axis=-1) <= 1).all(), kind


def test_geometry_is_the_loaders_not_the_sources(ct) -> None:
    for h in ct.headers:  # what a real series carried: a negative spacing, and a thickness that disagrees
        h.SpacingBetweenSlices = -2.5
        h.SliceThickness = 9.0
    ct.slice_thickness = 3.0  # the loader's value
    seg = build_seg(ct, synthetic.prediction(ct.shape))
    measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert float(measures.SpacingBetweenSlices) == ct.geometry.spacing[2] == 2.5
    assert float(measures.SliceThickness) == 3.0
    assert [float(v) for v in measures.PixelSpacing] == [ct.geometry.spacing[1], ct.geometry.spacing[0]]
    for item in seg.PerFrameFunctionalGroupsSequence:
        position = np.array([float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient])
        k = ct.geometry.lps_to_index(position)
        assert np.allclose(k[:2], 0) and abs(k[2] - round(k[2])) < 1e-6


def test_dciodvfy_has_no_errors(ct, tmp_path: Path, dciodvfy: str) -> None:
    cases = {
        "calcium": synthetic.prediction(ct.shape),
        "zero": synthetic.prediction(ct.shape, calcium=False),
        "novessels": synthetic.prediction(ct.shape, vessels=False),
        "aortic": synthetic.prediction(ct.shape, aortic=True),
    }
    for name, pred in cases.items():
        for kind in ("cac", "vessels", "heart") if pred.vessels is not None else ("cac", "heart"):
            path = write_seg(build_seg(ct, pred, kind=kind), tmp_path / f"{name}-{kind}.dcm")
            assert dciodvfy_errors(dciodvfy, path) == [], (name, kind)


@pytest.mark.parametrize("calcium", [True, False])
def test_dcmqi_round_trip_voxel_for_voxel(ct, tmp_path: Path, calcium: bool) -> None:
    pred = synthetic.prediction(ct.shape, calcium=calcium, aortic=True)
    for kind in ("cac", "vessels", "heart"):
        path = write_seg(build_seg(ct, pred, kind=kind), tmp_path / f"{kind}.dcm")
        got = dcmqi_segments(path, tmp_path / f"dcmqi-{kind}", ct.geometry, ct.shape)
        for label, mask in _masks(pred, kind).items():
            if not mask.any():
                # dcmqi may leave out a segment with no frames; if present it must be empty
                assert label not in got or not got[label].any(), label
                continue
            assert np.array_equal(got[label], mask), label
    assert pred.heart.sum() > 0


def test_empty_frames_are_omitted(ct) -> None:
    pred = synthetic.prediction(ct.shape, aortic=True)
    for kind in ("cac", "vessels", "heart"):
        # independent count: slices with any voxel, per segment
        n = sum(int(m.any(axis=(1, 2)).sum()) for m in _masks(pred, kind).values())
        assert build_seg(ct, pred, kind=kind).NumberOfFrames == n, kind


def test_rebuild_is_byte_identical_and_kinds_have_their_own_uids(ct, tmp_path: Path) -> None:
    pred = synthetic.prediction(ct.shape)
    a = write_seg(build_seg(ct, pred), tmp_path / "a.dcm")
    b = write_seg(build_seg(ct, pred), tmp_path / "b.dcm")
    assert filecmp.cmp(a, b, shallow=False)
    other = dataclasses.replace(synthetic.CARD, weights_sha256="cd" * 32)
    c = build_seg(ct, dataclasses.replace(pred, card=other))
    assert c.SOPInstanceUID != dcmread(a).SOPInstanceUID and c.SeriesInstanceUID != dcmread(a).SeriesInstanceUID
    uids = {build_seg(ct, pred, kind=k).SeriesInstanceUID for k in ("cac", "vessels", "heart")}
    assert len(uids) == 3


def test_labelmap_reads_back(ct, tmp_path: Path) -> None:
    pred = synthetic.prediction(ct.shape, aortic=True)
    path = write_seg(build_seg(ct, pred, encoding="labelmap"), tmp_path / "lm.dcm")
    seg = hd.seg.segread(path)
    assert seg.SegmentationType == "LABELMAP"
    expected = np.where(pred.cac, 1, 0) + np.where(pred.aortic, 2, 0)  # disjoint: no priority needed
    got = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=[i.sop_instance_uid for i in ct.instances], combine_segments=True
    )
    assert got.shape == ct.shape
    assert np.array_equal(got, expected)


def test_a_totalsegmentator_heart_is_referenced_not_copied(ct) -> None:
    pred = synthetic.prediction(ct.shape)
    pred.anatomy = Anatomy(pred.heart, np.zeros_like(pred.heart), np.zeros_like(pred.heart), TS)
    seg = build_seg(ct, pred)
    (cited,) = seg.ReferencedImageSequence
    assert (cited.ReferencedSOPInstanceUID, cited.ReferencedSOPClassUID) == (
        "1.2.3.44.1",
        "1.2.840.10008.5.1.4.1.1.66.4",
    )
    series = {s.SeriesInstanceUID: s for s in seg.ReferencedSeriesSequence}
    assert [i.ReferencedSOPInstanceUID for i in series["1.2.3.44"].ReferencedInstanceSequence] == ["1.2.3.44.1"]
    params = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0].AlgorithmParameters
    assert "anatomy_seg=1.2.3.44.1" in params and "idc-totalsegmentator" in params


def test_totalsegmentator_anatomy_without_its_uids_is_refused(ct) -> None:
    pred = synthetic.prediction(ct.shape)
    broken = dataclasses.replace(TS, seg_sop_instance_uid=None)
    pred.anatomy = Anatomy(pred.heart, np.zeros_like(pred.heart), np.zeros_like(pred.heart), broken)
    with pytest.raises(DeepCACError) as e:
        build_seg(ct, pred)
    assert e.value.code is ErrorCode.E_SEG_WRITE


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
    from deepcac2.pipeline.dicomout.identity import derived_series_number

    got = derived_series_number(source, offset)
    assert got == expected and 0 < got <= 2**31 - 1


def test_long_model_names_keep_the_description_within_64_characters() -> None:
    from deepcac2.pipeline.dicomout.identity import CAC_SEG, series_description

    card = dataclasses.replace(synthetic.CARD, name="a-very-long-model-name-" * 3, version="10.20.30")
    text = series_description(CAC_SEG, card, 123456)
    assert len(text) <= 64 and text.startswith("DeepCAC2(") and text.endswith(" CAC Segmentation of Series 123456")


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
