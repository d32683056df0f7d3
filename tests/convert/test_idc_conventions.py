"""Aortic calcium, the TotalSegmentator reference, and what IDC's views would read from our SR."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pydicom
import pytest

from deepcac2.pipeline.anatomy.base import Anatomy, AnatomyProvenance
from deepcac2.pipeline.convert import convert_series
from deepcac2.pipeline.convert.series import write_series_tables
from deepcac2.pipeline.scoring.engine import score_ct
from deepcac2.pipeline.sr.content import ds_value
from deepcac2.qa.idc_views import qualitative_measurements, quantitative_measurements

from . import synthetic
from .dicomtools import DCMQI_BIN, dciodvfy_errors

TS = AnatomyProvenance(
    "idc-totalsegmentator", "TotalSegmentator v1.5.6", "1.2.840.99.7", "1.2.840.99.7.1", "1.2.840.10008.5.1.4.1.1.66.4"
)
CONVENTIONS = ("deepcac", "lessmann3d")


@pytest.fixture()
def calcified():
    """A CT whose coronary blobs and aortic plaque are 350 HU, and the prediction that marks them."""
    pred = synthetic.prediction((12, 64, 64), aortic=True)
    ct = synthetic.ct_volume(synthetic.ct_datasets(hot=pred.cac | pred.aortic))
    return ct, pred


def _convert(ct, pred, out: Path):
    scores = {c: score_ct(ct, pred.cac, convention=c, vessels=pred.vessels) for c in CONVENTIONS}
    converted = convert_series(ct, pred, scores, out / "dicom")
    tables = write_series_tables([converted], out / "tables")
    return converted, scores, {name: pq.read_table(p).to_pylist() for name, p in tables.items()}


def test_aortic_calcium_is_scored_with_the_same_conventions(calcified, tmp_path: Path, dciodvfy: str) -> None:
    ct, pred = calcified
    converted, _, tables = _convert(ct, pred, tmp_path)
    row = tables["cac_series"][0]
    for conv in CONVENTIONS:
        want = score_ct(ct, pred.aortic, convention=conv)  # the engine on the aortic mask alone
        assert want.agatston > 0
        assert row[f"tac_agatston_{conv}"] == ds_value(want.agatston)
        assert row[f"tac_volume_mm3_{conv}"] == ds_value(want.volume_mm3)
        assert row[f"tac_lesion_count_{conv}"] == want.lesion_count == 1
        assert row[f"tac_mass_mg_{conv}"] is None  # no calibration
        # the coronary columns did not take the aortic plaque
        assert row[f"agatston_{conv}"] == ds_value(score_ct(ct, pred.cac, convention=conv).agatston)
    assert row["tac_segment_number"] == 2
    sr = pydicom.dcmread(converted.sr_path)
    aortic = [
        r for r in quantitative_measurements(sr) if r["trackingIdentifier"] == "Thoracic aortic calcium [deepcac]"
    ]
    assert {r["segmentationSegmentNumber"] for r in aortic} == {2}
    assert {r["segmentationInstanceUID"] for r in aortic} == {row["seg_sop_instance_uid"]}
    assert {r["findingSite"]["CodeValue"] for r in aortic} == {"113262008"}  # SCT Thoracic aorta
    score = next(r for r in aortic if r["Quantity"]["CodeValue"] == "112058")
    assert score["Value"] == row["tac_agatston_deepcac"]
    for path in (*converted.seg_paths.values(), converted.sr_path):
        assert dciodvfy_errors(dciodvfy, path) == [], path.name


def test_idc_views_read_exactly_the_measurements_table(calcified, tmp_path: Path) -> None:
    ct, pred = calcified
    converted, scores, tables = _convert(ct, pred, tmp_path)
    sr = pydicom.dcmread(converted.sr_path)
    seg_series = {
        str(d.SOPInstanceUID): str(d.SeriesInstanceUID)
        for d in (pydicom.dcmread(p, stop_before_pixels=True) for p in converted.seg_paths.values())
    }
    viewed = quantitative_measurements(sr)
    for r in viewed:  # the view joins the SEG's own header for its series
        r["segmentationSeriesUID"] = seg_series[r["segmentationInstanceUID"]]
    ours = [{k: v for k, v in m.items() if k not in ("method", "convention")} for m in tables["measurements"]]

    def key(r):
        return (r["measurementGroup_number"], r["Quantity"]["CodeValue"])

    assert sorted(viewed, key=key) == sorted(ours, key=key)
    # every group kept (none lost to the views' inner joins), numbered from 0 without gaps
    numbers = sorted({r["measurementGroup_number"] for r in viewed})
    n_groups = sum(2 + len(s.per_vessel) for s in scores.values())  # coronary, each vessel scored, aortic
    assert numbers == list(range(n_groups))
    risks = {
        (r["trackingIdentifier"], r["Quantity"]["CodeMeaning"]): r["Value"]["CodeMeaning"]
        for r in qualitative_measurements(sr)
        if r["Quantity"]["CodingSchemeDesignator"] == "99DEEPCAC"
    }
    row = tables["cac_series"][0]
    for conv in CONVENTIONS:
        assert risks[(f"Coronary calcium [{conv}]", "DeepCAC risk category")] == row[f"risk_deepcac_{conv}"]
        assert risks[(f"Coronary calcium [{conv}]", "CAC-DRS category")] == row[f"risk_cac_drs_{conv}"]
    assert len(risks) == 3 * len(CONVENTIONS)  # only the all-coronary groups carry categories


def test_a_view_drops_a_group_without_its_finding_site(calcified, tmp_path: Path) -> None:
    """The emulation is strict the way IDC's inner joins are: remove the finding site, lose the group."""
    ct, pred = calcified
    converted, _, _ = _convert(ct, pred, tmp_path)
    sr = pydicom.dcmread(converted.sr_path)
    n = len({r["measurementGroup_number"] for r in quantitative_measurements(sr)})
    container = next(c for c in sr.ContentSequence if c.ConceptNameCodeSequence[0].CodeValue == "126010")
    group = container.ContentSequence[0]
    group.ContentSequence = [i for i in group.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue != "G-C0E3"]
    assert len({r["measurementGroup_number"] for r in quantitative_measurements(sr)}) == n - 1


def test_tid1500reader_reads_every_group(calcified, tmp_path: Path) -> None:
    ct, pred = calcified
    converted, _, tables = _convert(ct, pred, tmp_path)
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


def test_a_totalsegmentator_heart_is_cited_by_seg_and_sr(calcified, tmp_path: Path, dciodvfy: str) -> None:
    ct, pred = calcified
    zeros = np.zeros_like(pred.heart)
    pred.anatomy = Anatomy(pred.heart, zeros, zeros, TS)
    converted, _, tables = _convert(ct, pred, tmp_path)
    row = tables["cac_series"][0]
    assert "heart" not in {k.value for k in converted.seg_paths}  # referenced, not copied
    assert row["heart_seg_series_uid"] is None and row["anatomy_seg_uid"] == "1.2.840.99.7"
    seg = pydicom.dcmread(converted.seg_path, stop_before_pixels=True)
    assert [r.ReferencedSOPInstanceUID for r in seg.ReferencedImageSequence] == ["1.2.840.99.7.1"]
    sr = pydicom.dcmread(converted.sr_path)
    evidence = {
        s.SeriesInstanceUID: [i.ReferencedSOPInstanceUID for i in s.ReferencedSOPSequence]
        for study in sr.CurrentRequestedProcedureEvidenceSequence
        for s in study.ReferencedSeriesSequence
    }
    assert evidence["1.2.840.99.7"] == ["1.2.840.99.7.1"]
    assert evidence[row["seg_series_uid"]] == [row["seg_sop_instance_uid"]]
    container = next(c for c in sr.ContentSequence if c.ConceptNameCodeSequence[0].CodeValue == "126010")
    items = container.ContentSequence[0].ContentSequence
    params = [i.TextValue for i in items if i.ConceptNameCodeSequence[0].CodeValue == "111002"]
    assert "anatomy_seg=1.2.840.99.7.1" in params and "anatomy=idc-totalsegmentator TotalSegmentator v1.5.6" in params
    for path in (*converted.seg_paths.values(), converted.sr_path):
        assert dciodvfy_errors(dciodvfy, path) == [], path.name
