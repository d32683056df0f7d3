"""The ``deepcac2-unet`` model: the anatomy stage's heart, then the DeepCAC2 U-Net on windows.

``predict(ct, anatomy)`` crops around ``anatomy.heart`` (from whichever provider the
anatomy stage chose: ``idc-totalsegmentator``, ``platipy-task400``, ``classical``) and
returns the anatomy with the prediction, so its provenance reaches the tables, SEG and SR.
Without an anatomy it asks the ``classical`` provider (or the classical localiser when no
provider is registered). Defaults reproduce the published pipeline: float32 everywhere
(TF32 convolutions allowed on CUDA, as torch 2.0.1 did), TorchIO 0.19.1's grid, the
integer CT resampled as integers, the published window loop. bf16 autocast and
``torch.compile`` are opt-in, and a card whose options differ from the published ones says
so in its version (e.g. ``vivid-haze-6+bf16``), so tables never mix the two.

Checkpoints: a bare ``state_dict`` (the published ``vivid-haze-6_model.pt`` is one; the
published code calls ``model.load_state_dict(torch.load(path))``) or a dict with the
``state_dict`` under ``"state_dict"`` or ``"model"`` (our ``deepcac2 train`` writes
``{"state_dict", "card", "config"}``). Keys are never renamed; loading is strict. The
widths are read from the checkpoint, so small trained variants load the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline import stage_values

from . import preprocess as pp
from .network import UNet3D
from .sliding import PATCH_XYZ, STRIDE_XYZ, THRESHOLD, heart_windows, predict_windows

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
    #: None runs float32 (the published precision); "bf16" turns on autocast (opt-in)
    amp: str | None = None
    compile: bool = False
    #: CUDA only: allow TF32 in cuDNN convolutions (torch's default, so the published run had it)
    tf32: bool = True
    spacing_xyz: tuple[float, float, float] = pp.SPACING_XYZ
    shape_xyz: tuple[int, int, int] = pp.SHAPE_XYZ
    #: pixel type the CT is resampled in: "int16" (the stored integers, ITK truncation) or "float32"
    resample_dtype: str = "int16"

    def differences(self) -> list[str]:
        """Options that depart from the published pipeline, as short tags (empty: the published one)."""
        tags = []
        if self.amp:
            tags.append(self.amp)
        if self.compile:
            tags.append("compile")
        if not self.tf32:
            tags.append("notf32")
        if self.cover_edges:
            tags.append("edges")
        if self.resample_dtype != "int16":
            tags.append(f"resample-{self.resample_dtype}")
        if (self.patch_xyz, self.stride_xyz, self.threshold) != (PATCH_XYZ, STRIDE_XYZ, THRESHOLD):
            tags.append("windows")
        if (self.spacing_xyz, self.shape_xyz) != (pp.SPACING_XYZ, pp.SHAPE_XYZ):
            tags.append("grid")
        return tags

    def describe(self) -> str:
        """What the card says about how the network is run."""
        precision = (
            "bf16 autocast" if self.amp == "bf16" else "float32" + (" (TF32 convolutions on CUDA)" if self.tf32 else "")
        )
        return (
            f"crop {self.shape_xyz} at {self.spacing_xyz} mm around the anatomy stage's heart (TorchIO 0.19.1 grid: "
            f"ceil size, corner-aligned first voxel; CT resampled as {self.resample_dtype}); windows {self.patch_xyz} "
            f"stride {self.stride_xyz}{' + far edges' if self.cover_edges else ' (published loop)'}; {precision}"
            f"{'; torch.compile' if self.compile else ''}; mean sigmoid > {self.threshold}"
        )


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
class CACResult:
    """The U-Net's CAC mask on the CT grid and where the crop went (for reports and tests)."""

    cac: np.ndarray
    pre: pp.Preprocessed
    windows: int


@dataclass
class UNetModel:
    """Heart from the anatomy stage, CAC from the U-Net, mapped back to the CT grid."""

    net: UNet3D
    card: stage_values.ModelCard
    device: str = "cpu"
    options: InferenceOptions = field(default_factory=InferenceOptions)

    def __post_init__(self) -> None:
        self.net = self.net.to(self.device).eval()
        if torch.device(self.device).type == "cpu":
            # CPU results must repeat exactly; warn_only keeps ops without a deterministic kernel usable
            torch.use_deterministic_algorithms(True, warn_only=True)
        else:
            torch.backends.cudnn.allow_tf32 = self.options.tf32
        self._runner: torch.nn.Module = torch.compile(self.net, dynamic=False) if self.options.compile else self.net

    def run_cac(self, ct: stage_values.CTVolume, heart: np.ndarray) -> CACResult:
        """U-Net CAC mask on the CT grid, given a heart mask on the CT grid, with the crop it used."""
        o = self.options
        pre = pp.preprocess(ct.hu, ct.geometry, heart, o.spacing_xyz, o.shape_xyz, o.resample_dtype)
        amp = torch.bfloat16 if o.amp == "bf16" else None
        heart_xyz = pp.to_network_order(pre.heart)
        try:
            prob = predict_windows(
                self._runner,
                pp.to_network_order(pre.image),
                heart_xyz,
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
        windows = len(heart_windows(heart_xyz, o.patch_xyz, o.stride_xyz, o.cover_edges))
        return CACResult(cac=pp.to_ct_grid(label, pre) > 0, pre=pre, windows=windows)

    def predict_cac(self, ct: stage_values.CTVolume, heart: np.ndarray) -> np.ndarray:
        """U-Net CAC mask on the CT grid, given a heart mask on the CT grid."""
        return self.run_cac(ct, heart).cac

    def predict(self, ct: stage_values.CTVolume, anatomy: Any = None) -> stage_values.Prediction:
        """CAC inside the crop around ``anatomy.heart``; the anatomy travels with the prediction."""
        if anatomy is None:
            anatomy = default_anatomy(ct)
        heart = np.asarray(anatomy.heart, dtype=bool)
        if heart.shape != ct.shape:
            raise DeepCACError(
                ErrorCode.E_ANATOMY_GEOMETRY,
                f"anatomy heart {heart.shape} is not on the CT grid {ct.shape}",
                series=ct.series_uid,
            )
        return stage_values.Prediction(heart=heart, cac=self.predict_cac(ct, heart), card=self.card, anatomy=anatomy)


def default_anatomy(ct: stage_values.CTVolume) -> Any:
    """The anatomy when the caller gave none: the ``classical`` provider, else the classical localiser."""
    from deepcac2.pipeline.anatomy import registry

    ref = stage_values.SeriesRef(series_uid=ct.series_uid, study_uid=ct.study_uid, patient_id=ct.patient_id)
    if "classical" in registry.available_providers():
        return registry.resolve_anatomy(ref, ct, "classical")
    from deepcac2.pipeline.anatomy.classical.segment import anatomy_of

    return anatomy_of(ct)


def card_for(
    weights: str, extra: dict[str, Any], options: InferenceOptions | None = None, weights_sha256: str | None = None
) -> stage_values.ModelCard:
    """The model card of a checkpoint: its own card if it carries one, else what we know.

    The description says how the network is run (grid, precision, heart); options that
    depart from the published pipeline are appended to the version (``+bf16``, ...).
    ``weights_sha256``: the digest the run read (``ModelSpec``); None reads it here.
    """
    options = options or InferenceOptions()
    sha = weights_sha256 or stage_values.sha256_file(weights)
    saved = extra.get("card")
    if isinstance(saved, dict):
        card = stage_values.ModelCard(**{**saved, "weights_sha256": sha})
    else:
        stem = Path(weights).stem
        training, license_ = PUBLISHED_WEIGHTS.get(stem, ("unknown: weights file supplied by the user", "unknown"))
        card = stage_values.ModelCard(
            name="deepcac2-unet",
            version=stem,
            weights_sha256=sha,
            license=license_,
            training_data=training,
            description="DeepCAC2 3-D U-Net (published state_dict layout)",
        )
    tags = options.differences()
    version = card.version + "".join(f"+{t}" for t in tags)
    description = f"{card.description.rstrip('. ')}. {options.describe()}".lstrip(". ")
    return replace(card, version=version, description=description)


def build(
    weights: str | None = None, device: str | None = None, weights_sha256: str | None = None, **options: Any
) -> UNetModel:
    """Entry-point factory: load a checkpoint onto ``device`` (default: CUDA if present), float32."""
    if not weights:
        raise DeepCACError(ErrorCode.E_MODEL_LOAD, "the deepcac2-unet model needs --weights FILE")
    state, extra = read_checkpoint(weights)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    opts = InferenceOptions(**options)
    card = card_for(weights, extra, opts, weights_sha256)
    return UNetModel(net=load_network(state), card=card, device=device, options=opts)
