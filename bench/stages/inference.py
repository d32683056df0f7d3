"""Inference on CPU: classical model vs the DeepCAC2 U-Net, small and full width (issue 5).

Random weights (inference cost does not depend on their values). The full-width U-Net
is timed on a fixed number of heart windows and projected to the series' window count:
a whole 512x512x150 series of it takes many minutes on 2 cores.
"""

from __future__ import annotations

import time

import numpy as np

from bench.context import BenchContext, Result
from bench.data import chest_phantom
from bench.measure import peak_rss_result, time_alternating

SMALL = (8, 16, 32, 64)
FULL = (64, 128, 256, 512)
FULL_WINDOWS = 4


def classical_once(n_slices: int) -> None:
    """The classical model on one phantom series, in a fresh process (for its peak RSS)."""
    from deepcac2.pipeline.anatomy.classical.provider import classical_anatomy
    from deepcac2.pipeline.models.base import load_model
    from deepcac2.pipeline.stage_values import CTVolume

    phantom = chest_phantom(n_slices)
    ct = CTVolume(hu=phantom.hu, geometry=phantom.geometry, series_uid="bench-rss")
    load_model("classical").predict(ct, classical_anatomy(ct))


def preprocess_once(n_slices: int) -> None:
    """The U-Net preprocessing of one phantom series, in a fresh process (for its peak RSS)."""
    from deepcac2.pipeline.models.unet import preprocess as pp
    from deepcac2.pipeline.models.unet.model import InferenceOptions

    phantom = chest_phantom(n_slices)
    o = InferenceOptions()
    pp.preprocess(phantom.hu, phantom.geometry, phantom.heart, o.spacing_xyz, o.shape_xyz)


def run(ctx: BenchContext) -> list[Result]:
    import torch

    from deepcac2.pipeline.anatomy.classical.provider import classical_anatomy
    from deepcac2.pipeline.models.base import load_model
    from deepcac2.pipeline.models.unet import preprocess as pp
    from deepcac2.pipeline.models.unet.model import InferenceOptions, UNetModel
    from deepcac2.pipeline.models.unet.network import UNet3D
    from deepcac2.pipeline.models.unet.sliding import heart_windows
    from deepcac2.pipeline.stage_values import CTVolume, ModelCard

    torch.manual_seed(0)
    phantom = chest_phantom(150)
    ct = CTVolume(hu=phantom.hu, geometry=phantom.geometry, series_uid="bench-inference")
    card = ModelCard("bench-unet", "0", None, "MIT", "random weights")
    classical = load_model("classical")
    small = UNetModel(net=UNet3D(features=SMALL), card=card, options=InferenceOptions(batch_size=8))
    heart = phantom.heart
    t = time_alternating(
        {
            "classical": lambda: classical.predict(ct, classical_anatomy(ct)),
            "unet_small": lambda: small.predict_cac(ct, heart),
        },
        max(1, ctx.repeats // 2),
    )
    results = [
        Result("inference", "classical, 512x512x150 (CPU)", t["classical"].median, "s/series", spread=t["classical"].spread),
        Result(
            "inference", f"U-Net {SMALL} CAC stage / classical (CPU)", t["unet_small"].median / t["classical"].median, "x",
            detail=f"U-Net small {t['unet_small'].median:.1f} s/series",
        ),
    ]  # fmt: skip

    results.append(peak_rss_result("inference", "classical + phantom, 512x512x150", ct.hu.nbytes, classical_once, 150))

    # preprocessing alone (resample to 0.7x0.7x2.5, crop/pad around the heart, normalise)
    o = InferenceOptions()
    prep = time_alternating({"pre": lambda: pp.preprocess(ct.hu, ct.geometry, heart, o.spacing_xyz, o.shape_xyz)}, 3)
    results.append(
        Result(
            "inference", "U-Net preprocessing, 512x512x150 (CPU)", prep["pre"].median, "s", spread=prep["pre"].spread
        )
    )
    results.append(
        peak_rss_result("inference", "U-Net preprocessing + phantom, 512x512x150", ct.hu.nbytes, preprocess_once, 150)
    )

    # full width: time FULL_WINDOWS windows, project to the series' heart-window count
    pre = pp.preprocess(ct.hu, ct.geometry, heart, o.spacing_xyz, o.shape_xyz)
    starts = heart_windows(pp.to_network_order(pre.heart), o.patch_xyz, o.stride_xyz, o.cover_edges)
    net = UNet3D(features=FULL).eval()
    x = torch.from_numpy(np.zeros((FULL_WINDOWS, 1, *o.patch_xyz), np.float32))
    with torch.inference_mode():
        net(x[:1])  # warm-up
        t0 = time.perf_counter()
        net(x)
        per_window = (time.perf_counter() - t0) / FULL_WINDOWS
    projected = per_window * len(starts)
    results.append(
        Result(
            "inference", f"U-Net {FULL} (published width), projected series (CPU)", projected, "s/series",
            detail=f"{per_window:.2f} s/window x {len(starts)} heart windows; {projected / t['classical'].median:.0f}x classical",
        )
    )  # fmt: skip
    return results
