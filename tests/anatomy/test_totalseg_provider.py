"""Provider idc-totalsegmentator on a SEG written the way IDC wrote NLST's (dcmqi, IDC's metadata).

What is checked: the format, the masks against the label map that went into dcmqi,
segments found by code (never by number or label), reads by byte range (bytes counted),
the bad inputs of issue 14 (another series, missing segments, frames off the grid, a
truncated object, a failing range read) and the ``auto`` fallback with its note.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline import stage_values
from deepcac2.pipeline.anatomy.idc_totalseg import TotalSegmentatorAnatomy, anatomy_from_seg
from deepcac2.pipeline.anatomy.registry import resolve_anatomy
from deepcac2.pipeline.totalseg import codes, seg_reader
from deepcac2.pipeline.totalseg.byte_ranges import LocalFile

HEART_IDS = [codes.classes()[n][0] for n in codes.REQUIRED["heart"]]


def _in_slab(labels: np.ndarray, mask: np.ndarray, spacing_z: float, below=30.0, above=100.0) -> np.ndarray:
    """``mask`` kept on the cardiac slab only: 30 mm below the heart to 100 mm above it (provider.SLAB_*)."""
    ks = np.flatnonzero(np.isin(labels, HEART_IDS).any(axis=(1, 2)))
    lo, hi = ks[0] - int(round(below / spacing_z)), ks[-1] + int(round(above / spacing_z))
    out = np.zeros_like(mask)
    out[max(lo, 0) : hi + 1] = mask[max(lo, 0) : hi + 1]
    return out


def _id(name: str) -> int:
    return codes.classes()[name][0]


def test_the_synth_seg_is_in_idcs_format(seg_case):
    ds = pydicom.dcmread(seg_case.seg)
    ct0 = pydicom.dcmread(next(seg_case.ct_folder.glob("*.dcm")), stop_before_pixels=True)
    assert ds.SOPClassUID == seg_reader.SEG_STORAGE and ds.SegmentationType == "BINARY"
    assert not ds.file_meta.TransferSyntaxUID.is_compressed
    assert ds.SeriesNumber == int(ct0.SeriesNumber) * 100
    assert ds.SeriesDescription == f"TotalSegmentator(v1.5.6) Segmentation of Series {int(ct0.SeriesNumber)}"
    assert ds.ContentCreatorName == "IDC"
    assert [s.ReferencedSeriesSequence for s in [ds]][0][0].SeriesInstanceUID == seg_case.ct.series_uid
    # segments numbered 1..n in label-ID order, only the labels present
    present = sorted(int(v) for v in np.unique(seg_case.labels) if v)
    assert [int(s.SegmentNumber) for s in ds.SegmentSequence] == list(range(1, len(present) + 1))
    by_label = {v: k for k, (v, _) in codes.classes().items()}
    described = [s.SegmentDescription for s in ds.SegmentSequence]
    assert described == [f"TotalSegmentator {v} : {by_label[v]}" for v in present]
    # dcmqi --skip: each segment's frames run from its first to its last non-empty slice
    frames = ds.pixel_array.reshape(int(ds.NumberOfFrames), -1).any(axis=1)
    header = seg_reader.read_header(LocalFile(seg_case.seg))
    spans = []
    for number, v in enumerate(present, start=1):
        mine = np.flatnonzero(header.frame_segment == number)
        assert frames[mine[0]] and frames[mine[-1]]
        ks = np.flatnonzero((seg_case.labels == v).any(axis=(1, 2)))
        spans.append(int(ks[-1] - ks[0] + 1))
        assert len(mine) == spans[-1]
    assert int(ds.NumberOfFrames) == sum(spans)


def test_masks_are_the_label_map_on_the_ct_grid_and_only_wanted_frames_are_read(seg_case):
    source = LocalFile(seg_case.seg)
    anatomy = anatomy_from_seg(source, seg_case.ct, structures=())
    lab = seg_case.labels
    np.testing.assert_array_equal(anatomy.heart, np.isin(lab, HEART_IDS))
    sz = seg_case.ct.geometry.spacing[2]
    np.testing.assert_array_equal(anatomy.aorta, _in_slab(lab, lab == _id("aorta"), sz))
    assert anatomy.aorta.sum() >= 0.8 * (lab == _id("aorta")).sum()  # the thoracic aorta is all there
    np.testing.assert_array_equal(anatomy.pulmonary_artery, _in_slab(lab, lab == _id("pulmonary_artery"), sz))
    np.testing.assert_array_equal(anatomy.structures["ventricle_left"], lab == _id("heart_ventricle_left"))
    assert set(anatomy.structures) == {"myocardium", "atrium_left", "atrium_right", "ventricle_left", "ventricle_right"}
    prov = anatomy.provenance
    ds = pydicom.dcmread(seg_case.seg, stop_before_pixels=True)
    assert (prov.provider, prov.version) == ("idc-totalsegmentator", "TotalSegmentator v1.5.6")
    assert (prov.seg_series_uid, prov.seg_sop_instance_uid) == (ds.SeriesInstanceUID, ds.SOPInstanceUID)
    # bytes: the header plus the 7 segments' frames, far from the whole object
    header = seg_reader.read_header(LocalFile(seg_case.seg))
    wanted = [n for name in ("heart", "aorta", "pulmonary_artery") for n in
              seg_reader.segment_numbers(header, codes.codes_of(codes.REQUIRED[name]))]  # fmt: skip
    frame_bytes = int(np.isin(header.frame_segment, wanted).sum()) * header.frame_bits // 8
    heart = seg_reader.segment_numbers(header, codes.codes_of(codes.REQUIRED["heart"]))
    assert source.bytes_read > int(np.isin(header.frame_segment, heart).sum()) * header.frame_bits // 8
    assert source.bytes_read <= frame_bytes + header.pixel_offset + 64 * 1024
    unwanted = int((~np.isin(header.frame_segment, wanted)).sum()) * header.frame_bits // 8
    assert unwanted > frame_bytes and source.bytes_read < source.size() - 0.5 * unwanted


def test_structures_are_read_over_the_cardiac_slab(seg_case):
    lab, sz = seg_case.labels, seg_case.ct.geometry.spacing[2]
    default = anatomy_from_seg(LocalFile(seg_case.seg), seg_case.ct)
    assert (
        set(default.structures) >= {"esophagus", "trachea", "vertebrae", "ribs"} and "lungs" not in default.structures
    )
    np.testing.assert_array_equal(default.structures["esophagus"], _in_slab(lab, lab == _id("esophagus"), sz))
    ribs = [v for k, (v, _) in codes.classes().items() if k.startswith("rib_")]
    # the ribs only within 25 mm of the heart's slices (provider.NEAR_HEART_MM)
    near = _in_slab(lab, np.isin(lab, ribs), sz, 25.0, 25.0)
    np.testing.assert_array_equal(default.structures["ribs"], near)
    assert near.any() and (np.isin(lab, ribs) & ~near).any()
    asked = anatomy_from_seg(LocalFile(seg_case.seg), seg_case.ct, structures=("lungs", "ribs", "trachea"))
    np.testing.assert_array_equal(asked.structures["trachea"], _in_slab(lab, lab == _id("trachea"), sz))
    lungs = [v for k, (v, _) in codes.classes().items() if k.startswith("lung_")]
    np.testing.assert_array_equal(asked.structures["lungs"], _in_slab(lab, np.isin(lab, lungs), sz))
    assert asked.structures["ribs"].any() and "vertebrae" not in asked.structures


def _rewrite(path, change) -> None:
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path, enforce_file_format=True)


def test_segments_are_found_by_code_not_by_label_or_number(seg_case, seg_copy):
    aorta_code = codes.classes()["aorta"][1]

    def relabel(ds):
        for s in ds.SegmentSequence:  # every label and description now lies
            s.SegmentLabel, s.SegmentDescription = "Heart", "TotalSegmentator 44 : heart_myocardium"

    _rewrite(seg_copy, relabel)
    anatomy = anatomy_from_seg(LocalFile(seg_copy), seg_case.ct, structures=())
    lab = seg_case.labels
    np.testing.assert_array_equal(anatomy.aorta, _in_slab(lab, lab == _id("aorta"), seg_case.ct.geometry.spacing[2]))

    def drop_aorta_code(ds):
        for s in ds.SegmentSequence:
            t = s.SegmentedPropertyTypeCodeSequence[0]
            if (t.CodingSchemeDesignator, t.CodeValue) == (aorta_code.scheme, aorta_code.value):
                t.CodeValue, t.CodeMeaning = "10200004", "Liver"

    _rewrite(seg_copy, drop_aorta_code)
    with pytest.raises(DeepCACError) as err:
        anatomy_from_seg(LocalFile(seg_copy), seg_case.ct)
    assert err.value.code is ErrorCode.E_ANATOMY_SEGMENTS and "aorta" in err.value.message


def test_a_seg_of_another_series_is_skipped_for_the_next_candidate(seg_case, seg_copy):
    def other(ds):
        ds.ReferencedSeriesSequence[0].SeriesInstanceUID = "1.2.3.4.5"

    _rewrite(seg_copy, other)
    provider = TotalSegmentatorAnatomy(structures=())
    wrong = {"SeriesInstanceUID": "a", "location": str(seg_copy)}
    right = {"SeriesInstanceUID": "b", "location": str(seg_case.seg)}
    a = provider.anatomy(seg_case.ref(wrong, right), seg_case.ct)
    assert a.provenance.seg_series_uid == pydicom.dcmread(seg_case.seg, stop_before_pixels=True).SeriesInstanceUID
    assert "references series 1.2.3.4.5" in a.notes[0]
    with pytest.raises(DeepCACError) as err:
        provider.anatomy(seg_case.ref(wrong), seg_case.ct)
    assert err.value.code is ErrorCode.E_ANATOMY_MISMATCH


def test_auto_falls_back_to_classical_with_a_note_on_a_wrong_seg(seg_case, seg_copy):
    _rewrite(seg_copy, lambda ds: setattr(ds.ReferencedSeriesSequence[0], "SeriesInstanceUID", "1.2.3.4.5"))
    a = resolve_anatomy(seg_case.ref({"SeriesInstanceUID": "a", "location": str(seg_copy)}), seg_case.ct)
    assert a.provenance.provider == "classical"
    assert a.notes[0].startswith("anatomy: idc-totalsegmentator not used (E_ANATOMY_MISMATCH")
    b = resolve_anatomy(seg_case.ref(), seg_case.ct)
    assert b.provenance.provider == "idc-totalsegmentator"


def test_frames_off_the_ct_grid_are_a_geometry_error(seg_case):
    g = seg_case.ct.geometry
    for name, geometry in {
        "half a slice": stage_values.Geometry((g.origin[0], g.origin[1], g.origin[2] + 0.5 * g.spacing[2]), g.spacing),
        "pixel spacing": stage_values.Geometry(g.origin, (g.spacing[0] * 1.1, g.spacing[1], g.spacing[2])),
        "orientation": stage_values.Geometry(g.origin, g.spacing, (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)),
    }.items():
        ct = stage_values.CTVolume(seg_case.ct.hu, geometry, seg_case.ct.series_uid)
        with pytest.raises(DeepCACError) as err:
            anatomy_from_seg(LocalFile(seg_case.seg), ct)
        assert err.value.code is ErrorCode.E_ANATOMY_GEOMETRY, name
    short = stage_values.CTVolume(seg_case.ct.hu[:, :-1], g, seg_case.ct.series_uid)
    with pytest.raises(DeepCACError) as err:
        anatomy_from_seg(LocalFile(seg_case.seg), short)
    assert err.value.code is ErrorCode.E_ANATOMY_GEOMETRY


@pytest.mark.parametrize("keep", [0.5, 0.99, 0.002])
def test_a_truncated_object_is_a_read_error(seg_case, seg_copy, keep):
    data = seg_copy.read_bytes()
    seg_copy.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(DeepCACError) as err:
        TotalSegmentatorAnatomy().anatomy(
            seg_case.ref({"SeriesInstanceUID": "a", "location": str(seg_copy)}), seg_case.ct
        )
    assert err.value.code is ErrorCode.E_ANATOMY_READ


def test_a_failing_range_read_is_a_read_error_and_nothing_silent(seg_case):
    class Failing(LocalFile):
        def read(self, offset, length):
            if offset > 100_000:  # the header reads fine, the frames do not
                raise DeepCACError(ErrorCode.E_ANATOMY_READ, "range read failed: disk gone")
            return super().read(offset, length)

    with pytest.raises(DeepCACError) as err:
        anatomy_from_seg(Failing(seg_case.seg), seg_case.ct)
    assert err.value.code is ErrorCode.E_ANATOMY_READ and "disk gone" in err.value.message
    missing = {"SeriesInstanceUID": "a", "location": str(seg_case.root / "no-such.dcm")}
    with pytest.raises(DeepCACError) as err:
        TotalSegmentatorAnatomy().anatomy(seg_case.ref(missing), seg_case.ct)
    assert err.value.code is ErrorCode.E_ANATOMY_READ


def test_a_file_that_is_not_a_seg_is_a_read_error(seg_case):
    ct_file = next(seg_case.ct_folder.glob("*.dcm"))
    with pytest.raises(DeepCACError) as err:
        seg_reader.read_header(LocalFile(ct_file))
    assert err.value.code is ErrorCode.E_ANATOMY_READ


def test_the_bytes_held_count_against_the_cache_cap(seg_case, tmp_path):
    from deepcac2.pipeline.sources import LocalSource, SeriesCache

    cache = SeriesCache(LocalSource(tmp_path), tmp_path / "cache", max_bytes=10)  # room for nothing
    with pytest.raises(DeepCACError) as err:
        anatomy_from_seg(LocalFile(seg_case.seg), seg_case.ct, cache=cache)
    assert err.value.code is ErrorCode.E_CACHE_FULL
    cache = SeriesCache(LocalSource(tmp_path), tmp_path / "cache", max_bytes=1 << 30)
    anatomy_from_seg(LocalFile(seg_case.seg), seg_case.ct, cache=cache)
    assert 0 < cache.peak_bytes < LocalFile(seg_case.seg).size() and cache.used_bytes == 0


def _upload(s3, seg_path) -> dict:
    import uuid

    crdc = str(uuid.uuid4())
    s3.put_object(Bucket="idc-open-data", Key=f"{crdc}/{uuid.uuid4()}.dcm", Body=seg_path.read_bytes())
    uid = str(pydicom.dcmread(seg_path, stop_before_pixels=True).SeriesInstanceUID)
    return {"SeriesInstanceUID": uid, "crdc_series_uuid": crdc, "series_aws_url": f"s3://idc-open-data/{crdc}/*"}


class _Source:
    def __init__(self, endpoint_url):
        self.endpoint_url, self.bucket = endpoint_url, None


class _Cache:
    """What the provider uses of a worker's SeriesCache: its source's endpoint."""

    def __init__(self, endpoint_url):
        self.source = _Source(endpoint_url)


def test_the_same_path_reads_the_seg_from_s3_by_range(seg_case, s3, s3_endpoint):
    from deepcac2.pipeline.totalseg.byte_ranges import s3_series_object

    candidate = _upload(s3, seg_case.seg)
    source = s3_series_object(candidate["series_aws_url"], s3_endpoint, candidate["crdc_series_uuid"])
    anatomy = anatomy_from_seg(source, seg_case.ct, structures=())
    local = anatomy_from_seg(LocalFile(seg_case.seg), seg_case.ct, structures=())
    for name, mask in local.masks().items():
        np.testing.assert_array_equal(anatomy.masks()[name], mask, err_msg=name)
    assert source.size() == seg_case.seg.stat().st_size and source.bytes_read < source.size()
    # the provider, as a worker runs it (the endpoint from its fetch cache's source)
    a = TotalSegmentatorAnatomy(structures=()).anatomy(seg_case.ref(candidate), seg_case.ct, cache=_Cache(s3_endpoint))
    np.testing.assert_array_equal(a.heart, local.heart)
    assert a.provenance.seg_series_uid == candidate["SeriesInstanceUID"]


def test_s3_failures_are_coded(seg_case, s3, s3_endpoint):
    import socket
    import uuid

    from deepcac2.pipeline.totalseg.byte_ranges import S3Object, s3_series_object

    missing = {
        "SeriesInstanceUID": "a",
        "crdc_series_uuid": str(uuid.uuid4()),
        "series_aws_url": "s3://idc-open-data/x/*",
    }
    with pytest.raises(DeepCACError) as err:  # no object under the series prefix
        TotalSegmentatorAnatomy().anatomy(seg_case.ref(missing), seg_case.ct, cache=_Cache(s3_endpoint))
    assert err.value.code is ErrorCode.E_ANATOMY_READ and "found 0" in err.value.message
    with pytest.raises(DeepCACError) as err:  # a key that is not there: HTTP 404
        S3Object(s3_endpoint, "idc-open-data", "nope/nope.dcm", size=100).read(0, 10)
    assert err.value.code is ErrorCode.E_ANATOMY_READ and "404" in err.value.message
    candidate = _upload(s3, seg_case.seg)
    source = s3_series_object(candidate["series_aws_url"], s3_endpoint, candidate["crdc_series_uuid"])
    with pytest.raises(DeepCACError) as err:  # a range past the end: short read
        source.read(source.size() - 10, 100)
    assert err.value.code is ErrorCode.E_ANATOMY_READ and "truncated" in err.value.message
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DeepCACError) as err:  # nothing listens: a retry may help
        S3Object(f"http://127.0.0.1:{port}", "idc-open-data", "k", size=100).read(0, 10)
    assert err.value.code is ErrorCode.E_FETCH_TRANSIENT


def test_the_calcium_benchmark_anatomy_is_what_the_provider_reads_by_default(seg_case):
    """``dev.classical_evaluate.totalseg_anatomy`` (the calcium bench's anatomy) holds exactly what the
    provider reads by default from the phantom's SEG: the same masks, the same structures, the slab."""
    from deepcac2.pipeline.dev.classical_evaluate import totalseg_anatomy

    read = anatomy_from_seg(LocalFile(seg_case.seg), seg_case.ct)
    bench = totalseg_anatomy(seg_case.phantom)
    assert set(bench.structures) == set(read.structures)
    for name in ("heart", "aorta", "pulmonary_artery"):
        np.testing.assert_array_equal(getattr(bench, name), getattr(read, name), err_msg=name)
    for name, mask in read.structures.items():
        np.testing.assert_array_equal(bench.structures[name], mask, err_msg=name)
