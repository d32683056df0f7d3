"""The platipy-task400 provider: nnU-Net v1 run as the published pipeline runs it, and its clear failures."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from task400_model import make_model_folder

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline import stage_values
from deepcac2.pipeline.anatomy import platipy_task400 as t400
from deepcac2.pipeline.anatomy import registry
from deepcac2.pipeline.anatomy.base import AnatomyProvider

REF = stage_values.SeriesRef(series_uid="1.2.3.4")


def _box_ct(feet_first: bool) -> tuple[stage_values.CTVolume, np.ndarray]:
    """Zeros around a box of CT values: nnU-Net crops to the box, so the tiny model's heart is the box."""
    hu = np.zeros((30, 100, 90), np.int16)
    box = (slice(8, 20), slice(30, 70), slice(20, 50))
    block = np.random.default_rng(0).integers(-100, 300, (12, 40, 30))
    block[block == 0] = 1  # the whole box is nonzero
    hu[box] = block
    direction = (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0) if feet_first else (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)
    geometry = stage_values.Geometry((-60.0, -70.0, 100.0), (1.4, 1.1, 5.0), tuple(float(v) for v in direction))
    expected = np.zeros(hu.shape, dtype=bool)
    expected[box] = True
    return stage_values.CTVolume(hu=hu, geometry=geometry, series_uid=REF.series_uid), expected


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    return make_model_folder(tmp_path_factory.mktemp("task400"))


@pytest.mark.slow
@pytest.mark.parametrize("feet_first", [False, True], ids=["head-first", "feet-first"])
def test_the_heart_is_nnunet_s_label_map_on_the_ct_grid(model_folder, feet_first):
    ct, expected = _box_ct(feet_first)
    provider = t400.PlatipyTask400(folder=str(model_folder))
    anatomy = provider.anatomy(REF, ct)
    np.testing.assert_array_equal(anatomy.heart, expected)
    assert not anatomy.aorta.any() and not anatomy.pulmonary_artery.any()
    assert "heart only" in anatomy.notes[0]
    p = anatomy.provenance
    assert p.provider == "platipy-task400" and p.seg_series_uid is None
    assert "Task400_OPEN_HEART_1FOLD 3d_lowres folds=fold_0,fold_1 tta=on" in p.version
    assert "weights sha256:" in p.version and "nnU-Net 1.7.1" in p.version
    # nnU-Net itself says it ensembled both folds and mirrored on all axes
    log = provider.last_log
    assert "fold_0/model_final_checkpoint.model" in log and "fold_1/model_final_checkpoint.model" in log
    assert "mirror_axes (0, 1, 2)" in log


@pytest.mark.slow
def test_a_model_that_finds_no_heart_is_a_segments_error(tmp_path):
    folder = make_model_folder(tmp_path, logit_gaps=(-6.0,))
    ct, _ = _box_ct(False)
    with pytest.raises(DeepCACError) as err:
        t400.PlatipyTask400(folder=str(folder)).anatomy(REF, ct)
    assert err.value.code is ErrorCode.E_ANATOMY_SEGMENTS


def test_command_is_nnunet_predict_with_its_defaults(tmp_path):
    folds = [tmp_path / "fold_0", tmp_path / "fold_1"]
    cmd = t400.PlatipyTask400().command(tmp_path / "i", tmp_path / "o", folds)
    assert cmd[1:3] == ["-m", "nnunet.inference.predict_simple"]
    assert cmd[cmd.index("-t") + 1] == "Task400_OPEN_HEART_1FOLD" and cmd[cmd.index("-m", 3) + 1] == "3d_lowres"
    # every fold folder (nnU-Net's default when -f is absent), TTA and mixed precision on
    assert "-f" not in cmd and "--disable_tta" not in cmd and "--disable_mixed_precision" not in cmd
    only_all = t400.PlatipyTask400(tta=False).command(tmp_path / "i", tmp_path / "o", [tmp_path / "all"])
    assert only_all[only_all.index("-f") + 1] == "all" and "--disable_tta" in only_all


def test_model_folder_layouts(model_folder, tmp_path):
    assert t400.model_root(str(model_folder)) == model_folder
    nested = tmp_path / "weights"
    nested.mkdir()
    (nested / "nnUNet").symlink_to(model_folder, target_is_directory=True)
    assert t400.model_root(str(nested)) == nested / "nnUNet"
    assert [p.name for p in t400.fold_folders(model_folder)] == ["fold_0", "fold_1"]


def test_missing_model_folder_is_a_clear_unavailable_error(monkeypatch, tmp_path):
    monkeypatch.delenv(t400.ENV_FOLDER, raising=False)
    ct, _ = _box_ct(False)
    with pytest.raises(DeepCACError) as err:
        t400.PlatipyTask400().anatomy(REF, ct)
    assert err.value.code is ErrorCode.E_ANATOMY_UNAVAILABLE and t400.ENV_FOLDER in err.value.message
    monkeypatch.setenv(t400.ENV_FOLDER, str(tmp_path))
    with pytest.raises(DeepCACError) as err:
        t400.PlatipyTask400().anatomy(REF, ct)
    assert err.value.code is ErrorCode.E_ANATOMY_UNAVAILABLE and "plans.pkl" in err.value.message
    (tmp_path / t400.MODEL / t400.TASK / t400.TRAINER).mkdir(parents=True)
    (tmp_path / t400.MODEL / t400.TASK / t400.TRAINER / "plans.pkl").write_bytes(b"")
    with pytest.raises(DeepCACError) as err:
        t400.PlatipyTask400().anatomy(REF, ct)
    assert err.value.code is ErrorCode.E_ANATOMY_UNAVAILABLE and "fold_" in err.value.message


def test_missing_nnunet_package_is_a_clear_unavailable_error(monkeypatch, model_folder):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nnunet" else real(name, *a))
    ct, _ = _box_ct(False)
    with pytest.raises(DeepCACError) as err:
        t400.PlatipyTask400(folder=str(model_folder)).anatomy(REF, ct)
    assert err.value.code is ErrorCode.E_ANATOMY_UNAVAILABLE and "nnunet==1.7.1" in err.value.message


def test_registered_under_the_anatomy_entry_point(monkeypatch):
    provider = registry.load_provider("platipy-task400")
    assert isinstance(provider, AnatomyProvider) and provider.name == "platipy-task400"
    assert "platipy-task400" not in registry.AUTO_ORDER  # chosen by name only
    monkeypatch.delenv(t400.ENV_FOLDER, raising=False)
    ct, _ = _box_ct(False)
    with pytest.raises(DeepCACError) as err:
        registry.resolve_anatomy(REF, ct, "platipy-task400")
    assert err.value.code is ErrorCode.E_ANATOMY_UNAVAILABLE
