"""Pictures and figures of the classical model on the real chest CT in ``../shared/data``.

``python -m deepcac2.pipeline.dev.classical_figures --shared ../shared/data --out docs/images``
redraws ``docs/images/classical_*.png`` and prints the rows of the results table in
``docs/models.md``: the classical anatomy and the classical CAC, as
``deepcac2 run --anatomy classical`` runs them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from deepcac2.pipeline import stage_values
from deepcac2.pipeline.models.classical.model import ClassicalModel

#: short name -> series folder under the shared data (the reader's notes use the same names)
REAL_SERIES = {
    "A0001-B": "lung-pet-ct-dx/Lung_Dx-A0001/3.000000-5mm-41315",
    "A0001-L": "lung-pet-ct-dx/Lung_Dx-A0001/2.000000-5mm-40805",
    "A0002-B40f": "lung-pet-ct-dx/Lung_Dx-A0002/3.000000-ThoraxRoutine_8.0.0_B40f-10983",
    "A0002-B70f": "lung-pet-ct-dx/Lung_Dx-A0002/2.000000-ThoraxRoutine_8.0.0_B70f-62919",
    # NSCLC-Radiomics (CC BY-NC 3.0: figures and tests only, never in a release)
    "LUNG1-001": "nsclc-radiomics/LUNG1-001",
}
#: overlay colours (RGB 0-1)
COLOURS = {
    "heart": (0.9, 0.1, 0.1),
    "aorta": (0.2, 0.4, 1.0),
    "pulmonary": (0.1, 0.8, 0.2),
    "coronary": (1.0, 0.95, 0.0),
    "aortic calcium": (1.0, 0.0, 1.0),
    "valve/annulus calcium": (0.0, 0.9, 0.9),
}


def _planes(ct: stage_values.CTVolume, masks: dict[str, np.ndarray]):
    """Axial through the heart's middle and through the arch (the aorta's top slice with the most
    aorta), coronal and sagittal through the heart's centre; superior drawn up."""
    k, j, i = np.argwhere(masks["heart"]).mean(axis=0).round().astype(int).tolist()
    per_slice = masks["aorta"].sum(axis=(1, 2))
    heart_k = np.flatnonzero(masks["heart"].any(axis=(1, 2)))
    up = ct.geometry.direction_matrix[2, 2] > 0
    above = [z for z in np.flatnonzero(per_slice) if (z > heart_k.max() if up else z < heart_k.min())]
    arch = max(above, key=lambda z: per_slice[z]) if above else k
    sx, sy, sz = ct.geometry.spacing
    out = []
    for title, index, aspect in (
        (f"axial {k} (heart)", (k, slice(None), slice(None)), sy / sx),
        (f"axial {arch} (arch)", (arch, slice(None), slice(None)), sy / sx),
        ("coronal", (slice(None), j, slice(None)), sz / sx),
        ("sagittal", (slice(None), slice(None), i), sz / sy),
    ):
        plane, ms = ct.hu[index], {n: m[index] for n, m in masks.items()}
        if title in ("coronal", "sagittal") and up:
            plane, ms = plane[::-1], {n: m[::-1] for n, m in ms.items()}
        out.append((title, plane, ms, aspect))
    return out


def render(ct: stage_values.CTVolume, masks: dict[str, np.ndarray], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from scipy import ndimage as ndi

    planes = _planes(ct, masks)
    fig, axes = plt.subplots(1, 4, figsize=(15, 4.4))
    for ax, (name, plane, ms, aspect) in zip(axes, planes, strict=True):
        grey = np.clip((plane.astype(np.float32) + 160.0) / 400.0, 0, 1)  # W 400 L 40
        rgb = np.repeat(grey[..., None], 3, axis=2)
        for n, m in ms.items():
            if not m.any():
                continue
            colour = np.asarray(COLOURS[n])
            if n in (
                "coronary",
                "aortic calcium",
                "valve/annulus calcium",
            ):  # small: filled and ringed so a speck shows
                rgb[ndi.binary_dilation(m, iterations=2) & ~m] = colour
                rgb[m] = colour
            else:
                rgb[m & ~ndi.binary_erosion(m)] = colour
        ax.imshow(rgb, aspect=aspect, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.legend(handles=[Patch(color=c, label=n) for n, c in COLOURS.items()], loc="lower center", ncol=6,
               fontsize=8, frameon=False)  # fmt: skip
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 0.95))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=55)
    plt.close(fig)
    return path


def series_figures(ct: stage_values.CTVolume) -> tuple[dict, dict[str, np.ndarray]]:
    """The table row of one series (classical anatomy, classical CAC) and its masks."""
    from deepcac2.pipeline.anatomy.classical.provider import classical_anatomy
    from deepcac2.pipeline.scoring.engine import score_series

    anatomy = classical_anatomy(ct)
    result = ClassicalModel().analyse(ct, anatomy)
    pred = result.prediction
    ml = float(np.prod(ct.geometry.spacing)) / 1000.0
    kw = dict(convention="literature", kvp=120)
    row = {
        "heart_ml": round(float(anatomy.heart.sum()) * ml),
        "aorta_ml": round(float(anatomy.aorta.sum()) * ml),
        "coronary_voxels": int(pred.cac.sum()),
        "coronary_agatston": round(score_series(ct.hu, ct.geometry, pred.cac, **kw).agatston, 1),
        "aortic_voxels": int(pred.aortic.sum()),
        "aortic_agatston": round(score_series(ct.hu, ct.geometry, pred.aortic, **kw).agatston, 1),
        "mitral_annular_agatston": round(score_series(ct.hu, ct.geometry, pred.mitral_annular, **kw).agatston, 1),
        "aortic_valve_agatston": round(score_series(ct.hu, ct.geometry, pred.aortic_valve, **kw).agatston, 1),
        "noise_sd_hu": round(result.noise_sd),
        "rejected": {k: v for k, v in result.rejected.items() if v},
        "notes": list(anatomy.notes),
    }
    masks = {"heart": anatomy.heart, "aorta": anatomy.aorta, "pulmonary": anatomy.pulmonary_artery,
             "coronary": pred.cac, "aortic calcium": pred.aortic,
             "valve/annulus calcium": pred.mitral_annular | pred.aortic_valve}  # fmt: skip
    return row, masks


def main(argv: list[str] | None = None) -> int:
    from deepcac2.pipeline.loader import load_series

    p = argparse.ArgumentParser(prog="python -m deepcac2.pipeline.dev.classical_figures", description=__doc__)
    p.add_argument("--shared", type=Path, default=Path("../shared/data"))
    p.add_argument("--out", type=Path, default=Path("docs/images"))
    args = p.parse_args(argv)
    for name, folder in REAL_SERIES.items():
        if not (args.shared / folder).is_dir():
            print(f"{name}: {args.shared / folder} not found, skipped")
            continue
        ct = load_series(args.shared / folder)
        row, masks = series_figures(ct)
        render(ct, masks, args.out / f"classical_{name}.png",
               f"{name}: classical anatomy, classical CAC (coronary {row['coronary_voxels']} voxels, "
               f"Agatston {row['coronary_agatston']:g}; aortic {row['aortic_voxels']} voxels)")  # fmt: skip
        print(json.dumps({"series": name, **row}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
