"""Models are found through the ``deepcac2.models`` entry points; a third party can add one."""

from __future__ import annotations

import sys
import types as pytypes
from importlib.metadata import EntryPoint

import numpy as np
import pytest

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline import stage_values
from deepcac2.pipeline.models import base


@pytest.fixture(autouse=True)
def _fresh_cache():
    base.clear_cache()
    yield
    base.clear_cache()


def test_builtin_models_are_registered():
    names = base.available_models()
    assert "classical" in names and "deepcac2-unet" in names


def test_default_is_classical_and_is_cached():
    m = base.load_model()
    assert m.card.name == "classical"
    assert base.load_model("classical") is m
    assert isinstance(m, base.CACModel)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(DeepCACError) as err:
        base.load_model("no-such-model")
    assert err.value.code is ErrorCode.E_MODEL_UNKNOWN
    assert "classical" in err.value.message and "deepcac2-unet" in err.value.message


def test_unet_without_or_with_bad_weights_is_model_load(tmp_path):
    with pytest.raises(DeepCACError) as err:
        base.load_model("deepcac2-unet")
    assert err.value.code is ErrorCode.E_MODEL_LOAD
    bad = tmp_path / "w.pt"
    bad.write_text("garbage")
    with pytest.raises(DeepCACError) as err:
        base.load_model(weights=str(bad))  # weights given -> deepcac2-unet
    assert err.value.code is ErrorCode.E_MODEL_LOAD


class _FakeModel:
    card = stage_values.ModelCard("fake", "9.9", None, "CC0", "none")

    def __init__(self, weights, device):
        self.weights, self.device = weights, device

    def predict(self, ct, anatomy):
        empty = np.zeros(ct.shape, dtype=bool)
        return stage_values.Prediction(heart=empty, cac=empty, card=self.card)


def test_third_party_model_via_entry_point(monkeypatch):
    module = pytypes.ModuleType("fake_cac_plugin")
    module.build = lambda weights=None, device=None: _FakeModel(weights, device)
    module.broken = lambda weights=None, device=None: object()
    monkeypatch.setitem(sys.modules, "fake_cac_plugin", module)
    real = base.entry_points

    def patched(group):
        extra = [
            EntryPoint("fake", "fake_cac_plugin:build", base.ENTRY_POINT_GROUP),
            EntryPoint("broken", "fake_cac_plugin:broken", base.ENTRY_POINT_GROUP),
            EntryPoint("missing", "no_such_module_xyz:build", base.ENTRY_POINT_GROUP),
        ]
        return list(real(group=group)) + extra

    monkeypatch.setattr(base, "entry_points", patched)
    assert {"fake", "classical"} <= set(base.available_models())
    model = base.load_model("fake", "w.bin", device="cpu")
    assert model.card.name == "fake" and model.weights == "w.bin" and model.device == "cpu"
    ct = stage_values.CTVolume(
        hu=np.zeros((2, 3, 4), np.int16), geometry=stage_values.Geometry((0, 0, 0), (1, 1, 1)), series_uid="1"
    )
    assert model.predict(ct, None).cac.shape == (2, 3, 4)
    for name in ("broken", "missing"):
        with pytest.raises(DeepCACError) as err:
            base.load_model(name)
        assert err.value.code is ErrorCode.E_MODEL_LOAD
