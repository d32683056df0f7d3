"""The ``deepcac2-unet`` model: the DeepCAC2 U-Net on windows, cropped around the anatomy's heart.

Checkpoints: a bare ``state_dict`` (the published ``vivid-haze-6_model.pt`` is one; the
published code calls ``model.load_state_dict(torch.load(path))``) or a dict with the
``state_dict`` under ``"state_dict"`` or ``"model"`` (our ``deepcac2 train`` writes
``{"state_dict", "card", "config"}``). Keys are never renamed; loading is strict. The
widths are read from the checkpoint, so small trained variants load the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline import types
from deepcac2.pipeline.anatomy.base import Anatomy

from . import preprocess as pp
from .network import UNet3D
from .sliding import PATCH_XYZ, STRIDE_XYZ, THRESHOLD, predict_windows

PUBLISHED_WEIGHTS = {
    "vivid-haze-6_model": (
        "DeepCAC2 training split of NLST (published MHub deepcac2 weights)",
        "MIT",
    )
}


@dataclass
class InferenceOptions:
    patch_xyz: tuple[int, int, int] = PATCH_XYZ
    stride_xyz: tuple[int, int, int] = STRIDE_XYZ
    threshold: float = THRESHOLD
    #: False reproduces the published loop (far edges of the crop never predicted)
    cover_edges: bool = False
    batch_size: int = 16
    #: "bf16" turns on autocast (CUDA only by default); None runs float32
    amp: str | None = None
    compile: bool = False
    spacing_xyz: tuple[float, float, float] = pp.SPACING_XYZ
    shape_xyz: tuple[int, int, int] = pp.SHAPE_XYZ


def read_checkpoint(path: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state_dict of a checkpoint, and whatever else it carries (card, config)."""
    if not os.path.isfile(path):
        raise DeepCACError(ErrorCode.E_MODEL_LOAD, f"weights file not found: {path}", weights=path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DeepCACError(ErrorCode.E_MODEL_LOAD, f"cannot read weights {path}: {exc}", weights=path) from exc
    extra: dict[str, Any] = {}
    if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                extra = {k: v for k, v in obj.items() if k != key}
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DeepCACError(ErrorCode.E_MODEL_LOAD, f"{path} holds no state_dict of tensors", weights=path)
    return obj, extra


def features_of(state: dict[str, torch.Tensor]) -> tuple[int, ...]:
    """Encoder widths from the shapes of ``downs.<i>.conv.0.weight``."""
    feats = []
    while f"downs.{len(feats)}.conv.0.weight" in state:
        feats.append(int(state[f"downs.{len(feats)}.conv.0.weight"].shape[0]))
    if not feats:
        raise DeepCACError(ErrorCode.E_MODEL_LOAD, "state_dict has no downs.0.conv.0.weight: not a DeepCAC2 U-Net")
    return tuple(feats)


def load_network(state: dict[str, torch.Tensor]) -> UNet3D:
    net = UNet3D(1, 1, features_of(state))
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise DeepCACError(ErrorCode.E_MODEL_LOAD, f"state_dict does not fit the DeepCAC2 U-Net: {exc}") from exc
    return net.eval()


@dataclass
class UNetModel:
    """CAC from the U-Net around the anatomy's heart, mapped back to the CT grid."""

    net: UNet3D
    card: types.ModelCard
    device: str = "cpu"
    options: InferenceOptions = field(default_factory=InferenceOptions)

    def __post_init__(self) -> None:
        self.net = self.net.to(self.device).eval()
        if torch.device(self.device).type == "cpu":
            # CPU results must repeat exactly; warn_only keeps ops without a deterministic kernel usable
            torch.use_deterministic_algorithms(True, warn_only=True)
        self._runner: torch.nn.Module = torch.compile(self.net, dynamic=False) if self.options.compile else self.net

    def predict_cac(self, ct: types.CTVolume, heart: np.ndarray) -> np.ndarray:
        """U-Net CAC mask on the CT grid, given a heart mask on the CT grid."""
        o = self.options
        pre = pp.preprocess(ct.hu, ct.geometry, heart, o.spacing_xyz, o.shape_xyz)
        amp = torch.bfloat16 if o.amp == "bf16" else None
        try:
            prob = predict_windows(
                self._runner,
                pp.to_network_order(pre.image),
                pp.to_network_order(pre.heart),
                patch=o.patch_xyz,
                stride=o.stride_xyz,
                cover_edges=o.cover_edges,
                device=self.device,
                batch_size=o.batch_size,
                amp_dtype=amp,
            )
        except torch.cuda.OutOfMemoryError as exc:
            raise DeepCACError(ErrorCode.E_OUT_OF_MEMORY, f"GPU out of memory: {exc}") from exc
        label = pp.from_network_order((prob > o.threshold).astype(np.uint8))
        return pp.to_original_grid(label, pre.geometry, ct.geometry, ct.shape) > 0

    def predict(self, ct: types.CTVolume, anatomy: Anatomy) -> types.Prediction:
        """The published pipeline crops around its heart model's mask; here, the anatomy stage's heart."""
        cac = self.predict_cac(ct, anatomy.heart)
        return types.Prediction(heart=anatomy.heart, cac=cac, card=self.card, anatomy=anatomy)


def card_for(weights: str, extra: dict[str, Any]) -> types.ModelCard:
    """The model card of a checkpoint: its own card if it carries one, else what we know."""
    sha = types.sha256_file(weights)
    saved = extra.get("card")
    if isinstance(saved, dict):
        return types.ModelCard(**{**saved, "weights_sha256": sha})
    stem = Path(weights).stem
    training, license_ = PUBLISHED_WEIGHTS.get(stem, ("unknown: weights file supplied by the user", "unknown"))
    return types.ModelCard(
        name="deepcac2-unet",
        version=stem,
        weights_sha256=sha,
        license=license_,
        training_data=training,
        description="DeepCAC2 3-D U-Net (published state_dict layout), cropped around the anatomy stage's heart",
    )


def build(weights: str | None = None, device: str | None = None, **options: Any) -> UNetModel:
    """Entry-point factory: load a checkpoint onto ``device`` (default: CUDA if present)."""
    if not weights:
        raise DeepCACError(ErrorCode.E_MODEL_LOAD, "the deepcac2-unet model needs --weights FILE")
    state, extra = read_checkpoint(weights)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if torch.device(device).type == "cuda" and "amp" not in options:
        options["amp"] = "bf16"
    return UNetModel(
        net=load_network(state), card=card_for(weights, extra), device=device, options=InferenceOptions(**options)
    )
