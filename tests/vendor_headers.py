"""Real CT headers of four vendors, transplanted onto synthetic slices (importable as ``vendor_headers``).

GE, Siemens and Philips headers are read from real files in ``../shared/data``. No Toshiba/Canon
CT file is there: ``toshiba_header`` rebuilds one from a published ``dcmdump`` of a real Toshiba
Aquilion ONE CT slice (github.com/LiangHe266/Biotornadohl, ``app/scripts/pacs/src20160227/dump.txt``):
its standard attributes and its ``TOSHIBA_MEC_CT3`` private block (7005,xxxx) with the dumped bytes;
names, dates and institution are replaced by neutral values.

``transplant`` keeps everything of the vendor header (private blocks included) except what places
and describes the synthetic pixels: identity, geometry and the Image Pixel module come from the
synthetic slice, so the loader sees a clean chest with a vendor's header. ``MALFORMED`` adds the
element that broke the SR writer: Philips (01F1,1026) holding the text ``0.15`` where pydicom's
private dictionary says FD.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pydicom
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

#: vendor -> a file under ../shared/data whose header is transplanted (None: built here)
VENDOR_FILES: dict[str, str | None] = {
    "ge": "ge-gantry-tilt",
    "siemens-a0002": "lung-pet-ct-dx/Lung_Dx-A0002",
    "siemens-lung1": "nsclc-radiomics/LUNG1-001",
    "philips-ingenuity": "philips-private-tags",
    "philips-a0001": "lung-pet-ct-dx/Lung_Dx-A0001",
    "toshiba": None,
}
SYNTAXES = {"implicit": ImplicitVRLittleEndian, "explicit": ExplicitVRLittleEndian}

#: what the synthetic slice keeps: identity, geometry, acquisition values the loader checks
FROM_SYNTH = (
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "FrameOfReferenceUID",
    "PatientID",
    "Modality",
    "ImageType",
    "SeriesNumber",
    "InstanceNumber",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "SliceLocation",
    "SliceThickness",
    "SpacingBetweenSlices",
    "GantryDetectorTilt",
    "StudyDate",
    "SeriesDate",
    "KVP",
)
#: Philips Pitch (ELSCINT1): pydicom's private dictionary says FD; written as 4 bytes of text
MALFORMED_TAG = Tag(0x01F1, 0x1026)


def first_file(folder: Path) -> Path:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".dcm", ""))[0]


def vendor_header(vendor: str, shared_data: Path | None) -> Dataset:
    """The header (no pixels) of one vendor's real CT slice."""
    rel = VENDOR_FILES[vendor]
    if rel is None:
        return toshiba_header()
    assert shared_data is not None
    return pydicom.dcmread(first_file(shared_data / rel), stop_before_pixels=True)


def toshiba_header() -> Dataset:
    """A Toshiba Aquilion ONE CT header after the published dump (see the module docstring)."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.Modality = "CT"
    ds.Manufacturer = "TOSHIBA"
    ds.InstitutionName = "ID_INSTITUTION"
    ds.ReferringPhysicianName = "-"
    ds.StationName = "ID_STATION"
    ds.SeriesDescription = " Body 1.0"
    ds.InstitutionalDepartmentName = "ID_DEPARTMENT"
    ds.ManufacturerModelName = "Aquilion ONE"
    ds.PatientName = "ANON"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.PatientAge = "059Y"
    ds.BodyPartExamined = "CHEST"
    ds.ScanOptions = "HELICAL_CT"
    ds.DataCollectionDiameter = "500.00"
    ds.DeviceSerialNumber = "2EA1052200"
    ds.SoftwareVersions = "V4.74ER004"
    ds.ReconstructionDiameter = "400.39"
    ds.TableHeight = "+116.00"
    ds.RotationDirection = "CW"
    ds.ExposureTime = 500
    ds.XRayTubeCurrent = 227
    ds.Exposure = 113
    ds.FilterType = "LARGE"
    ds.GeneratorPower = 20
    ds.FocalSpots = ["1.6", "1.4"]
    ds.ConvolutionKernel = "FC07"
    ds.PatientPosition = "FFS"
    ds.SpiralPitchFactor = 0.87
    ds.ExposureModulationType = "3D"
    ds.EstimatedDoseSaving = 28.35
    ds.CTDIvol = 9.8
    ds.StudyID = "1682240"
    ds.AcquisitionNumber = 6
    ds.PatientOrientation = ["L", "P"]
    ds.PositionReferenceIndicator = ""
    ds.ImageComments = "Body"
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    ds.add_new(0x70050010, "LO", "TOSHIBA_MEC_CT3")
    for tag, raw in {
        0x70051006: b"00:47.2 ", 0x70051007: b"258\\256 ", 0x70051008: b"0.5 ", 0x7005100A: b"+43.50",
        0x7005100B: b"AIDR 3D STD ", 0x7005100D: b"CHEST ", 0x7005100E: b"IMG ", 0x7005100F: b"FF",
        0x70051011: b"Vol.", 0x70051012: b"SU", 0x70051013: b"\x01\x00", 0x7005101B: b"FC07",
        0x70051022: b"0.80", 0x70051023: b"0.870 ", 0x70051030: b"CT",
        0x70051040: b"33333\xa3n@", 0x70051063: b"\x9a\x99\x99\x99\x99\x99#@",
    }.items():  # fmt: skip
        ds.add_new(tag, "UN", raw)
    return ds


def transplant(vendor: Dataset, synthetic: Dataset, syntax: str, *, malformed: bool = True) -> Dataset:
    """``vendor``'s header over ``synthetic``'s pixels, identity and geometry, encoded in ``syntax``."""
    out = copy.deepcopy(vendor)
    for tag in list(out.keys()):  # tags only: parsing a raw element may raise (that is the point)
        if tag.group in (0x0028, 0x7FE0) or keyword_for_tag(tag) in FROM_SYNTH:
            del out[tag]
    for elem in synthetic:
        if elem.tag.group in (0x0028, 0x7FE0) or elem.keyword in FROM_SYNTH:
            out[elem.tag] = copy.deepcopy(elem)
    if malformed:
        if Tag(0x01F10010) not in out:
            out.add_new(0x01F10010, "LO", "ELSCINT1")
        # text where the dictionary says FD: Implicit VR writes it as DS text, as Philips does; in
        # Explicit VR it travels as UN, which pydicom reads back with the dictionary's VR (FD)
        if syntax == "implicit":
            out.add_new(MALFORMED_TAG, "DS", "0.15")
        else:
            out.add_new(MALFORMED_TAG, "UN", b"0.15")
    out.file_meta = copy.deepcopy(synthetic.file_meta)
    out.file_meta.TransferSyntaxUID = SYNTAXES[syntax]
    return out


def write_transplanted(
    vendor: Dataset, synthetic_files: list[Path], folder: Path, syntax: str, uids: dict[str, str] | None = None
) -> list[Path]:
    """Each synthetic file with ``vendor``'s header, in ``syntax``, into ``folder``; ``uids`` renames series/study/SOPs."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, path in enumerate(sorted(synthetic_files)):
        synthetic = pydicom.dcmread(path)
        for keyword, value in (uids or {}).items():
            if keyword == "SOPInstanceUID":  # one UID per slice, derived from the given one
                value = generate_uid(entropy_srcs=[value, str(k)])
            setattr(synthetic, keyword, value)
        if uids and "SOPInstanceUID" in uids:
            synthetic.file_meta.MediaStorageSOPInstanceUID = synthetic.SOPInstanceUID
        ds = transplant(vendor, synthetic, syntax)
        target = folder / f"{k:04d}.dcm"
        ds.save_as(target, enforce_file_format=True)
        paths.append(target)
    return paths
