"""Pictures of an anatomy on its CT: axial, coronal and sagittal planes through the heart's centre.

``python -m deepcac2.pipeline.dev.anatomy_figures --out docs/images`` redraws the pictures of
``docs/anatomy.md``: a synthetic great-vessel chest with each provider's anatomy, and the
real chest CT in ``../shared/data`` (Lung-PET-CT-Dx A0001, kernel B) with ``classical``
(it has no TotalSegmentator SEG).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from deepcac2.pipeline import stage_values
from deepcac2.pipeline.anatomy.base import Anatomy

#: mask name -> colour (RGB 0-1); structures not listed are drawn faint grey
COLOURS: dict[str, tuple[float, float, float]] = {
    "heart": (0.85, 0.15, 0.15),
    "aorta": (1.0, 0.75, 0.0),
    "pulmonary_artery": (0.2, 0.45, 1.0),
    "esophagus": (0.1, 0.75, 0.3),
    "trachea": (0.0, 0.8, 0.8),
    "vertebrae": (0.8, 0.8, 0.8),
    "ribs": (0.65, 0.65, 0.65),
}


def _planes(ct: stage_values.CTVolume, anatomy: Anatomy) -> list[tuple[str, np.ndarray, dict[str, np.ndarray], float]]:
    """(title, HU plane, masks in that plane, aspect) for axial, coronal and sagittal cuts through the heart."""
    where = np.argwhere(anatomy.heart)
    k, j, i = (where.mean(axis=0).round().astype(int) if len(where) else np.asarray(ct.shape) // 2).tolist()
    sx, sy, sz = ct.geometry.spacing
    masks = {n: m for n, m in anatomy.masks().items() if n in COLOURS}
    flip = ct.geometry.direction_matrix[2, 2] < 0  # draw superior up
    cut = [
        ("axial", ct.hu[k], {n: m[k] for n, m in masks.items()}, sy / sx),
        ("coronal", ct.hu[:, j, :], {n: m[:, j, :] for n, m in masks.items()}, sz / sx),
        ("sagittal", ct.hu[:, :, i], {n: m[:, :, i] for n, m in masks.items()}, sz / sy),
    ]
    out = []
    for name, plane, ms, aspect in cut:
        if name != "axial" and not flip:
            plane, ms = plane[::-1], {n: m[::-1] for n, m in ms.items()}
        out.append((name, plane, ms, aspect))
    return out


def render_anatomy(
    ct: stage_values.CTVolume, anatomy: Anatomy, path: str | Path, title: str = "", dpi: int = 70
) -> Path:
    """Write a PNG: three planes, each mask as a tinted fill with its outline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from scipy import ndimage as ndi

    planes = _planes(ct, anatomy)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.8))
    for ax, (name, plane, masks, aspect) in zip(axes, planes, strict=True):
        grey = np.clip((plane.astype(np.float32) + 1000.0) / 1400.0, 0, 1)  # W 1400 L -300
        rgb = np.repeat(grey[..., None], 3, axis=2)
        for mask_name, mask in masks.items():
            if not mask.any():
                continue
            colour = np.asarray(COLOURS[mask_name])
            rgb[mask] = 0.6 * rgb[mask] + 0.4 * colour
            edge = mask & ~ndi.binary_erosion(mask)
            rgb[edge] = colour
        ax.imshow(rgb, aspect=aspect, interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.axis("off")
    shown = [n for n in COLOURS if any(m.get(n) is not None and m[n].any() for _, _, m, _ in planes)]
    fig.legend(handles=[Patch(color=COLOURS[n], label=n.replace("_", " ")) for n in shown], loc="lower center",
               ncol=len(shown), fontsize=9, frameon=False)  # fmt: skip
    prov = anatomy.provenance
    fig.suptitle(title or f"{prov.provider} ({prov.version})", fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _docs(out: Path, shared: Path, work: Path) -> list[Path]:
    from deepcac2.pipeline.anatomy.classical.provider import classical_anatomy
    from deepcac2.pipeline.anatomy.idc_totalseg import TotalSegmentatorAnatomy
    from deepcac2.pipeline.loader import load_series
    from deepcac2.pipeline.synth.named_cohorts import write_cohort

    written = []
    write_cohort("chest", work, seed=11, rows=256, pixel_spacing_mm=1.4, plaques=3, great_vessels=True)
    ct_folder = next(p.parent for p in work.rglob("*.dcm") if p.name != "seg.dcm")
    ct = load_series(ct_folder)
    seg = next(work.rglob("seg.dcm"))
    ref = stage_values.SeriesRef(ct.series_uid, params={"totalseg": [{"SeriesInstanceUID": "-", "location": str(seg)}]})
    ts = TotalSegmentatorAnatomy().anatomy(ref, ct)
    written.append(render_anatomy(ct, ts, out / "anatomy-synth-totalseg.png",
                                  "synthetic chest (seed 11): idc-totalsegmentator (synth's TotalSegmentator SEG)"))  # fmt: skip
    written.append(render_anatomy(ct, classical_anatomy(ct), out / "anatomy-synth-classical.png",
                                  "synthetic chest (seed 11): classical"))  # fmt: skip
    real = shared / "lung-pet-ct-dx" / "Lung_Dx-A0001"
    folder = next((p for p in sorted(real.glob("*")) if p.is_dir() and "41315" in p.name), None)
    if folder is not None:
        rct = load_series(folder)
        written.append(render_anatomy(rct, classical_anatomy(rct), out / "anatomy-real-classical.png",
                                      "real chest CT (Lung-PET-CT-Dx A0001, kernel B): classical"))  # fmt: skip
    return written


def main(argv: list[str] | None = None) -> int:
    import os
    import tempfile

    p = argparse.ArgumentParser(description="redraw the anatomy pictures of docs/anatomy.md")
    p.add_argument("--out", type=Path, default=Path("docs/images"))
    p.add_argument("--shared", type=Path, default=Path(os.environ.get("DEEPCAC2_SHARED_DATA", "../shared/data")))
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for path in _docs(args.out, args.shared, Path(tmp)):
            print(f"{path}: {path.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
