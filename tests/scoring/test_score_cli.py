"""``deepcac2 score`` and ``deepcac2 evaluate`` on NIfTI/NRRD masks written with SimpleITK."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import SimpleITK as sitk

from deepcac2 import cli
from deepcac2.pipeline.scoring import cli as score_cli
from deepcac2.pipeline.stage_values import CTVolume, Geometry

# 1 x 1 mm pixels, slices 3 mm apart, thickness 3 mm: factor 1, so scores are areas x weights
GEO = Geometry(origin=(-20.0, 10.0, -50.0), spacing=(1.0, 1.0, 3.0))


def make_ct() -> CTVolume:
    hu = np.full((8, 30, 30), -50, dtype=np.int16)
    hu[2:4, 5:8, 5:9] = 250  # lesion 1: 2 slices x 12 mm2, weight 2 -> 48
    hu[6, 20:25, 20:22] = 450  # lesion 2: 10 mm2, weight 4 -> 40
    hu[6, 0:2, 28:30] = 500  # bone-like calcium outside any mask, 4 mm2 x 4 -> 16 (ROI mode only)
    return CTVolume(hu=hu, geometry=GEO, series_uid="1.2.3", slice_thickness=3.0, kvp=120.0)


def write_image(array: np.ndarray, path, geometry: Geometry = GEO) -> str:
    img = sitk.GetImageFromArray(array)
    img.SetOrigin(geometry.origin)
    img.SetSpacing(geometry.spacing)
    img.SetDirection(geometry.direction)
    sitk.WriteImage(img, str(path))
    return str(path)


def lesion_mask() -> np.ndarray:
    m = np.zeros((8, 30, 30), dtype=np.uint8)
    m[2:4, 4:9, 4:10] = 1  # a margin of -50 HU voxels around lesion 1
    m[6, 20:25, 20:22] = 1
    return m


@pytest.fixture
def ct(monkeypatch) -> CTVolume:
    volume = make_ct()
    monkeypatch.setattr(score_cli, "_load_ct", lambda path: volume)
    return volume


def run(argv: list[str]) -> int:
    return cli.main(argv)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_score_mask_file(ct, tmp_path, suffix, capsys):
    mask = write_image(lesion_mask(), tmp_path / f"m{suffix}")
    assert run(["score", "--ct", "x", "--mask", mask, "--convention", "literature"]) == 0
    (out,) = json.loads(capsys.readouterr().out)
    assert out["agatston"] == pytest.approx(2 * 12 * 2 + 10 * 4)
    assert out["lesion_count"] == 2 and out["convention"] == "literature"


def test_flipped_slices_give_the_same_scores(ct, tmp_path, capsys):
    # the same voxels written in reverse slice order, with the geometry to match
    d = GEO.direction_matrix.copy()
    d[:, 2] *= -1
    flipped = Geometry(tuple(GEO.index_to_lps(np.array([0.0, 0.0, 7.0]))), GEO.spacing, tuple(d.ravel()))
    mask = write_image(lesion_mask()[::-1].copy(), tmp_path / "flipped.nii.gz", flipped)
    assert run(["score", "--ct", "x", "--mask", mask, "--convention", "canon"]) == 0
    (out,) = json.loads(capsys.readouterr().out)
    assert out["agatston"] == pytest.approx(2 * 12 * 2 + 10 * 4)


def test_mask_off_the_ct_grid_is_rejected(ct, tmp_path, capsys):
    shifted = Geometry((GEO.origin[0] + 0.5, GEO.origin[1], GEO.origin[2]), GEO.spacing)
    mask = write_image(lesion_mask(), tmp_path / "shifted.nrrd", shifted)
    assert run(["score", "--ct", "x", "--mask", mask]) == 3
    assert "E_MASK_GEOMETRY" in capsys.readouterr().err


def test_vessel_labels_and_parquet_output(ct, tmp_path):
    labels = lesion_mask()
    labels[labels > 0] = 2  # LAD
    labels[6] *= 2  # lesion 2: 4 = RCA
    mask = write_image(labels, tmp_path / "v.nrrd")
    out = tmp_path / "s.parquet"
    assert run(["score", "--ct", "x", "--mask", mask, "--convention", "all", "--out", str(out)]) == 0
    rows = pq.read_table(out).to_pandas().set_index("convention")
    assert set(rows.index) == {"deepcac", "deepcac_mapped", "literature", "canon", "lessmann3d"}
    assert rows.loc["literature", "agatston_LAD"] == pytest.approx(48)
    assert rows.loc["literature", "agatston_RCA"] == pytest.approx(40)
    lesions = pq.read_table(tmp_path / "s.lesions.parquet").to_pandas()
    assert set(lesions.loc[lesions.convention == "literature", "vessel"]) == {"LAD", "RCA"}


def test_roi_scores_all_calcium_over_threshold(ct, tmp_path, capsys):
    roi = write_image(np.ones((8, 30, 30), dtype=np.uint8), tmp_path / "roi.nii.gz")
    assert run(["score", "--ct", "x", "--roi", roi, "--convention", "deepcac"]) == 0
    (out,) = json.loads(capsys.readouterr().out)
    # all three calcium regions, only voxels >= 130 HU: (48 + 40 + 16) with DeepCAC's rounding of 1 x 1 x 3/3
    assert out["agatston"] == pytest.approx(48 + 40 + 16)
    assert out["convention"].startswith("deepcac[") and out["convention_params"]["mask_threshold"] is True


def test_mass_factor_flag(ct, tmp_path, capsys):
    mask = write_image(lesion_mask(), tmp_path / "m.nii.gz")
    assert run(["score", "--ct", "x", "--mask", mask, "--convention", "literature", "--mass-factor", "0.8"]) == 0
    (out,) = json.loads(capsys.readouterr().out)
    assert out["mass_mg"] == pytest.approx(0.8 * (24 * 250 + 10 * 450) * 3.0 / 1000)


def test_evaluate_cli(tmp_path):
    pred = pd.DataFrame({"SeriesInstanceUID": list("abcdef"), "agatston": [0, 5, 50, 150, 350, 900]})
    ref = pd.DataFrame({"SeriesInstanceUID": list("abcdef"), "agatston": [0, 8, 40, 90, 420, 800]})
    pred.to_parquet(tmp_path / "p.parquet")
    ref.to_csv(tmp_path / "r.csv", index=False)
    m = np.zeros((4, 10, 10), dtype=np.uint8)
    m[1, 2:4, 2:4] = 1
    (tmp_path / "pm").mkdir()
    (tmp_path / "rm").mkdir()
    write_image(m, tmp_path / "pm" / "a.nii.gz")
    write_image(m, tmp_path / "rm" / "a.nii.gz")
    out = tmp_path / "report"
    argv = ["evaluate", "--pred", str(tmp_path / "p.parquet"), "--ref", str(tmp_path / "r.csv"), "--out", str(out)]
    assert run([*argv, "--pred-masks", str(tmp_path / "pm"), "--ref-masks", str(tmp_path / "rm")]) == 0
    metrics = pq.read_table(out / "metrics.parquet").to_pandas()
    assert metrics.loc[metrics.metric == "spearman_rho", "value"].item() == pytest.approx(1.0)
    assert metrics.loc[metrics.metric == "lesion_sensitivity", "value"].item() == pytest.approx(1.0)
    assert (out / "bland_altman.png").stat().st_size > 0 and (out / "report.md").exists()


def test_usage_errors_have_codes(ct, tmp_path, capsys):
    assert run(["score", "--ct", "x"]) == 3
    assert "E_SCORING" in capsys.readouterr().err
    mask = write_image(lesion_mask(), tmp_path / "m.nii.gz")
    assert run(["score", "--ct", "x", "--mask", mask, "--out", str(tmp_path / "s.csv")]) == 3
    assert "E_TABLE_WRITE" in capsys.readouterr().err
    assert run(["score", "--ct", "x", "--mask", mask, "--convention", "nope"]) == 3
    assert "E_CONVENTION_UNKNOWN" in capsys.readouterr().err
    (tmp_path / "junk.dcm").write_bytes(b"not dicom")
    assert run(["score", "--ct", "x", "--mask", str(tmp_path / "junk.dcm")]) == 3
    assert "E_UNREADABLE_FILE" in capsys.readouterr().err
