from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file

from deepcac2.pipeline.convert.review_picture import render_series_png
from deepcac2.pipeline.stage_values import CTVolume, Geometry, ModelCard, Prediction
from deepcac2.qa.dciodvfy import validate


def test_dciodvfy_passes_a_valid_ct_and_flags_a_broken_one(dciodvfy: str, tmp_path: Path) -> None:
    good = validate(get_testdata_file("CT_small.dcm"))
    assert good.ok, good.errors
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    del ds.Rows  # a type 1 attribute of the Image Pixel module
    ds.SOPClassUID = ds.SOPClassUID  # unchanged: still a CT image
    broken = tmp_path / "broken.dcm"
    ds.save_as(broken)
    bad = validate(broken)
    assert not bad.ok
    assert any("Rows" in e for e in bad.errors), bad.errors


def test_review_picture_is_written_with_calcium_in_red(tmp_path: Path) -> None:
    hu = np.full((30, 96, 96), 40, np.int16)
    heart = np.zeros(hu.shape, bool)
    heart[5:25, 30:70, 30:70] = True
    cac = np.zeros(hu.shape, bool)
    cac[12:14, 40:44, 40:44] = True
    hu[cac] = 600
    ct = CTVolume(hu=hu, geometry=Geometry((0, 0, 0), (0.7, 0.7, 2.5)), series_uid="1.2.3")
    pred = Prediction(heart=heart, cac=cac, card=ModelCard("m", "1", None, "MIT", "none"))
    path = render_series_png(ct, pred, tmp_path / "img" / "1.2.3.png")
    import matplotlib.image

    img = matplotlib.image.imread(path)
    red = (img[..., 0] > 0.9) & (img[..., 1] < 0.2) & (img[..., 2] < 0.2)
    assert red.sum() > 10, "the calcium overlay must be visible"
    assert [p.name for p in path.parent.iterdir()] == ["1.2.3.png"]  # no temporary file left behind
