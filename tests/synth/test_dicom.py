"""Written series: valid DICOM (dciodvfy), NLST-like headers, read back by pydicom and SimpleITK."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000Lossless, RLELossless

from deepcac2.errors import DeepCACError
from deepcac2.pipeline.synth.dicom_writer import write_localizer, write_series
from deepcac2.pipeline.synth.nlst_headers import SCANNERS, study_meta
from deepcac2.pipeline.synth.phantom import PlaqueSpec, build_chest
from deepcac2.pipeline.synth.qrm import QRMSpec, build_qrm

from .phantoms import small_spec

#: name -> write_series keyword arguments
ENCODINGS = {
    "unsigned": {},
    "implicit": {"transfer_syntax": ImplicitVRLittleEndian},
    "signed": {"signed": True},
    "rle": {"transfer_syntax": RLELossless},
    "jpeg2000": {"transfer_syntax": JPEG2000Lossless, "signed": True},
    "slope": {"rescale": (0.5, -1024.5)},
}


@pytest.fixture(scope="module")
def chest():
    spec = small_spec(
        rows=96, cols=112, pixel_spacing_mm=3.0, n_slices=20, plaques=(PlaqueSpec("LAD", 6.0, 700, 0.3),), kvp=140
    )
    return build_chest(spec)


@pytest.fixture(scope="module")
def written(chest, tmp_path_factory):
    root = tmp_path_factory.mktemp("synth_dicom")
    scanner = SCANNERS[5]
    meta = study_meta("test", 0, 1, 2, scanner, scanner.kernels[0])
    out = {}
    for n, (name, kw) in enumerate(ENCODINGS.items()):
        out[name] = write_series(chest, meta.with_series(name, 10 + n), root / name, **kw)
    out["localizer"] = write_localizer(chest, meta.with_series("loc", 1, image_code="OPL"), root / "localizer")
    qrm = build_qrm(QRMSpec(rows=128, cols=128, n_slices=8, pixel_spacing_mm=0.8))
    out["qrm"] = write_series(qrm, meta.with_series("qrm", 30), root / "qrm")
    return meta, out


def dciodvfy_errors(exe: str, path: Path) -> list[str]:
    proc = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("Error")]


@pytest.mark.parametrize("name", [*ENCODINGS, "localizer", "qrm"])
def test_dciodvfy_finds_no_errors(written, name, dciodvfy):
    paths = written[1][name]
    for path in {paths[0], paths[len(paths) // 2]}:
        assert dciodvfy_errors(dciodvfy, path) == [], path


def _read_hu(paths: list[Path]) -> tuple[np.ndarray, list[pydicom.Dataset]]:
    datasets = sorted((pydicom.dcmread(p) for p in paths), key=lambda d: float(d.ImagePositionPatient[2]))
    hu = np.stack([d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in datasets])
    return hu, datasets


@pytest.mark.parametrize("name", list(ENCODINGS))
def test_pydicom_reads_back_the_hu_and_geometry(chest, written, name):
    hu, datasets = _read_hu(written[1][name])
    assert np.array_equal(hu, chest.hu)
    g = chest.geometry
    first = datasets[0]
    assert [float(v) for v in first.ImagePositionPatient] == pytest.approx(list(g.origin), abs=1e-4)
    assert [float(v) for v in first.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    assert [float(v) for v in first.PixelSpacing] == pytest.approx([g.spacing[1], g.spacing[0]])
    z = [float(d.ImagePositionPatient[2]) for d in datasets]
    assert np.diff(z) == pytest.approx([g.spacing[2]] * (len(z) - 1))
    assert float(first.SliceThickness) == chest.slice_thickness_mm
    assert int(first.KVP) == 140
    assert first.CalciumScoringMassFactorPatient == pytest.approx(0.8)
    assert first.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert first.file_meta.TransferSyntaxUID == ENCODINGS[name].get("transfer_syntax", ExplicitVRLittleEndian)
    if name == "signed":
        assert first.PixelRepresentation == 1
    if name == "unsigned":
        assert first.PixelRepresentation == 0 and float(first.RescaleIntercept) == -1024


@pytest.mark.parametrize("name", ["unsigned", "signed", "rle", "jpeg2000", "slope"])
def test_simpleitk_reads_back_the_intended_geometry(chest, written, name):
    folder = str(written[1][name][0].parent)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(folder))
    image = reader.Execute()
    g = chest.geometry
    assert image.GetSpacing() == pytest.approx(g.spacing)
    assert image.GetOrigin() == pytest.approx(g.origin, abs=1e-4)
    assert image.GetDirection() == pytest.approx(g.direction)
    assert np.array_equal(sitk.GetArrayFromImage(image), chest.hu)


def test_nlst_series_description_and_ids(chest, written):
    meta, out = written
    ds = pydicom.dcmread(out["unsigned"][0])
    fields = ds.SeriesDescription.split(",")
    assert len(fields) == 11
    assert fields[0] == "2" and fields[1] == "OPA" and fields[2] == "PHILIPS" and fields[4] == ds.ConvolutionKernel
    assert float(fields[6]) == float(ds.SliceThickness) and fields[7] == str(ds.KVP)
    assert ds.Manufacturer == "Philips" and ds.ConvolutionKernel in ("C", "D", "B")
    loc = pydicom.dcmread(out["localizer"][0])
    assert loc.SeriesDescription.split(",")[1] == "OPL" and "LOCALIZER" in loc.ImageType
    all_uids = []
    for paths in out.values():
        for p in paths:
            d = pydicom.dcmread(p, stop_before_pixels=True)
            for u in (d.SOPInstanceUID, d.SeriesInstanceUID, d.StudyInstanceUID, d.FrameOfReferenceUID):
                assert UID(u).is_valid, u
            all_uids.append(d.SOPInstanceUID)
    assert len(set(all_uids)) == len(all_uids)


def test_writing_twice_gives_identical_bytes(chest, tmp_path):
    meta = study_meta("test", 7, 3, 0, SCANNERS[0], "STANDARD")
    a = write_series(chest, meta, tmp_path / "a", transfer_syntax=RLELossless)
    b = write_series(chest, meta, tmp_path / "b", transfer_syntax=RLELossless)
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in a]
    assert digest == [hashlib.sha256(p.read_bytes()).hexdigest() for p in b]
    other = study_meta("test", 8, 3, 0, SCANNERS[0], "STANDARD")
    assert other.series_uid != meta.series_uid and other.study_uid != meta.study_uid


def test_unrepresentable_rescale_is_refused(chest, tmp_path):
    meta = study_meta("test", 0, 1, 0, SCANNERS[0], "STANDARD")
    with pytest.raises(DeepCACError):
        write_series(chest, meta, tmp_path, rescale=(2.0, -1024.0))  # odd HU cannot be stored at slope 2
