"""The real chest CTs in ../shared/data score without error, and a SEG on them reads back."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from deepcac2.pipeline.conventions import CONVENTIONS
from deepcac2.pipeline.scoring.cli import score_files
from deepcac2.pipeline.scoring.engine import score_ct
from deepcac2.pipeline.scoring.masks import read_mask

pytestmark = pytest.mark.shared_data


def chest_series(shared: Path) -> list[Path]:
    return sorted(p for p in (shared / "lung-pet-ct-dx").glob("*/*") if p.is_dir())


@pytest.mark.slow
def test_real_chest_cts_score_finite(shared_data):
    from deepcac2.pipeline.loader import load_series

    series = chest_series(shared_data)
    assert len(series) == 4
    for path in series:
        ct = load_series(path)
        # a mediastinum-sized box: calcium and bone over threshold inside it
        region = np.zeros(ct.shape, dtype=bool)
        ny, nx = ct.shape[1:]
        region[:, ny // 4 : 3 * ny // 4, nx // 4 : 3 * nx // 4] = True
        for name, conv in CONVENTIONS.items():
            c = conv if conv.mask_threshold else conv.with_options(mask_threshold=True)
            s = score_ct(ct, region, convention=c)
            assert math.isfinite(s.agatston) and s.agatston > 0, (path.name, name)
            assert math.isfinite(s.volume_mm3) and s.lesion_count > 0
            assert s.mass_mg is None  # no calibration in these headers
            assert math.isclose(sum(les.agatston for les in s.lesions), s.agatston, rel_tol=1e-9)


def test_seg_on_real_ct_reads_back_by_uid_and_by_position(shared_data, tmp_path):
    import dataclasses

    import highdicom as hd
    from pydicom.sr.codedict import codes

    from deepcac2.pipeline.loader import load_series

    ct = load_series(chest_series(shared_data)[-1])
    mask = np.zeros(ct.shape, dtype=bool)
    mask[10:12, 200:210, 220:230] = True
    lad = np.zeros(ct.shape, dtype=bool)
    lad[10:12, 200:210, 220:225] = True
    alg = hd.AlgorithmIdentificationSequence(name="test", version="1", family=codes.cid7162.ArtificialIntelligence)
    kinds = (codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.VascularCalcification)
    auto = hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC
    descriptions = [
        hd.seg.SegmentDescription(1, "Coronary calcium", *kinds, auto, alg),
        hd.seg.SegmentDescription(2, "LAD calcium", *kinds, auto, alg),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the sample's PatientName has one component
        seg = hd.seg.Segmentation(
            source_images=ct.headers,
            pixel_array=np.stack([mask, lad], axis=-1),
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=99,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="test",
            manufacturer_model_name="test",
            software_versions="1",
            device_serial_number="1",
        )
    path = tmp_path / "cac.seg.dcm"
    seg.save_as(path)
    for volume in (ct, dataclasses.replace(ct, instances=())):  # by SOPInstanceUID, then by plane positions
        given = read_mask(path, volume)
        assert np.array_equal(given.mask, mask)
        assert given.vessels is not None and np.array_equal(given.vessels == 2, lad)
    (s,) = score_files(ct, str(path), None, [CONVENTIONS["literature"]])
    over = int((ct.hu[mask] >= 130).sum())
    assert 0 <= s.volume_mm3 <= over * ct.geometry.voxel_volume_mm3 + 1e-9


def test_score_cli_end_to_end_with_the_loader(shared_data, tmp_path):
    """``deepcac2 score`` loads the real series itself; an ROI written on its grid scores finite numbers."""
    import json

    import SimpleITK as sitk

    from deepcac2 import cli
    from deepcac2.pipeline.loader import load_series

    folder = chest_series(shared_data)[-1]
    ct = load_series(folder)
    roi = np.zeros(ct.shape, dtype=np.uint8)
    roi[:, 200:300, 200:300] = 1
    img = sitk.GetImageFromArray(roi)
    img.SetOrigin(ct.geometry.origin)
    img.SetSpacing(ct.geometry.spacing)
    img.SetDirection(ct.geometry.direction)
    sitk.WriteImage(img, str(tmp_path / "roi.nii.gz"))
    out = tmp_path / "scores.json"
    assert cli.main(["score", "--ct", str(folder), "--roi", str(tmp_path / "roi.nii.gz"), "--out", str(out)]) == 0
    (s,) = json.loads(out.read_text())
    assert s["SeriesInstanceUID"] == ct.series_uid and math.isfinite(s["agatston"]) and s["agatston"] >= 0
    # independent check of the volume bound: never more than the voxels over 130 HU in the ROI
    over = int((ct.hu[roi > 0] >= 130).sum())
    assert s["volume_mm3"] <= over * ct.geometry.voxel_volume_mm3 + 1e-6
