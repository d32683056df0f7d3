"""``deepcac2 train`` on tiny synthetic data: deterministic, writes a loadable checkpoint and card."""

from __future__ import annotations

import json

import pytest
import torch

from deepcac2.pipeline.models import base
from deepcac2.pipeline.models.unet.model import InferenceOptions

pytest.importorskip("deepcac2.pipeline.synth.phantom")

from deepcac2.pipeline.dev.unet_train import TrainConfig, train  # noqa: E402


def _cfg(seed: int) -> TrainConfig:
    return TrainConfig(
        seed=seed,
        train_series=2,
        val_series=1,
        rows=128,
        n_slices=40,
        features=(2, 4, 8, 16),
        steps=3,
        batch_size=2,
        options=InferenceOptions(
            patch_xyz=(32, 32, 16), stride_xyz=(16, 16, 8), spacing_xyz=(2.8, 2.8, 5.0), shape_xyz=(64, 64, 32)
        ),
    )


@pytest.mark.slow
def test_training_is_deterministic_and_checkpoint_loads(tmp_path):
    a = train(_cfg(1), tmp_path / "a", log=lambda *_: None)
    b = train(_cfg(1), tmp_path / "b", log=lambda *_: None)
    sa = torch.load(tmp_path / "a" / "model.pt", weights_only=True)["state_dict"]
    sb = torch.load(tmp_path / "b" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a["val_dice"] == b["val_dice"]
    card = json.loads((tmp_path / "a" / "model_card.json").read_text())
    assert card["card"]["weights_sha256"] and "synthetic" in card["card"]["training_data"]
    base.clear_cache()
    model = base.load_model(weights=str(tmp_path / "a" / "model.pt"), device="cpu")
    assert model.card.weights_sha256 == card["card"]["weights_sha256"]
    assert model.net.features == (2, 4, 8, 16)
    base.clear_cache()
