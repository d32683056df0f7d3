"""Every real series in ../shared/data through load, anatomy, the classical model, scoring and convert:
each SEG and SR is valid (dciodvfy) and dcmqi reads back the same masks and numbers. Includes a real
series whose slices say SpacingBetweenSlices = -5 (derived here, written to tmp), as seen in real data."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline import process
from deepcac2.pipeline.convert import convert_series
from deepcac2.pipeline.loader import load_series
from deepcac2.pipeline.models.base import load_model
from deepcac2.pipeline.stage_values import SeriesRef

from .dicomtools import check_written_outputs

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]
CONVENTIONS = ("deepcac", "literature")
SOURCE = "lung-pet-ct-dx/Lung_Dx-A0001/2.000000-5mm-40805"


def negative_spacing_series(shared_data: Path, out: Path) -> Path:
    """A real series whose every slice carries SpacingBetweenSlices = -(its spacing); nothing else changed."""
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted((shared_data / SOURCE).iterdir()):
        ds = pydicom.dcmread(path)
        ds.SpacingBetweenSlices = -5.0
        ds.save_as(out / path.name)
    return out


def _series(shared_data: Path) -> list[Path]:
    return sorted(p.parent for p in shared_data.rglob("*.dcm") if p.name in ("1-01.dcm", "01.dcm")) + sorted(
        {p.parent for p in (shared_data / "jpeg2000-empty-uids").rglob("*") if p.is_file()}
    )


def _convert(folder: Path, tmp: Path):
    ct = load_series(folder)
    ref = SeriesRef(ct.series_uid, location=str(folder))
    prediction = process.infer(load_model("classical"), ct, process.anatomy(ref, ct, "classical"))
    scores = process.score(ct, prediction, CONVENTIONS)
    converted = convert_series(ct, prediction, scores, tmp / "out", series_ref=ref)
    return ct, prediction, converted


def test_negative_spacing_between_slices(shared_data: Path, tmp_path: Path, dciodvfy: str) -> None:
    folder = negative_spacing_series(shared_data, tmp_path / "neg")
    assert {float(pydicom.dcmread(p).SpacingBetweenSlices) for p in folder.iterdir()} == {-5.0}
    ct, prediction, converted = _convert(folder, tmp_path)
    seg = pydicom.dcmread(converted.seg_path, stop_before_pixels=True)
    measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert float(measures.SpacingBetweenSlices) == pytest.approx(ct.geometry.spacing[2]) and ct.geometry.spacing[2] > 0
    sr = pydicom.dcmread(converted.sr_path)
    library = next(c for c in sr.ContentSequence if c.ConceptNameCodeSequence[0].CodeValue == "111028")
    spacing = [
        float(i.MeasuredValueSequence[0].NumericValue)
        for g in library.ContentSequence
        for i in g.ContentSequence
        if i.ValueType == "NUM" and i.ConceptNameCodeSequence[0].CodeValue == "112226"
    ]
    assert spacing == [pytest.approx(ct.geometry.spacing[2])]
    check_written_outputs(converted, prediction, converted.rows["measurements"], ct, tmp_path, dciodvfy)


def test_every_real_series(shared_data: Path, tmp_path: Path, dciodvfy: str) -> None:
    written, refused = [], {}
    for i, folder in enumerate(_series(shared_data)):
        try:
            ct, prediction, converted = _convert(folder, tmp_path / str(i))
        except DeepCACError as exc:
            refused[folder.name] = exc.code
            continue
        check_written_outputs(converted, prediction, converted.rows["measurements"], ct, tmp_path / str(i), dciodvfy)
        written.append(folder.name)
    assert len(written) == 4  # the four Lung-PET-CT-Dx series
    # the bad-input cases are refused with a code, never converted: the tilted head CT by the loader,
    # the 20-slice series without UIDs (not a chest) by the model or, were a heart found, the converter
    assert set(refused) == {"ge-gantry-tilt", "jpeg2000-empty-uids"}
    assert refused["ge-gantry-tilt"] is ErrorCode.E_GEOMETRY_TILT
    assert refused["jpeg2000-empty-uids"] in (ErrorCode.E_NO_HEART, ErrorCode.E_UID_INVALID)
