"""The TID 1500 SR: valid, readable by highdicom and dcmqi, and equal to the Parquet rows."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import highdicom as hd
import pyarrow.parquet as pq
import pytest
from pydicom.sr.codedict import codes
from pydicom.valuerep import format_number_as_ds

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.convert import convert_series
from deepcac2.pipeline.convert.series import write_series_tables
from deepcac2.pipeline.sr.content import measurement_groups

from . import synthetic
from .dicomtools import DCMQI_BIN, dciodvfy_errors


def _ds(x: float) -> float:
    return float(format_number_as_ds(x))


def _convert(ct, tmp_path: Path, *, calcium: bool = True, conventions=("deepcac",)):
    pred = synthetic.prediction(ct.shape, calcium=calcium)
    sc = {c: synthetic.scores(c, calcium=calcium) for c in conventions}
    converted = convert_series(ct, pred, sc, tmp_path / "out")
    tables = write_series_tables([converted], tmp_path / "tables")
    return converted, sc, {name: pq.read_table(p).to_pylist() for name, p in tables.items()}


def _groups(sr_path: Path) -> dict[str, hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations]:
    report = hd.sr.srread(sr_path).content
    return {str(g.tracking_identifier): g for g in report.get_volumetric_roi_measurement_groups()}


def _measured(group) -> dict[str, tuple[float, str]]:
    return {m.name.value: (float(m.value), m.unit.value) for m in group.get_measurements()}


def test_dciodvfy_has_no_errors(ct, tmp_path: Path, dciodvfy: str) -> None:
    for calcium in (True, False):
        converted, _, _ = _convert(ct, tmp_path / str(calcium), calcium=calcium)
        assert dciodvfy_errors(dciodvfy, converted.sr_path) == []


def test_highdicom_reads_back_the_parquet_numbers(ct, tmp_path: Path) -> None:
    converted, sc, tables = _convert(ct, tmp_path, conventions=("deepcac", "literature"))
    row = tables["cac_series"][0]
    groups = _groups(converted.sr_path)
    assert set(groups) == {f"{r} calcium [{c}]" for r in ("Coronary", "LAD", "RCA") for c in ("deepcac", "literature")}
    for conv in ("deepcac", "literature"):
        total = groups[f"Coronary calcium [{conv}]"]
        got = _measured(total)
        assert got["112058"] == (row[f"agatston_{conv}"], "1") == (_ds(sc[conv].agatston), "1")
        assert got["122660"] == (row[f"volume_mm3_{conv}"], "mm3") == (_ds(sc[conv].volume_mm3), "mm3")
        assert got["111038"] == (row[f"lesion_count_{conv}"], "{lesions}") == (2.0, "{lesions}")
        assert "122661" not in got and row[f"mass_mg_{conv}"] is None  # no calibration: mass unknown, not 0
        assert got["122657"] == (130.0, "[hnsf'U]")
        methods = {m.name.value: m.method.value for m in total.get_measurements() if m.method is not None}
        assert methods["112058"] == "112055"  # Agatston scoring method
        seg_ref = total.referenced_segment
        assert seg_ref.referenced_sop_instance_uid == row["seg_sop_instance_uid"]
        assert seg_ref.referenced_segment_numbers == [1]
        evaluations = {e.name.meaning: e.value.meaning for e in total.get_qualitative_evaluations()}
        assert evaluations == {
            "DeepCAC risk category": row[f"risk_deepcac_{conv}"],
            "Classic Agatston risk category": row[f"risk_classic_{conv}"],
            "CAC-DRS category": row[f"risk_cac_drs_{conv}"],
        }
        lad = groups[f"LAD calcium [{conv}]"]
        assert lad.referenced_segment.referenced_segment_numbers == [2]  # in the vessel SEG
        assert lad.referenced_segment.referenced_sop_instance_uid == row["vessel_seg_sop_instance_uid"]
        assert _measured(lad)["112058"][0] == _ds(sc[conv].per_vessel["LAD"].agatston)
    # every SR number is a measurements row with the same value
    by_key = {(m["trackingIdentifier"], m["Quantity"]["CodeValue"]): m["Value"] for m in tables["measurements"]}
    for name, g in groups.items():
        for code, (value, _) in _measured(g).items():
            assert by_key.pop((name, code)) == value
    assert by_key == {}


def test_sr_references_source_and_names_device(ct, tmp_path: Path) -> None:
    converted, _, tables = _convert(ct, tmp_path)
    sr = hd.sr.srread(converted.sr_path)
    assert sr.StudyInstanceUID == ct.study_uid
    (container,) = [c for c in sr.ContentSequence if c.ConceptNameCodeSequence[0].CodeValue == "111028"]
    (group,) = container.ContentSequence  # one series, one group
    images = [item for item in group.ContentSequence if item.ValueType == "IMAGE"]
    assert [i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in images] == [
        i.sop_instance_uid for i in ct.instances
    ]
    # entries are bare references: the optional per-image position is left out (library.py)
    assert not any("ContentSequence" in image for image in images)
    # shared descriptors: what highdicom gives for one image, less the position, with the loader's geometry
    shared = {
        item.ConceptNameCodeSequence[0].CodeValue: item for item in group.ContentSequence if item.ValueType != "IMAGE"
    }
    reference = hd.sr.ImageLibraryEntryDescriptors(ct.headers[0])
    want = {d.ConceptNameCodeSequence[0].CodeValue: d for d in reference}
    assert set(want) - set(shared) == {"110901", "110902", "110903"}
    geometric = {"111026", "111066", "112226", "112225", "111044"}  # spacings, thickness, orientation
    assert all(shared[code] == want[code] for code in shared if code not in geometric)
    number = {
        code: float(shared[code].MeasuredValueSequence[0].NumericValue) for code in ("111026", "111066", "112226")
    }
    assert number == {"111026": ct.geometry.spacing[0], "111066": ct.geometry.spacing[1], "112226": 2.5}
    devices = sr.content.get_observer_contexts(observer_type=codes.DCM.Device)
    attrs = devices[0].observer_identifying_attributes
    assert attrs.name == synthetic.CARD.name and attrs.model_name == synthetic.CARD.model_id
    roi = _groups(converted.sr_path)["Coronary calcium [deepcac]"]
    assert roi.referenced_segment.source_series_for_segmentation.UID == ct.series_uid


def test_zero_calcium_sr_says_zero(ct, tmp_path: Path) -> None:
    converted, _, tables = _convert(ct, tmp_path, calcium=False)
    got = _measured(_groups(converted.sr_path)["Coronary calcium [deepcac]"])
    assert got["112058"] == (0.0, "1") and got["122660"] == (0.0, "mm3") and got["111038"] == (0.0, "{lesions}")
    assert tables["cac_series"][0]["agatston_deepcac"] == 0.0
    assert tables["cac_series"][0]["risk_deepcac_deepcac"] == "very low"
    assert tables["cac_lesions"] == []
    # one spelling of the risk label everywhere: the SR's coded value is the table's label
    group = _groups(converted.sr_path)["Coronary calcium [deepcac]"]
    evaluations = {e.name.meaning: e.value for e in group.get_qualitative_evaluations()}
    deepcac = evaluations["DeepCAC risk category"]
    assert deepcac.value == deepcac.meaning == tables["cac_series"][0]["risk_deepcac_deepcac"]


def test_tid1500reader_agrees_with_measurements(ct, tmp_path: Path) -> None:
    converted, _, tables = _convert(ct, tmp_path)
    meta = tmp_path / "sr.json"
    cmd = [str(DCMQI_BIN / "tid1500reader"), "--inputDICOM", str(converted.sr_path), "--outputMetadata", str(meta)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    doc = json.loads(meta.read_text())
    got = {
        (g["TrackingIdentifier"], g["ReferencedSegment"], item["quantity"]["CodeValue"]): float(item["value"])
        for g in doc["Measurements"]
        for item in g["measurementItems"]
    }
    want = {
        (m["trackingIdentifier"], m["segmentationSegmentNumber"], m["Quantity"]["CodeValue"]): m["Value"]
        for m in tables["measurements"]
    }
    assert got == want


def test_mass_is_reported_when_known(ct, tmp_path: Path) -> None:
    pred = synthetic.prediction(ct.shape)
    converted = convert_series(ct, pred, {"deepcac": synthetic.scores(mass=12.3456)}, tmp_path)
    got = _measured(_groups(converted.sr_path)["Coronary calcium [deepcac]"])
    assert got["122661"] == (12.3456, "mg")
    assert converted.rows["cac_series"][0]["mass_mg_deepcac"] == 12.3456


@pytest.mark.parametrize(
    "bad",
    [
        lambda s: s.__class__(**{**s.__dict__, "agatston": float("nan")}),
        lambda s: s.__class__(**{**s.__dict__, "categories": {"deepcac": "enormous"}}),
        lambda s: s.__class__(**{**s.__dict__, "convention": "literature"}),
    ],
)
def test_bad_scores_are_refused(bad) -> None:
    with pytest.raises(DeepCACError) as e:
        measurement_groups({"deepcac": bad(synthetic.scores())}, has_vessel_segments=True, kvp=120)
    assert e.value.code is ErrorCode.E_SR_WRITE


def test_vessel_scores_need_vessel_segments() -> None:
    with pytest.raises(DeepCACError) as e:
        measurement_groups({"deepcac": synthetic.scores()}, has_vessel_segments=False, kvp=120)
    assert e.value.code is ErrorCode.E_SR_WRITE


def test_convention_and_bands_are_recorded(ct, tmp_path: Path) -> None:
    import dataclasses

    import numpy as np

    sc = synthetic.scores()
    sc = dataclasses.replace(sc, convention_params={**sc.convention_params, "kvp_adjusted": True, "k": np.int64(3)})
    ct.kvp = 80.0  # Gräni 80 kV row: 177 / 271 / 408 / 544
    converted = convert_series(ct, synthetic.prediction(ct.shape), {"deepcac": sc}, tmp_path)
    group = _groups(converted.sr_path)["Coronary calcium [deepcac]"]
    # TID 1411 puts the TID 4019 items (name, version, parameters) directly in the group
    items = group[0].ContentSequence
    names = [i.TextValue for i in items if i.ConceptNameCodeSequence[0].CodeValue == "111001"]
    assert names == ["DeepCAC2(deepcac2-test 1.2.3)"]
    params = [i.TextValue for i in items if i.ConceptNameCodeSequence[0].CodeValue == "111002"]
    assert params[0] == "convention=deepcac"
    assert json.loads(params[1].removeprefix("params=")) == {
        **synthetic.scores().convention_params,
        "kvp_adjusted": True,
        "k": 3,
    }
    assert params[2] == "hu_bands=177,271,408,544"
    assert _measured(group)["122657"] == (177.0, "[hnsf'U]")
    assert json.loads(converted.rows["cac_series"][0]["conventions_json"])["deepcac"]["k"] == 3


def test_unserialisable_convention_parameter_is_refused(ct, tmp_path: Path) -> None:
    import dataclasses

    sc = dataclasses.replace(synthetic.scores(), convention_params={"callback": object()})
    with pytest.raises(DeepCACError) as e:
        convert_series(ct, synthetic.prediction(ct.shape), {"deepcac": sc}, tmp_path)
    assert e.value.code is ErrorCode.E_SR_WRITE
