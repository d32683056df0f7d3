"""With the real loader and scoring engine: files in, SEG/SR/Parquet out (also via the CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import SimpleITK as sitk

from deepcac2.cli import main as cli_main
from deepcac2.pipeline.convert import convert_series
from deepcac2.pipeline.convert.series import write_series_tables
from deepcac2.pipeline.loader import load_series
from deepcac2.pipeline.scoring.engine import score_ct
from deepcac2.pipeline.stage_values import Prediction

from . import synthetic
from .dicomtools import dciodvfy_errors, dcmqi_segments


@pytest.fixture(scope="module")
def series_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    hot = synthetic.prediction((12, 64, 64)).cac
    folder = tmp_path_factory.mktemp("series")
    synthetic.write_series(synthetic.ct_datasets(hot=hot), folder)
    return folder


def _nrrd(array: np.ndarray, ct, path: Path) -> Path:
    img = sitk.GetImageFromArray(array.astype(np.uint8))
    img.SetOrigin(ct.geometry.origin)
    img.SetSpacing(ct.geometry.spacing)
    img.SetDirection(ct.geometry.direction)
    sitk.WriteImage(img, str(path))
    return path


def test_loader_scorer_converter(series_dir: Path, tmp_path: Path, dciodvfy: str) -> None:
    ct = load_series(series_dir)
    pred = synthetic.prediction(ct.shape)
    scores = {c: score_ct(ct, pred.cac, convention=c, vessels=pred.vessels) for c in ("deepcac", "literature")}
    converted = convert_series(ct, pred, scores, tmp_path / "out")
    tables = write_series_tables([converted], tmp_path / "tables")
    row = pq.read_table(tables["cac_series"]).to_pylist()[0]
    # literature: 2-D, every slice at 2.5 mm -> x 2.5/3; blobs of 12 px (LAD, 2 slices) and 12 px (RCA),
    # all 350 HU (weight 3), pixel area 0.49 mm2: (2 * 12 + 12) * 0.49 * 3 * 2.5 / 3
    assert row["agatston_literature"] == pytest.approx((2 * 12 + 12) * 0.49 * 3 * 2.5 / 3, rel=1e-9)
    assert row["lesion_count_literature"] == len(scores["literature"].lesions) > 0
    assert row["agatston_deepcac"] > 0
    for path in (converted.seg_path, converted.sr_path):
        assert dciodvfy_errors(dciodvfy, path) == []


def test_cli_convert(series_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], dciodvfy: str) -> None:
    ct = load_series(series_dir)
    pred = synthetic.prediction(ct.shape)
    cac = _nrrd(pred.vessels, ct, tmp_path / "vessels.nrrd")
    heart = _nrrd(pred.heart, ct, tmp_path / "heart.nrrd")
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"name": "reader", "version": "1", "weights_sha256": None, "license": "CC-BY-4.0",
                                "training_data": "none", "family": "Manual Processing"}))  # fmt: skip
    out = tmp_path / "out"
    argv = ["convert", "--ct", str(series_dir), "--cac", str(cac), "--heart", str(heart), "--out", str(out)]
    rc = cli_main([*argv, "--model-card", str(card), "--convention", "literature", "--convention", "canon"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["agatston"]) == {"literature", "canon"}
    assert summary["agatston"]["literature"] == pytest.approx(36 * 0.49 * 3 * 2.5 / 3, rel=1e-9)
    assert dciodvfy_errors(dciodvfy, Path(summary["sr"])) == []
    segs = {kind: Path(path) for kind, path in summary["segs"].items()}
    assert set(segs) == {"cac", "vessels", "heart"}
    heart_got = dcmqi_segments(segs["heart"], tmp_path / "dcmqi-heart", ct.geometry, ct.shape)
    vessels_got = dcmqi_segments(segs["vessels"], tmp_path / "dcmqi-vessels", ct.geometry, ct.shape)
    assert np.array_equal(heart_got["Heart"], pred.heart) and np.array_equal(
        vessels_got["LAD calcium"], pred.vessels == 2
    )
    row = pq.read_table(summary["tables"]["cac_series"]).to_pylist()[0]
    assert row["model_name"] == "reader" and row["model_weights_sha256"] is None


def test_cli_bad_convention(series_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli_main(
        ["convert", "--ct", str(series_dir), "--cac", "x.nrrd", "--out", str(tmp_path), "--convention", "nope"]
    )
    assert rc == 3 and "E_CONVENTION_UNKNOWN" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.shared_data
def test_real_ct_series(shared_data: Path, tmp_path: Path, dciodvfy: str) -> None:
    """A real 512x512x64 Philips chest CT: the SEG and SR are valid and the masks survive dcmqi."""
    folder = next((shared_data / "lung-pet-ct-dx" / "Lung_Dx-A0001").iterdir())
    ct = load_series(folder)
    heart = np.zeros(ct.shape, dtype=bool)
    z, y, x = ct.shape
    heart[z // 4 : z // 2, y // 3 : 2 * y // 3, x // 3 : 2 * x // 3] = True
    cac = heart & (ct.hu >= 130)
    pred = Prediction(heart=heart, cac=cac, card=synthetic.CARD)
    scores = {"deepcac": score_ct(ct, cac, convention="deepcac")}
    converted = convert_series(ct, pred, scores, tmp_path / "out")
    for path in (*converted.seg_paths.values(), converted.sr_path):
        assert dciodvfy_errors(dciodvfy, path) == []
    got = dcmqi_segments(converted.seg_paths["heart"], tmp_path / "dcmqi", ct.geometry, ct.shape)
    assert np.array_equal(got["Heart"], heart)
    got = dcmqi_segments(converted.seg_path, tmp_path / "dcmqi-cac", ct.geometry, ct.shape)
    assert np.array_equal(got.get("Coronary calcium", np.zeros_like(cac)), cac)
