"""The deepcac2-unet model end to end: masks on the CT grid, deterministic on CPU, the anatomy's heart, cards."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from deepcac2.pipeline import stage_values
from deepcac2.pipeline.models import base
from deepcac2.pipeline.models.unet.model import InferenceOptions, UNetModel
from deepcac2.pipeline.models.unet.network import UNet3D

SMALL = InferenceOptions(
    patch_xyz=(32, 32, 16), stride_xyz=(16, 16, 8), spacing_xyz=(2.0, 2.0, 5.0), shape_xyz=(96, 96, 32)
)


def _ct_and_heart():
    rng = np.random.default_rng(0)
    shape = (30, 120, 110)
    hu = rng.normal(0, 30, size=shape).astype(np.int16)
    hu[10:14, 50:53, 60:63] = 400
    heart = np.zeros(shape, dtype=bool)
    heart[8:22, 40:80, 40:80] = True
    geom = stage_values.Geometry((-50.0, -60.0, 10.0), (1.2, 1.1, 3.0))
    return stage_values.CTVolume(hu=hu, geometry=geom, series_uid="u"), heart


def _model(cover_edges=False):
    torch.manual_seed(0)
    card = stage_values.ModelCard("deepcac2-unet", "test", None, "MIT", "none")
    return UNetModel(
        net=UNet3D(features=(4, 8, 16, 32)),
        card=card,
        options=InferenceOptions(**{**SMALL.__dict__, "cover_edges": cover_edges}),
    )


def test_mask_is_on_the_ct_grid_and_deterministic():
    ct, heart = _ct_and_heart()
    model = _model()
    a = model.predict_cac(ct, heart)
    b = model.predict_cac(ct, heart)
    assert a.shape == ct.shape and a.dtype == bool
    np.testing.assert_array_equal(a, b)


def test_all_positive_network_marks_exactly_the_covered_crop_mapped_back():
    """With a network that says 'yes' everywhere, the mask is the covered part of the crop,
    so with cover_edges it must contain the whole heart (the crop is centred on it)."""
    ct, heart = _ct_and_heart()
    model = _model(cover_edges=True)
    with torch.no_grad():
        model.net.final_conv.weight.zero_()
        model.net.final_conv.bias.fill_(5.0)
    mask = model.predict_cac(ct, heart)
    assert mask[heart].all()
    assert not mask.all()  # the 96x96x32 crop at 2x2x5 mm is smaller than the CT


def test_checkpoint_with_card_loads_via_registry(tmp_path):
    base.clear_cache()
    net = UNet3D(features=(4, 8, 16, 32))
    card = {
        "name": "deepcac2-unet",
        "version": "synthetic-1",
        "weights_sha256": None,
        "license": "MIT",
        "training_data": "synthetic phantoms, seeds 0-9",
    }
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": net.state_dict(), "card": card, "config": {"features": [4, 8, 16, 32]}}, path)
    model = base.load_model(weights=str(path), device="cpu")
    assert model.card.version == "synthetic-1" and model.card.training_data.startswith("synthetic")
    assert model.card.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert model.net.features == (4, 8, 16, 32)
    # a run's ModelSpec reads the digest once; the card takes it from the spec and does not hash again
    spec = base.ModelSpec(weights=str(path), device="cpu").with_digest()
    assert spec.weights_sha256 == model.card.weights_sha256 and spec.with_digest() is spec
    assert spec.identity() == {"name": None, "weights_sha256": spec.weights_sha256}
    told = base.load_spec(base.ModelSpec(weights=str(path), device="cpu", weights_sha256="ab" * 32))
    assert told.card.weights_sha256 == "ab" * 32
    base.clear_cache()


def _anatomy(heart, provider="test-provider"):
    from deepcac2.pipeline.anatomy.base import Anatomy, AnatomyProvenance

    empty = np.zeros(heart.shape, dtype=bool)
    return Anatomy(heart, empty, empty.copy(), AnatomyProvenance(provider, "1.0", seg_series_uid="1.2.3"))


def test_the_crop_follows_the_anatomy_heart_and_the_anatomy_travels_with_the_prediction():
    ct, heart = _ct_and_heart()
    model = _model(cover_edges=True)
    with torch.no_grad():
        model.net.final_conv.weight.zero_()
        model.net.final_conv.bias.fill_(5.0)  # 'yes' everywhere: the mask is the covered crop
    moved = np.zeros_like(heart)
    moved[8:22, 40:80, 0:30] = True  # the heart box shifted 40 voxels in x
    a = model.predict(ct, _anatomy(heart))
    b = model.predict(ct, _anatomy(moved, "other"))
    assert a.anatomy.provenance.provider == "test-provider" and b.anatomy.provenance.provider == "other"
    np.testing.assert_array_equal(a.heart, heart)
    assert a.cac[heart].all() and b.cac[moved].all()
    assert not np.array_equal(a.cac, b.cac)
    xs_a, xs_b = np.flatnonzero(a.cac.any(axis=(0, 1))), np.flatnonzero(b.cac.any(axis=(0, 1)))
    assert xs_b.mean() < xs_a.mean() - 10  # the crop moved with the heart


def test_an_anatomy_off_the_ct_grid_is_an_anatomy_geometry_error():
    from deepcac2.errors import DeepCACError, ErrorCode

    ct, heart = _ct_and_heart()
    with pytest.raises(DeepCACError) as err:
        _model().predict(ct, _anatomy(heart[:, :, :50]))
    assert err.value.code is ErrorCode.E_ANATOMY_GEOMETRY


def test_without_an_anatomy_the_classical_heart_is_used_and_recorded():
    from deepcac2.pipeline.synth.phantom import ChestSpec, build_chest

    ph = build_chest(ChestSpec(seed=2, rows=128, cols=128, pixel_spacing_mm=2.8, n_slices=24, slice_increment_mm=6.0))
    ct = stage_values.CTVolume(hu=ph.hu, geometry=ph.geometry, series_uid="u")
    pred = _model().predict(ct)
    assert pred.anatomy is not None and pred.anatomy.provenance.provider == "classical"
    np.testing.assert_array_equal(pred.heart, pred.anatomy.heart)
    assert pred.heart.any()


def test_published_options_keep_the_version_and_others_mark_it(tmp_path):
    from deepcac2.pipeline.models.unet.model import build

    path = tmp_path / "vivid-haze-6_model.pt"
    torch.save(UNet3D(features=(2, 4, 8, 16)).state_dict(), path)  # a bare state_dict, as published
    model = build(str(path), device="cpu")
    assert model.card.version == "vivid-haze-6_model" and model.card.license == "MIT"
    assert model.options.amp is None and not model.options.compile and model.options.resample_dtype == "int16"
    assert "float32" in model.card.description and "TorchIO 0.19.1" in model.card.description
    fast = build(str(path), device="cpu", amp="bf16", compile=True)
    assert fast.card.version == "vivid-haze-6_model+bf16+compile"
    assert "bf16" in fast.card.description


@pytest.mark.slow
@pytest.mark.shared_data
def test_real_ct_runs_through_the_unet_model(real_ct):
    ct = real_ct("A0002-B40f")
    torch.manual_seed(0)
    card = stage_values.ModelCard("deepcac2-unet", "test", None, "MIT", "none")
    model = UNetModel(net=UNet3D(features=(2, 4, 8, 16)), card=card)  # published preprocessing and windows
    from deepcac2.pipeline.anatomy.classical.provider import classical_anatomy

    anatomy = classical_anatomy(ct)
    pred = model.predict(ct, anatomy)
    assert pred.heart is anatomy.heart and pred.anatomy is anatomy
    assert pred.heart.shape == ct.shape == pred.cac.shape
    assert 300 <= pred.heart.sum() * ct.geometry.voxel_volume_mm3 / 1000 <= 1200


def test_unet_crops_around_the_anatomy_heart(monkeypatch):
    """The U-Net's crop and windows follow the heart it is given (the published pipeline's heart-model crop)."""
    from deepcac2.pipeline.anatomy.base import Anatomy, AnatomyProvenance
    from deepcac2.pipeline.models.unet import model as unet_model

    ct, heart = _ct_and_heart()
    seen = []
    real = unet_model.pp.preprocess

    def spy(hu, geometry, given, *a, **k):
        seen.append(given)
        return real(hu, geometry, given, *a, **k)

    monkeypatch.setattr(unet_model.pp, "preprocess", spy)
    empty = np.zeros_like(heart)
    anatomy = Anatomy(heart=heart, aorta=empty, pulmonary_artery=empty, provenance=AnatomyProvenance("given", "0"))
    pred = _model().predict(ct, anatomy)
    assert seen and seen[0] is heart
    assert pred.heart is heart and pred.anatomy is anatomy
