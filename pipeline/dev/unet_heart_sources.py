"""How much the U-Net's heart source moves its crop and what it can score (synthetic chests).

``python -m deepcac2.pipeline.dev.unet_heart_sources [--seeds 100-105] [--out FILE.json]``

For each great-vessel synthetic chest and each heart source:

* ``truth``: the phantom's own heart mask;
* ``classical``: the ``classical`` anatomy provider;
* ``totalseg-like``: TotalSegmentator v1's heart, i.e. the union of its five heart classes
  (myocardium, both atria, both ventricles), taken from the phantom's labels. It stands for
  ``idc-totalsegmentator`` until the synthetic IDC-format SEG reaches this comparison.

it runs the published preprocessing and reports the crop centre's distance (mm) from the
truth heart's crop centre, the windows that run, and two scores that need no trained
network: the Agatston score (``deepcac`` convention) of the planted coronary calcium inside
the windows that run (what a perfect network could find), and of the phantom's non-coronary
calcium (aortic wall, aortic valve, mitral annulus, arch, nodes, costal cartilage; not bone)
inside them (what the network is shown and must reject). A perfect network's score below
the truth means the heart source cut plaques out of the windows.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass

import numpy as np

from deepcac2.pipeline import stage_values
from deepcac2.pipeline.models.unet import preprocess as pp
from deepcac2.pipeline.models.unet.sliding import PATCH_XYZ, STRIDE_XYZ, heart_windows
from deepcac2.pipeline.scoring.engine import score_series

SOURCES = ("truth", "classical", "totalseg-like")


@dataclass
class SourceResult:
    seed: int
    source: str
    heart_ml: float
    crop_shift_mm: float
    windows: int
    perfect_agatston: float
    truth_agatston: float
    distractor_agatston: float
    distractor_total_agatston: float


def totalseg_like_heart(anatomy_labels: np.ndarray) -> np.ndarray:
    """Myocardium and the four chambers: what TotalSegmentator v1's five heart classes cover."""
    from deepcac2.pipeline.synth.labels import Tissue

    chambers = (
        Tissue.MYOCARDIUM,
        Tissue.LEFT_VENTRICLE,
        Tissue.RIGHT_VENTRICLE,
        Tissue.LEFT_ATRIUM,
        Tissue.RIGHT_ATRIUM,
    )
    return np.isin(anatomy_labels, [int(t) for t in chambers])


def windows_region(ct: stage_values.CTVolume, pre: pp.Preprocessed) -> tuple[np.ndarray, int]:
    """The CT voxels that fall in a window that runs (published loop), and the window count."""
    heart_xyz = pp.to_network_order(pre.heart)
    starts = heart_windows(heart_xyz, PATCH_XYZ, STRIDE_XYZ)
    covered = np.zeros(heart_xyz.shape, dtype=np.uint8)
    for s in starts:
        covered[tuple(slice(a, a + p) for a, p in zip(s, PATCH_XYZ, strict=True))] = 1
    return pp.to_ct_grid(pp.from_network_order(covered), pre) > 0, len(starts)


def _agatston(ct: stage_values.CTVolume, mask: np.ndarray) -> float:
    return score_series(ct.hu, ct.geometry, mask, convention="deepcac").agatston


def compare(seed: int) -> list[SourceResult]:
    from deepcac2.pipeline.anatomy.classical.provider import classical_anatomy
    from deepcac2.pipeline.synth.phantom import ChestSpec, build_chest, random_plaques

    spec = ChestSpec(
        seed=seed, noise_sd_hu=20.0, great_vessels=True, plaques=random_plaques(np.random.default_rng(seed), 4)
    )
    ph = build_chest(spec)
    ct = stage_values.CTVolume(hu=ph.hu, geometry=ph.geometry, series_uid=f"heart-sources-{seed}")
    hearts = {
        "truth": ph.heart,
        "classical": classical_anatomy(ct).heart,
        "totalseg-like": totalseg_like_heart(ph.anatomy),
    }
    truth_score = _agatston(ct, ph.cac)
    from deepcac2.pipeline.synth.labels import Distractor

    distractor = (ph.distractors > 0) & (ph.distractors != int(Distractor.BONE_NEAR_HEART)) & (ct.hu >= 130)
    distractor_total = _agatston(ct, distractor)
    out, centre = [], None
    for source in SOURCES:
        pre = pp.preprocess(ct.hu, ct.geometry, hearts[source])
        c = pre.centre_lps
        centre = c if centre is None else centre
        region, n = windows_region(ct, pre)
        out.append(
            SourceResult(
                seed=seed,
                source=source,
                heart_ml=float(hearts[source].sum() * ct.geometry.voxel_volume_mm3 / 1000),
                crop_shift_mm=float(np.linalg.norm(c - centre)),
                windows=n,
                perfect_agatston=_agatston(ct, ph.cac & region),
                truth_agatston=truth_score,
                distractor_agatston=_agatston(ct, distractor & region),
                distractor_total_agatston=distractor_total,
            )
        )
    return out


def markdown(results: list[SourceResult]) -> str:
    lines = [
        "| seed | heart source | heart (mL) | crop centre shift (mm) | windows | perfect-network Agatston / truth | "
        "non-coronary calcium in windows / in the CT (Agatston) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.seed} | {r.source} | {r.heart_ml:.0f} | {r.crop_shift_mm:.1f} | {r.windows} | "
            f"{r.perfect_agatston:.1f} / {r.truth_agatston:.1f} | "
            f"{r.distractor_agatston:.0f} / {r.distractor_total_agatston:.0f} |"
        )
    return "\n".join(lines)


def _seeds(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="100-105", help="seed range, e.g. 100-105 (never used for tuning)")
    p.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = p.parse_args(argv)
    results = []
    for seed in _seeds(args.seeds):
        results += compare(seed)
        print(f"seed {seed} done", file=sys.stderr, flush=True)
    print(markdown(results))
    if args.out:
        with open(args.out, "w") as f:
            json.dump([asdict(r) for r in results], f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
