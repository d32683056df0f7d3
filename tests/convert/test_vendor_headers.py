"""Real vendor headers (GE, Siemens, Philips, Toshiba) on a small synthetic series, in Implicit and
Explicit VR LE, with a malformed private element: the SEG and SR are written, and carry no private
element and nothing of the source outside the modules they must carry (``dicomout.source``)."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
import vendor_headers as vh
from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline import process
from deepcac2.pipeline.convert import convert_series
from deepcac2.pipeline.dicomout.source import carried_keywords, source_header
from deepcac2.pipeline.loader import load_series
from deepcac2.pipeline.stage_values import SeriesRef

from . import synthetic


def _private_tags(ds: Dataset) -> list[str]:
    found: list[str] = []
    ds.walk(lambda _d, e: found.append(str(e.tag)) if e.tag.is_private else None)
    return found


@pytest.fixture(scope="module")
def synthetic_files(tmp_path_factory) -> list[Path]:
    return synthetic.write_series(synthetic.ct_datasets(), tmp_path_factory.mktemp("synth"))


@pytest.mark.shared_data
@pytest.mark.parametrize("syntax", sorted(vh.SYNTAXES))
@pytest.mark.parametrize("vendor", sorted(vh.VENDOR_FILES))
def test_vendor_header_writes_clean_seg_and_sr(vendor, syntax, synthetic_files, shared_data, tmp_path):
    header = vh.vendor_header(vendor, shared_data)
    folder = tmp_path / "ct"
    vh.write_transplanted(header, synthetic_files, folder, syntax)
    raw = pydicom.dcmread(next(folder.iterdir()))
    assert raw.file_meta.TransferSyntaxUID == vh.SYNTAXES[syntax]
    with pytest.raises(Exception, match="(?i)bytes|length"):  # the element that broke the SR writer
        _ = raw[vh.MALFORMED_TAG].value
    ct = load_series(folder)
    shape = ct.shape
    converted = convert_series(ct, synthetic.prediction(shape), {"deepcac": synthetic.scores()}, tmp_path / "out")
    carried = set(carried_keywords())
    source_keywords = {keyword_for_tag(t) for t in raw.keys()} - {""}  # tags only: parsing may raise
    for path in [*converted.seg_paths.values(), converted.sr_path]:
        out = pydicom.dcmread(path, stop_before_pixels=True)
        assert _private_tags(out) == [], (vendor, syntax, path.name, _private_tags(out))
        # nothing of the source at the root but the carried modules (what highdicom sets itself aside)
        foreign = {e.keyword for e in out if e.keyword in source_keywords} - carried - _WRITER_OWN
        assert not foreign, (vendor, syntax, path.name, sorted(foreign))
        assert out.PatientSex == (raw.get("PatientSex") or "")
        assert out.BodyPartExamined == "CHEST"  # ours, never the source's (a head phantom says HEAD)


#: root attributes our writers set themselves (same keyword as a source attribute, not copied from it)
_WRITER_OWN = {
    "ImageType", "InstanceNumber", "SeriesNumber", "SeriesDescription", "ContentDate", "ContentTime",
    "SeriesDate", "SeriesTime", "InstanceCreationDate", "InstanceCreationTime", "ReferencedImageSequence",
    "SourceImageSequence", "SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated", "BitsStored",
    "HighBit", "PixelRepresentation", "LossyImageCompression", "ReferencedSeriesSequence",
    "SharedFunctionalGroupsSequence", "ContentLabel", "ContentDescription", "ContentCreatorName",
    "ContributingEquipmentSequence", "AcquisitionContextSequence", "SoftwareVersions", "DeviceSerialNumber",
    "ManufacturerModelName", "Manufacturer", "SpecificCharacterSet", "ImageComments",
    "BodyPartExamined",  # CHEST, ours (issue 22), whatever the source says
    "ReferencedPerformedProcedureStepSequence",  # SR Document General, Type 2: highdicom writes it empty
}  # fmt: skip


def test_missing_type2_attributes_are_written_empty(tmp_path):
    datasets = synthetic.ct_datasets()
    for ds in datasets:  # de-identification often removes these
        for keyword in ("PatientSex", "PatientBirthDate", "StudyID", "AccessionNumber", "ReferringPhysicianName"):
            delattr(ds, keyword)
    ct = synthetic.ct_volume(datasets)
    converted = convert_series(ct, synthetic.prediction(ct.shape), {"deepcac": synthetic.scores()}, tmp_path)
    for path in [converted.seg_path, converted.sr_path]:
        out = pydicom.dcmread(path, stop_before_pixels=True)
        assert "PatientSex" in out and out.PatientSex == ""
        assert "StudyID" in out and out.StudyID == ""


def test_source_header_drops_private_and_unparsable_elements():
    ds = synthetic.ct_datasets(n=1)[0]
    ds.add_new(0x00091010, "LO", "GEMS_ACQU_01")
    ds.add_new(0x00091001, "LO", "private")
    weight = Tag(0x00101030)  # PatientWeight, a DS that does not parse: a Type 3 attribute is left out
    ds._dict[weight] = RawDataElement(weight, "DS", 12, b"not a number", 0, False, True)
    clean = source_header(ds)
    assert not any(e.tag.is_private for e in clean)
    assert "PixelData" not in clean and "RescaleIntercept" not in clean  # outside the carried modules
    assert "PatientWeight" not in clean
    assert clean.PatientID == ds.PatientID and clean.FrameOfReferenceUID == ds.FrameOfReferenceUID


def test_no_frame_of_reference_is_refused_before_any_work(tmp_path):
    datasets = synthetic.ct_datasets()
    for ds in datasets:
        del ds.FrameOfReferenceUID
    folder = tmp_path / "ct"
    synthetic.write_series(datasets, folder)
    ref = SeriesRef(datasets[0].SeriesInstanceUID, location=str(folder))
    with pytest.raises(DeepCACError) as err:
        process.load(ref, folder)
    assert err.value.code is ErrorCode.E_NO_FRAME_OF_REFERENCE
    ct = synthetic.ct_volume(synthetic.ct_datasets())
    ct.frame_of_reference_uid = None
    for h in ct.headers:
        del h.FrameOfReferenceUID
    with pytest.raises(DeepCACError) as err:
        convert_series(ct, synthetic.prediction(ct.shape), {"deepcac": synthetic.scores()}, tmp_path / "out")
    assert err.value.code is ErrorCode.E_NO_FRAME_OF_REFERENCE


def test_identity_removed_without_a_method_states_that_the_source_did_not_say():
    from deepcac2.pipeline.dicomout.source import DEIDENTIFICATION_NOT_STATED

    ds = synthetic.ct_datasets(n=1)[0]
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = ""  # seen in real de-identified headers: Type 1C left empty
    assert source_header(ds).DeidentificationMethod == DEIDENTIFICATION_NOT_STATED
    ds.DeidentificationMethod = "CTP: DICOM-S142-Baseline"
    assert source_header(ds).DeidentificationMethod == "CTP: DICOM-S142-Baseline"
