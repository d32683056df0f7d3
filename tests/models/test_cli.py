"""``deepcac2 infer`` writes masks with the CT geometry and the model card."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from deepcac2.cli import main as deepcac2_main


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("fmt", ["nrrd", "nifti"])
def test_infer_writes_masks_on_the_ct_grid(real_series_path, real_ct, tmp_path, capsys, fmt):
    folder = real_series_path("A0002-B40f")
    rc = deepcac2_main(["infer", "--ct", str(folder), "--out", str(tmp_path), "--format", fmt])
    assert rc == 0
    ct = real_ct("A0002-B40f")  # independent reader (SimpleITK) for the expected grid
    suffix = ".nrrd" if fmt == "nrrd" else ".nii.gz"
    heart = sitk.ReadImage(str(tmp_path / f"heart{suffix}"))
    assert heart.GetSize() == ct.shape[::-1]
    np.testing.assert_allclose(heart.GetSpacing(), ct.geometry.spacing, atol=1e-4)
    np.testing.assert_allclose(heart.GetOrigin(), ct.geometry.origin, atol=1e-3)
    volume_ml = sitk.GetArrayFromImage(heart).astype(bool).sum() * ct.geometry.voxel_volume_mm3 / 1000
    assert 300 <= volume_ml <= 1200
    card = json.loads((tmp_path / "model_card.json").read_text())
    assert card["name"] == "classical" and card["model_id"].startswith("classical:")
    assert '"name": "classical"' in capsys.readouterr().out


def test_unknown_model_is_a_clean_cli_error(tmp_path, capsys):
    rc = deepcac2_main(["infer", "--ct", str(tmp_path), "--out", str(tmp_path / "o"), "--model", "nope"])
    assert rc == 3
    assert "E_MODEL_UNKNOWN" in capsys.readouterr().err
