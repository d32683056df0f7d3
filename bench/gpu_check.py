"""GPU check of DeepCAC2 U-Net inference: fp32 (the default) against the opt-in fast modes.

Runs the full-size U-Net (64..512 features) sliding-window stage on a synthetic
512x512x150 chest series: preprocessing (CPU), heart-touching windows in batches (GPU),
mapping back to the CT grid. The heart mask is the phantom's own, so the timing is the
CAC stage alone; the classical heart localiser is timed once, separately, on the CPU.

Modes: ``fp32`` is the default and the published precision (float32, TF32 allowed in cuDNN
convolutions as torch does by default: the published run on torch 2.0.1 had it);
``fp32-strict`` turns TF32 off; ``bf16`` (autocast) and ``bf16+compile`` are the opt-in
fast modes. For each it prints s/series, series/s, peak GPU memory, and against fp32: Dice
of the CAC mask, voxels that differ, and the Agatston score (``deepcac`` convention) with
its difference and whether the risk category moved. Exit status 1 when a mode's Dice is
under ``--min-dice`` (0.99). Target: <= 1 s per series on one H100.

Without ``--weights`` the network is randomly initialised and then made "decisive"
(final 1x1 convolution scaled so logits sit far from 0 and about 3% of heart-window
voxels are positive): a random net's logits hover at 0, where any rounding flips the
0.5 threshold, which would make the Dice check meaningless. This measures numerical
agreement, not accuracy.

``--tiny --device cpu`` runs a small network on a small series in seconds (tested).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace

import numpy as np
import torch

from deepcac2.pipeline import stage_values
from deepcac2.pipeline.models.unet.model import InferenceOptions, UNetModel, load_network, read_checkpoint
from deepcac2.pipeline.models.unet.network import UNet3D
from deepcac2.pipeline.scoring.engine import score_series

FULL = dict(
    chest=dict(rows=512, cols=512, n_slices=150, pixel_spacing_mm=0.7, slice_increment_mm=2.5),
    features=(64, 128, 256, 512),
    options=InferenceOptions(),
)
TINY = dict(
    chest=dict(rows=96, cols=96, n_slices=24, pixel_spacing_mm=2.5, slice_thickness_mm=5.0, slice_increment_mm=5.0),
    features=(4, 8, 16, 32),
    options=InferenceOptions(
        patch_xyz=(32, 32, 16), stride_xyz=(16, 16, 8), spacing_xyz=(2.5, 2.5, 5.0), shape_xyz=(64, 64, 32)
    ),
)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def agatston(ct: stage_values.CTVolume, mask: np.ndarray) -> tuple[float, str]:
    """Agatston score (deepcac convention) of a mask and its DeepCAC risk category."""
    s = score_series(ct.hu, ct.geometry, mask, convention="deepcac")
    return s.agatston, s.categories["deepcac"]


def synthetic_series(chest: dict, seed: int = 0) -> tuple[stage_values.CTVolume, np.ndarray]:
    from deepcac2.pipeline.synth.phantom import ChestSpec, build_chest, random_plaques

    spec = ChestSpec(seed=seed, noise_sd_hu=25.0, plaques=random_plaques(np.random.default_rng(seed), 6), **chest)
    ph = build_chest(spec)
    ct = stage_values.CTVolume(hu=ph.hu, geometry=ph.geometry, series_uid=f"gpu-check-{seed}")
    return ct, ph.heart


def make_decisive(model: UNetModel, ct: stage_values.CTVolume, heart: np.ndarray, positive: float = 0.03) -> None:
    """Scale the random final layer so logits are large and ``positive`` of window voxels are > 0."""
    from deepcac2.pipeline.models.unet import preprocess as pp
    from deepcac2.pipeline.models.unet.sliding import heart_windows

    o = model.options
    pre = pp.preprocess(ct.hu, ct.geometry, heart, o.spacing_xyz, o.shape_xyz)
    image = pp.to_network_order(pre.image)
    starts = heart_windows(pp.to_network_order(pre.heart), o.patch_xyz, o.stride_xyz, o.cover_edges)[:8]
    x = torch.stack(
        [torch.from_numpy(image[tuple(slice(s, s + p) for s, p in zip(st, o.patch_xyz, strict=True))]) for st in starts]
    )
    with torch.inference_mode():
        logits = model.net(x[:, None].to(model.device)).float().cpu().numpy()
    q = float(np.quantile(logits, 1.0 - positive))
    scale = 20.0 / max(float(logits.std()), 1e-6)
    with torch.no_grad():
        model.net.final_conv.weight.mul_(scale)
        model.net.final_conv.bias.copy_((model.net.final_conv.bias - q) * scale)


def time_mode(model: UNetModel, ct: stage_values.CTVolume, heart: np.ndarray, repeats: int) -> dict:
    cuda = torch.device(model.device).type == "cuda"
    t0 = time.perf_counter()
    mask = model.predict_cac(ct, heart)  # warm-up (and compilation)
    warmup = time.perf_counter() - t0
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        mask = model.predict_cac(ct, heart)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else float("nan")
    s = float(np.median(times))
    return {"s_per_series": s, "series_per_s": 1.0 / s, "peak_gpu_mib": peak, "warmup_s": warmup, "mask": mask}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="small network and series (CPU test mode)")
    p.add_argument("--device", default=None, help="default: cuda when present, else cpu")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--weights", default=None, help="a checkpoint instead of random weights")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile mode")
    p.add_argument("--min-dice", type=float, default=0.99)
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cfg = TINY if args.tiny else FULL
    torch.manual_seed(0)
    if torch.device(device).type == "cuda":
        torch.backends.cudnn.benchmark = True
    t0 = time.perf_counter()
    ct, heart = synthetic_series(cfg["chest"])
    print(f"series {ct.shape[::-1]} (x, y, z) built in {time.perf_counter() - t0:.1f} s", flush=True)

    if args.weights:
        net = load_network(read_checkpoint(args.weights)[0])
    else:
        net = UNet3D(features=cfg["features"]).eval()
    card = stage_values.ModelCard("deepcac2-unet", "gpu-check", None, "MIT", "random weights (gpu check)")
    base = replace(cfg["options"], batch_size=args.batch_size)
    modes = {"fp32": base}
    if torch.device(device).type == "cuda":
        modes["fp32-strict"] = replace(base, tf32=False)
    modes["bf16"] = replace(base, amp="bf16")
    if not args.no_compile:
        modes["bf16+compile"] = replace(base, amp="bf16", compile=True)

    results: dict[str, dict] = {}
    reference = None
    for name, options in modes.items():
        # UNetModel sets cuDNN's TF32 switch from options.tf32 (fp32: on, as torch's default)
        model = UNetModel(net=net, card=card, device=device, options=options)
        if reference is None and not args.weights:
            make_decisive(model, ct, heart)
        r = time_mode(model, ct, heart, args.repeats)
        mask = r.pop("mask")
        if reference is None:
            reference = mask
            ref_score, ref_category = agatston(ct, mask)
        score, category = agatston(ct, mask)
        r["dice_vs_fp32"] = dice(mask, reference)
        r["voxels_differing_from_fp32"] = int((mask != reference).sum())
        r["positive_voxels"] = int(mask.sum())
        r["agatston"] = score
        r["agatston_diff_vs_fp32"] = score - ref_score
        r["agatston_rel_diff_vs_fp32"] = (score - ref_score) / ref_score if ref_score else (0.0 if not score else None)
        r["risk_category"] = category
        r["risk_category_changed"] = category != ref_category
        results[name] = r
        rel = r["agatston_rel_diff_vs_fp32"]
        print(
            f"{name:>13}: {r['s_per_series']:.3f} s/series  {r['series_per_s']:.2f} series/s  "
            f"peak GPU {r['peak_gpu_mib']:.0f} MiB  warm-up {r['warmup_s']:.1f} s  "
            f"Dice vs fp32 {r['dice_vs_fp32']:.4f} ({r['voxels_differing_from_fp32']} voxels differ)  "
            f"Agatston {score:.1f} ({r['agatston_diff_vs_fp32']:+.2f}"
            f"{'' if rel is None else f', {100 * rel:+.2f}%'} vs fp32, {category}"
            f"{', CATEGORY CHANGED' if r['risk_category_changed'] else ''})",
            flush=True,
        )

    from deepcac2.pipeline.anatomy.classical.segment import localise_heart

    t0 = time.perf_counter()
    localise_heart(ct.hu, ct.geometry)
    heart_s = time.perf_counter() - t0
    print(f"classical heart stage (CPU): {heart_s:.2f} s/series")
    ok = all(r["dice_vs_fp32"] >= args.min_dice for r in results.values())
    best = min(r["s_per_series"] for r in results.values())
    summary = {
        "device": torch.cuda.get_device_name() if torch.device(device).type == "cuda" else "cpu",
        "tiny": args.tiny,
        "series_shape_xyz": list(ct.shape[::-1]),
        "modes": results,
        "heart_stage_cpu_s": heart_s,
        "dice_ok": ok,
        "target_1s_met": (best <= 1.0) if not args.tiny else None,
    }
    print(f"Dice >= {args.min_dice}: {'PASS' if ok else 'FAIL'}; best {best:.3f} s/series")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
