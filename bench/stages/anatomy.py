"""Anatomy from IDC's TotalSegmentator SEG, read by byte range (issue 14), side by side with the loader.

A real-size SEG: a 512x512x150 great-vessel chest's TotalSegmentator label map (synth's),
filled up to all 104 classes with discs in the unlabelled body (abdomen, arms and muscles
of a real scan) so that the object has about the frame count of IDC's NLST SEGs
(85-100 MB: ~2,750 frames of 512x512 bits), written by dcmqi with IDC's metadata.

Measured: the bytes read for the 7 wanted segments (five heart classes, aorta, pulmonary
artery; header included) as a share of the object, and the provider's time against the
loader's on the same series, alternating.
"""

from __future__ import annotations

import time

import numpy as np

from bench.context import BenchContext, Result
from bench.measure import paired_ratio, time_alternating

N_SLICES = 150
#: frames of IDC's NLST SEGs at 512x512 (85-100 MB of 32 KiB frames, about 2% header)
TARGET_FRAMES = 2750


#: classes the phantom already draws (or that a chest scan shows in full): never used as filler
THORACIC = ("heart_", "aorta", "pulmonary_artery", "trachea", "esophagus", "lung_", "vertebrae_", "rib_")


def _fill_to_104(labels: np.ndarray, body: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Add every missing non-thoracic class (abdomen, shoulders, arms, muscles) as a disc in the free
    body, so the SEG has all 104 segments and about ``TARGET_FRAMES`` frames like IDC's."""
    from deepcac2.pipeline.totalseg.codes import classes

    out = labels.copy()
    present = {int(v) for v in np.unique(labels) if v}
    missing = [v for name, (v, _) in classes().items() if v not in present and not name.startswith(THORACIC)]
    frames_now = sum(int((labels == v).any(axis=(1, 2)).sum()) for v in present)
    per_class = max((TARGET_FRAMES - frames_now) // max(len(missing), 1), 1)
    nz = labels.shape[0]
    for v in missing:
        z0 = int(rng.integers(0, max(nz - per_class, 1)))
        zs = slice(z0, min(z0 + per_class, nz))
        free = body[zs].all(axis=0) & (out[zs] == 0).all(axis=0)  # free on every slice of the run
        if not free[::6, ::6].any():  # crowded: free on some slice is enough
            free = (body[zs] & (out[zs] == 0)).any(axis=0)
        yy, xx = np.nonzero(free[::6, ::6])
        i = int(rng.integers(yy.size))
        y, x = yy[i] * 6, xx[i] * 6
        disc = np.zeros(labels.shape[1:], dtype=bool)
        disc[max(y - 5, 0) : y + 5, max(x - 5, 0) : x + 5] = True
        sub = out[zs]
        sub[(sub == 0) & body[zs] & disc[None]] = v
    return out


def build_case(ctx: BenchContext) -> dict:
    key = "anatomy_case"
    if key in ctx.cache:
        return ctx.cache[key]
    from deepcac2.pipeline.synth.dicom_writer import write_series
    from deepcac2.pipeline.synth.nlst_headers import SCANNERS, study_meta
    from deepcac2.pipeline.synth.phantom import ChestSpec, build_chest
    from deepcac2.pipeline.synth.totalseg_writer import label_map, with_boundary_errors, write_totalseg_seg

    spec = ChestSpec(seed=0, n_slices=N_SLICES, noise_sd_hu=25.0, great_vessels=True, z_center_mm=0.0)
    phantom = build_chest(spec)
    folder = ctx.work / "anatomy_ct"
    t0 = time.perf_counter()
    write_series(phantom, study_meta("bench", 0, 14, 0, SCANNERS[0], SCANNERS[0].kernels[0]), folder)
    ct_write_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    labels = with_boundary_errors(label_map(phantom), phantom.geometry.spacing, 0)
    labels_s = time.perf_counter() - t0
    full = _fill_to_104(labels, phantom.hu > -500, np.random.default_rng(0))
    t0 = time.perf_counter()
    seg = write_totalseg_seg(full, phantom, folder, ctx.work / "anatomy_seg" / "seg_reader.dcm")
    dcmqi_s = time.perf_counter() - t0
    ctx.cache[key] = {"folder": folder, "seg": seg, "ct_write_s": ct_write_s, "labels_s": labels_s, "dcmqi_s": dcmqi_s}
    return ctx.cache[key]


def run(ctx: BenchContext) -> list[Result]:
    from deepcac2.pipeline.anatomy.idc_totalseg import anatomy_from_seg
    from deepcac2.pipeline.loader import load_series
    from deepcac2.pipeline.totalseg import seg_reader
    from deepcac2.pipeline.totalseg.byte_ranges import LocalFile

    case = build_case(ctx)
    ct = load_series(case["folder"])
    size = case["seg"].stat().st_size
    header = seg_reader.read_header(LocalFile(case["seg"]))
    n_frames, n_segments = len(header.frame_segment), len(header.segments)

    wanted = LocalFile(case["seg"])
    anatomy_from_seg(wanted, ct, structures=())
    default = LocalFile(case["seg"])
    anatomy_from_seg(default, ct)
    share = wanted.bytes_read / size

    t = time_alternating(
        {
            "loader": lambda: load_series(case["folder"]),
            "anatomy": lambda: anatomy_from_seg(LocalFile(case["seg"]), ct),
            "anatomy7": lambda: anatomy_from_seg(LocalFile(case["seg"]), ct, structures=()),
        },
        max(3, ctx.repeats),
    )
    ratio, spread = paired_ratio(t["anatomy"], t["loader"])
    ratio7, spread7 = paired_ratio(t["anatomy7"], t["loader"])
    return [
        Result(
            "anatomy", f"TotalSegmentator SEG 512x512x{N_SLICES}, {n_segments} segments: bytes read for the 7 wanted / object",
            share, "x", "<= 0.10", share <= 0.10,
            detail=f"{wanted.bytes_read / 1e6:.1f} of {size / 1e6:.1f} MB ({n_frames} frames; header {header.pixel_offset / 1e6:.2f} MB); "
            f"with the default structures (trachea, esophagus, vertebrae, ribs) {default.bytes_read / size:.3f}",
        ),
        Result(
            "anatomy", "anatomy from the SEG (default structures) / loader, same series", ratio, "x", "<= 0.5", ratio <= 0.5,
            spread=spread,
            detail=f"anatomy {t['anatomy'].median:.2f} s, loader {t['loader'].median:.2f} s (medians); median of per-round ratios",
        ),
        Result(
            "anatomy", "anatomy from the SEG (7 wanted segments only) / loader, same series", ratio7, "x", "<= 0.5",
            ratio7 <= 0.5, spread=spread7, detail=f"anatomy {t['anatomy7'].median:.2f} s",
        ),
        Result(
            "anatomy", "synth: TotalSegmentator SEG write (label map + dcmqi) / CT write, same chest",
            (case["labels_s"] + case["dcmqi_s"]) / case["ct_write_s"], "x",
            detail=f"label map {case['labels_s']:.1f} s, dcmqi {case['dcmqi_s']:.1f} s, CT write {case['ct_write_s']:.1f} s "
            f"(one run each; 104 classes at 512x512x{N_SLICES})",
        ),
    ]  # fmt: skip
