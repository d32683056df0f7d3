"""Train the DeepCAC2 U-Net on synthetic chest series (deterministic with a seed).

Each series is a synthetic chest with random plaques and noise; it goes through the
published preprocessing (``unet.preprocess``) with the phantom's true heart, and its
label is the planted calcium resampled nearest onto the same crop. Training patches are
the published 64x64x16 windows: half centred (with jitter) on calcium, half anywhere in
the heart. The loss is binary cross-entropy plus soft Dice. Held-out series are scored
end to end with ``UNetModel.predict_cac`` (published windows, mapping back), against
the planted calcium on the CT grid.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from deepcac2._version import __version__
from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline import stage_values
from deepcac2.pipeline.models.unet import preprocess as pp
from deepcac2.pipeline.models.unet.model import InferenceOptions, UNetModel
from deepcac2.pipeline.models.unet.network import UNet3D


@dataclass
class TrainConfig:
    seed: int = 0
    train_series: int = 12
    val_series: int = 4
    #: in-plane size and count of the synthetic slices (the crop is the published one anyway)
    rows: int = 512
    n_slices: int = 64
    noise_sd_hu: float = 20.0
    plaques_per_series: tuple[int, int] = (3, 8)
    features: tuple[int, ...] = (8, 16, 32, 64)
    steps: int = 600
    batch_size: int = 8
    lr: float = 2e-3
    threads: int = 2
    #: stop early once this much wall time (s) has passed
    time_limit_s: float = 1100.0
    options: InferenceOptions = field(default_factory=InferenceOptions)


@dataclass
class Sample:
    image: np.ndarray  # network order (x, y, z), normalised
    heart: np.ndarray
    label: np.ndarray


def synthetic_series(cfg: TrainConfig, index: int):
    from deepcac2.pipeline.synth.phantom import ChestSpec, build_chest, random_plaques

    rng = np.random.default_rng([cfg.seed, index, 11])
    n = int(rng.integers(cfg.plaques_per_series[0], cfg.plaques_per_series[1] + 1))
    spec = ChestSpec(
        seed=cfg.seed * 100_000 + index,
        rows=cfg.rows,
        cols=cfg.rows,
        pixel_spacing_mm=0.7 * 512 / cfg.rows,
        n_slices=cfg.n_slices,
        noise_sd_hu=cfg.noise_sd_hu,
        plaques=random_plaques(rng, n),
    )
    for attempt in range(5):  # a random plaque may find no clear spot; try fewer
        try:
            return build_chest(spec)
        except DeepCACError:
            spec = ChestSpec(**{**spec.__dict__, "plaques": spec.plaques[: max(1, len(spec.plaques) - 1 - attempt)]})
    return build_chest(spec)


def to_sample(phantom, options: InferenceOptions) -> Sample:
    pre = pp.preprocess(phantom.hu, phantom.geometry, phantom.heart, options.spacing_xyz, options.shape_xyz)
    label = pp.resample_to(
        (phantom.cac_vessels > 0).astype(np.uint8), phantom.geometry, pre.geometry, pre.image.shape, label=True
    )
    return Sample(pp.to_network_order(pre.image), pp.to_network_order(pre.heart), pp.to_network_order(label > 0))


def _patch_start(sample: Sample, patch: tuple[int, int, int], rng: np.random.Generator, positive: bool) -> tuple:
    shape = np.array(sample.image.shape)
    pool = np.argwhere(sample.label) if positive and sample.label.any() else np.argwhere(sample.heart)
    centre = pool[rng.integers(len(pool))] + rng.integers(-np.array(patch) // 4, np.array(patch) // 4 + 1)
    start = np.clip(centre - np.array(patch) // 2, 0, shape - np.array(patch))
    return tuple(int(s) for s in start)


def _batch(samples: list[Sample], patch, size: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for b in range(size):
        s = samples[int(rng.integers(len(samples)))]
        start = _patch_start(s, patch, rng, positive=b % 2 == 0)
        box = tuple(slice(a, a + p) for a, p in zip(start, patch, strict=True))
        xs.append(s.image[box])
        ys.append(s.label[box])
    return torch.from_numpy(np.stack(xs)[:, None]), torch.from_numpy(np.stack(ys)[:, None].astype(np.float32))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def train(cfg: TrainConfig, out: Path, log=print) -> dict:
    """Train, evaluate on held-out series, write ``model.pt`` and ``model_card.json`` into ``out``."""
    t0 = time.monotonic()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    rng = np.random.default_rng(cfg.seed)
    try:
        import deepcac2.pipeline.synth.phantom  # noqa: F401
    except ImportError as exc:
        raise DeepCACError(ErrorCode.E_MODEL_LOAD, f"training needs the synth package: {exc}") from exc
    opts = cfg.options
    samples = [to_sample(synthetic_series(cfg, i), opts) for i in range(cfg.train_series)]
    log(f"built {len(samples)} training series in {time.monotonic() - t0:.0f} s")
    net = UNet3D(features=cfg.features)
    optim = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    bce = torch.nn.BCEWithLogitsLoss()
    net.train()
    step = 0
    for step in range(1, cfg.steps + 1):
        x, y = _batch(samples, opts.patch_xyz, cfg.batch_size, rng)
        logits = net(x)
        p = torch.sigmoid(logits)
        soft_dice = 1 - (2 * (p * y).sum() + 1) / (p.sum() + y.sum() + 1)
        loss = bce(logits, y) + soft_dice
        optim.zero_grad()
        loss.backward()
        optim.step()
        if step % 25 == 0 or step == 1:
            log(f"step {step} loss {loss.item():.4f} ({time.monotonic() - t0:.0f} s)")
        if time.monotonic() - t0 > cfg.time_limit_s:
            log(f"time limit reached at step {step}")
            break
    net.eval()
    card = stage_values.ModelCard(
        name="deepcac2-unet",
        version=f"synthetic-{__version__}-seed{cfg.seed}",
        weights_sha256=None,
        license="MIT",
        training_data=f"synthetic chest phantoms (deepcac2 synth), seed {cfg.seed}, {cfg.train_series} series, "
        f"noise {cfg.noise_sd_hu:g} HU; not clinical data",
        description=f"DeepCAC2 U-Net layout, features {list(cfg.features)}, {step} steps",
    )
    model = UNetModel(net=net, card=card, device="cpu", options=opts)
    dices = []
    for i in range(cfg.val_series):
        ph = synthetic_series(cfg, 10_000 + i)
        ct = stage_values.CTVolume(hu=ph.hu, geometry=ph.geometry, series_uid=f"val-{i}")
        dices.append(dice(model.predict_cac(ct, ph.heart), ph.cac_vessels > 0))
    out.mkdir(parents=True, exist_ok=True)
    config = {**asdict(cfg), "options": asdict(opts), "features": list(cfg.features)}
    torch.save({"state_dict": net.state_dict(), "card": asdict(card), "config": config}, out / "model.pt")
    card = stage_values.ModelCard(**{**asdict(card), "weights_sha256": stage_values.sha256_file(str(out / "model.pt"))})
    report = {
        "card": asdict(card),
        "model_id": card.model_id,
        "steps": step,
        "seconds": round(time.monotonic() - t0, 1),
        "val_dice": dices,
        "val_dice_mean": float(np.mean(dices)) if dices else None,
        "config": config,
    }
    (out / "model_card.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    log(f"validation Dice per series {[round(d, 3) for d in dices]}, mean {report['val_dice_mean']}")
    return report
