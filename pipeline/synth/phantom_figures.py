"""Pictures of great-vessel phantoms next to a real chest CT, at the same window and scale.

``python -m deepcac2.pipeline.synth.phantom_figures --out docs/images [--real DIR] [--seeds 10 101]``
writes ``synth_vs_real.png`` (axial at the left atrium, axial at the arch, sagittal
through the descending aorta, coronal through the heart: the real series on top, one
phantom per row below) and ``synth_overlay_<seed>.png`` (the same planes of each phantom
with its labels outlined: heart, aorta, pulmonary arteries, calcium by group).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from deepcac2.pipeline.synth.labels import DISTRACTOR_GROUP, Distractor, Tissue  # noqa: E402
from deepcac2.pipeline.synth.phantom import ChestSpec, Phantom, build_chest  # noqa: E402

WINDOW = (-160.0, 240.0)
#: half-width of the square crop round the mediastinum, mm
CROP_MM = 110.0
OUTLINES = (
    ("heart", "deepskyblue"),
    ("aorta", "red"),
    ("pulmonary artery", "royalblue"),
    ("coronary calcium", "yellow"),
    ("aortic calcium", "magenta"),
    ("other calcium", "orange"),
)


def demo_phantom(seed: int, rows: int = 512, noise: float = 20.0) -> Phantom:
    """A great-vessel chest as the demo makes it: 0.7 mm pixels, 2.5 mm slices, liver dome to above the arch."""
    from deepcac2.pipeline.synth.named_cohorts import GREAT_VESSEL_Z_CENTER_MM, GREAT_VESSEL_Z_MM
    from deepcac2.pipeline.synth.phantom import random_plaques

    spec = ChestSpec(
        seed=seed,
        rows=rows,
        cols=rows,
        pixel_spacing_mm=0.7 * 512 / rows,
        n_slices=int(GREAT_VESSEL_Z_MM / 2.5),
        z_center_mm=GREAT_VESSEL_Z_CENTER_MM,
        noise_sd_hu=noise,
        blur_sigma_mm=0.6 if noise else 0.0,
        plaques=random_plaques(np.random.default_rng([seed, 7]), 4),
        great_vessels=True,
    )
    return build_chest(spec)


def _masks(ph: Phantom) -> dict[str, np.ndarray]:
    group = np.zeros(256, dtype="U8")
    for d in Distractor:
        group[int(d)] = DISTRACTOR_GROUP[d]
    g = group[ph.distractors]
    return {
        "heart": ph.heart,
        "aorta": ph.anatomy == Tissue.AORTA,
        "pulmonary artery": ph.anatomy == Tissue.PULMONARY_ARTERY,
        "coronary calcium": ph.cac,
        "aortic calcium": g == "aortic",
        "other calcium": (ph.distractors > 0) & (g != "aortic") & (ph.distractors != Distractor.BONE_NEAR_HEART),
    }


def _planes(hu: np.ndarray, spacing: tuple[float, float, float], origin: tuple[float, float, float], at: dict):
    """Four 2-D views (image, pixel aspect, extent in mm) of a (z, y, x) volume."""
    sx, sy, sz = spacing
    ox, oy, oz = origin

    def idx(value: float, o: float, s: float, n: int) -> int:
        return int(np.clip(round((value - o) / s), 0, n - 1))

    nz, ny, nx = hu.shape
    xs = (ox, ox + sx * (nx - 1))
    ys = (oy, oy + sy * (ny - 1))
    zs = (oz, oz + sz * (nz - 1))
    return [
        (hu[idx(at["z_atrium"], oz, sz, nz)], (xs[0], xs[1], ys[1], ys[0]), "axial, left atrium"),
        (hu[idx(at["z_arch"], oz, sz, nz)], (xs[0], xs[1], ys[1], ys[0]), "axial, arch"),
        (hu[::-1, :, idx(at["x_sagittal"], ox, sx, nx)], (ys[0], ys[1], zs[0], zs[1]), "sagittal, descending aorta"),
        (hu[::-1, idx(at["y_coronal"], oy, sy, ny), :], (xs[0], xs[1], zs[0], zs[1]), "coronal, heart"),
    ]


def _phantom_targets(ph: Phantom) -> dict[str, float]:
    top = ph.landmarks["arch_top"]
    la = ph.anatomy == Tissue.LEFT_ATRIUM
    k, j, i = np.nonzero(la)
    g = ph.geometry
    z_la = g.origin[2] + g.spacing[2] * float(np.median(k))
    desc = (ph.anatomy == Tissue.AORTA)[int(np.median(k))]
    jj, ii = np.nonzero(desc & (np.arange(desc.shape[0]) * g.spacing[1] + g.origin[1] > 10.0)[:, None])
    return {
        "z_atrium": z_la,
        "z_arch": float(top[2]) - 4.0,
        "x_sagittal": g.origin[0] + g.spacing[0] * float(np.median(ii)) if len(ii) else 20.0,
        "y_coronal": g.origin[1] + g.spacing[1] * float(np.median(j)) - 15.0,
    }


def _crop(ax, view: int, centre_xy: tuple[float, float], z_atrium: float) -> None:
    """The same mm box in every picture: +-CROP_MM round the mediastinum, z from below the heart to above the arch."""
    cx, cy = centre_xy
    lo, hi = {0: (cx, cy), 1: (cx, cy), 2: (cy, None), 3: (cx, None)}[view]
    ax.set_xlim(lo - CROP_MM, lo + CROP_MM)
    if view < 2:
        ax.set_ylim(hi + CROP_MM, hi - CROP_MM)
    else:
        ax.set_ylim(z_atrium - 90.0, z_atrium + 120.0)


def _save(fig, path: str | Path, grey: bool) -> Path:
    """Save small: 8-bit grey, or 64 colours, instead of RGBA (the pictures go into docs/)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    img = Image.open(buf)
    img = img.convert("L") if grey else img.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=128)
    img.save(path, optimize=True)
    return Path(path)


def _show(ax, img, extent, title: str) -> None:
    ax.imshow(img, cmap="gray", vmin=WINDOW[0], vmax=WINDOW[1], extent=extent, interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def overlay_figure(ph: Phantom, path: str | Path, title: str = "") -> Path:
    """Axial (left atrium, arch), sagittal and coronal planes of a phantom with its labels outlined."""
    at = _phantom_targets(ph)
    g = ph.geometry
    views = _planes(ph.hu, g.spacing, g.origin, at)
    masks = {name: _planes(m.astype(np.float32), g.spacing, g.origin, at) for name, m in _masks(ph).items()}
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.6), dpi=60)
    for n, (ax, (img, extent, label)) in enumerate(zip(axes, views, strict=True)):
        _show(ax, img, extent, label)
        for name, colour in OUTLINES:
            m = masks[name][n][0]
            if m.any():
                ax.contour(m, levels=[0.5], colors=colour, linewidths=0.7, extent=extent, origin="upper")
        _crop(ax, n, (0.0, 0.0), at["z_atrium"])
    handles = [matplotlib.lines.Line2D([], [], color=c, label=n) for n, c in OUTLINES]
    fig.legend(handles=handles, loc="lower center", ncol=len(OUTLINES), fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    return _save(fig, path, grey=False)


#: the real series' planes (Lung_Dx-A0001, soft kernel B, 5 mm): chosen by looking at it
REAL_TARGETS = {"z_atrium": -309.0, "z_arch": -234.0, "x_sagittal": 1.0, "y_coronal": 145.0}


def comparison_figure(phantoms: list[tuple[str, Phantom]], path: str | Path, real_dir: str | Path | None) -> Path:
    """The real series (if given) on top, then each phantom: same planes, window and mm scale."""
    rows = []
    if real_dir is not None:
        from deepcac2.pipeline.loader import load_series

        ct = load_series(real_dir)
        g = ct.geometry
        # the real series' mediastinum sits off the image centre: crop round its own centre
        planes = _planes(ct.hu, g.spacing, g.origin, REAL_TARGETS)
        rows.append(("real (Lung_Dx-A0001)", planes, (-4.0, 145.0), REAL_TARGETS["z_atrium"]))
    for name, ph in phantoms:
        g = ph.geometry
        at = _phantom_targets(ph)
        rows.append((name, _planes(ph.hu, g.spacing, g.origin, at), (0.0, 0.0), at["z_atrium"]))
    fig, axes = plt.subplots(len(rows), 4, figsize=(12, 3.0 * len(rows)), dpi=55, squeeze=False)
    for r, (name, views, centre, z_atrium) in enumerate(rows):
        for n, (img, extent, label) in enumerate(views):
            _show(axes[r, n], img, extent, f"{name}: {label}" if n == 0 else label)
            _crop(axes[r, n], n, centre, z_atrium)
    fig.tight_layout()
    return _save(fig, path, grey=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--real", default=None, help="a real chest CT series folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[10, 101])
    parser.add_argument("--rows", type=int, default=512)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    phantoms = [(f"phantom seed {s}", demo_phantom(s, args.rows)) for s in args.seeds]
    for (name, ph), seed in zip(phantoms, args.seeds, strict=True):
        overlay_figure(ph, out / f"synth_overlay_{seed}.png", title=f"great-vessel {name} (noise 20 HU)")
    comparison_figure(phantoms, out / "synth_vs_real.png", args.real)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
