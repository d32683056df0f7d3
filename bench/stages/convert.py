"""SEG + SR + Parquet vs dcmqi's itkimage2segimage writing the SEG alone, same mask (issue 6)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from bench.context import BenchContext, Result
from bench.data import chest_phantom, series_dir
from bench.measure import paired_ratio, peak_rss_result, time_alternating

CODES = {
    1: ("Heart", ("91723000", "Anatomical Structure"), ("80891009", "Heart")),
    2: (
        "Coronary calcium",
        ("49755003", "Morphologically Abnormal Structure"),
        ("237897009", "Vascular Calcification"),
    ),
}


def _dcmqi_metadata(path: Path) -> Path:
    attrs = []
    for label, (desc, cat, typ) in CODES.items():
        attrs.append(
            [
                {
                    "labelID": 1,
                    "SegmentDescription": desc,
                    "SegmentAlgorithmType": "AUTOMATIC",
                    "SegmentAlgorithmName": "bench",
                    "SegmentedPropertyCategoryCodeSequence": {
                        "CodeValue": cat[0],
                        "CodingSchemeDesignator": "SCT",
                        "CodeMeaning": cat[1],
                    },
                    "SegmentedPropertyTypeCodeSequence": {
                        "CodeValue": typ[0],
                        "CodingSchemeDesignator": "SCT",
                        "CodeMeaning": typ[1],
                    },
                    "recommendedDisplayRGBValue": [255, 0, 0] if label == 1 else [255, 255, 255],
                }
            ]
        )
    meta = {
        "ContentCreatorName": "bench",
        "ClinicalTrialSeriesID": "1",
        "ClinicalTrialTimePointID": "1",
        "SeriesDescription": "bench",
        "SeriesNumber": "300",
        "InstanceNumber": "1",
        "BodyPartExamined": "CHEST",
        "segmentAttributes": attrs,
    }
    path.write_text(json.dumps(meta))
    return path


def load_and_convert(folder: str, out: str) -> None:
    """One series' conversion in a fresh process: load, phantom masks, score, SEG + SR + Parquet."""
    from deepcac2.location import DICOM_DIR, TABLES_DIR
    from deepcac2.pipeline.convert.series import convert_series, write_series_tables
    from deepcac2.pipeline.loader import load_series
    from deepcac2.pipeline.scoring.engine import score_ct
    from deepcac2.pipeline.stage_values import ModelCard, Prediction

    ct = load_series(folder)
    phantom = chest_phantom(ct.shape[0])
    pred = Prediction(heart=phantom.heart, cac=phantom.cac, card=ModelCard("bench", "1", "00" * 32, "MIT", "none"))
    scores = {c: score_ct(ct, pred.cac, convention=c) for c in ("deepcac", "literature", "canon", "lessmann3d")}
    write_series_tables([convert_series(ct, pred, scores, Path(out) / DICOM_DIR)], Path(out) / TABLES_DIR)


def run(ctx: BenchContext) -> list[Result]:
    import SimpleITK as sitk

    from deepcac2.pipeline.convert.series import convert_series, write_series_tables
    from deepcac2.pipeline.loader import load_series
    from deepcac2.pipeline.scoring.engine import score_ct
    from deepcac2.pipeline.stage_values import ModelCard, Prediction

    folder = series_dir(ctx, 150)
    ct = load_series(folder)
    phantom = chest_phantom(150)  # the same phantom the series was written from
    card = ModelCard("bench", "1", "00" * 32, "MIT", "none")
    pred = Prediction(heart=phantom.heart, cac=phantom.cac, card=card)
    scores = {c: score_ct(ct, pred.cac, convention=c) for c in ("deepcac", "literature", "canon", "lessmann3d")}

    work = ctx.work / "convert"
    masks = []
    for label, mask in ((1, phantom.heart), (2, phantom.cac)):
        img = sitk.GetImageFromArray(mask.astype(np.uint8))
        img.SetOrigin(ct.geometry.origin)
        img.SetSpacing(ct.geometry.spacing)
        img.SetDirection(ct.geometry.direction)
        masks.append(work / f"mask{label}.nrrd")
        work.mkdir(parents=True, exist_ok=True)
        sitk.WriteImage(img, str(masks[-1]), useCompression=True)
    meta = _dcmqi_metadata(work / "meta.json")
    exe = str(Path(sys.executable).with_name("itkimage2segimage"))

    def ours() -> None:
        converted = convert_series(ct, pred, scores, work / "ours")
        write_series_tables([converted], work / "ours-tables")

    def dcmqi() -> None:
        subprocess.run(
            [exe, "--inputImageList", ",".join(map(str, masks)), "--inputDICOMDirectory", str(folder),
             "--outputDICOM", str(work / "dcmqi.dcm"), "--inputMetadata", str(meta)],
            check=True, capture_output=True,
        )  # fmt: skip

    from deepcac2.pipeline.seg.enum import SegKind
    from deepcac2.pipeline.seg.sop import build_seg, write_seg
    from deepcac2.pipeline.sr.content import measurement_groups
    from deepcac2.pipeline.sr.sop import build_sr, write_sr

    seg = build_seg(ct, pred)
    groups = measurement_groups(scores, has_vessel_segments=False, kvp=ct.kvp)

    def seg_only() -> None:
        write_seg(build_seg(ct, pred), work / "parts" / "seg.dcm")

    def sr_only() -> None:
        write_sr(build_sr(ct, {SegKind.CAC: seg}, groups, card), work / "parts" / "sr.dcm")

    # all four in one alternation, so the parts and the whole see the same machine noise
    t = time_alternating({"ours": ours, "dcmqi": dcmqi, "seg": seg_only, "sr": sr_only}, ctx.repeats)
    ratio, spread = paired_ratio(t["ours"], t["dcmqi"])
    rest = t["ours"].median - t["seg"].median - t["sr"].median
    return [
        Result(
            "convert", "512x512x150: SEG alone (highdicom) / dcmqi SEG alone", t["seg"].median / t["dcmqi"].median,
            "x", spread=t["seg"].spread, detail=f"SEG {t['seg'].median:.2f} s",
        ),
        Result(
            "convert", "512x512x150: SR (4 conventions) build + write", t["sr"].median, "s", spread=t["sr"].spread,
            detail=f"Parquet rows and tables: about {max(rest, 0.0):.2f} s (the remainder of the whole)",
        ),
        peak_rss_result(
            "convert", "512x512x150: load + phantom + score + convert", ct.hu.nbytes,
            load_and_convert, str(folder), str(work / "rss"),
        ),
        Result(
            "convert", "512x512x150: SEG+SR+Parquet / dcmqi SEG alone", ratio, "x", "<= 1.0", ratio <= 1.0,
            spread=spread,
            detail=f"ours {t['ours'].median:.2f} s, dcmqi {t['dcmqi'].median:.2f} s (medians; 2 segments); median of per-round ratios",
        )
    ]  # fmt: skip
