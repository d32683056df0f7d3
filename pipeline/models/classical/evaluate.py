"""Check the classical model on synthetic chests: planted calcium found, distractors rejected.

``python -m deepcac2.pipeline.models.classical.evaluate --seeds 10 --noise 20`` prints one
line per series and a summary; ``docs/models.md`` quotes its output.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from deepcac2.pipeline import types
from deepcac2.pipeline.scoring.engine import score_series

from .model import ClassicalModel

#: plaque HU values in the middle of the Agatston bands, so noise rarely flips a weight
PLAQUE_HU = (170, 250, 350, 500, 700)


@dataclass(frozen=True)
class SeriesCheck:
    seed: int
    noise_sd: float
    truth_voxels: int
    found_voxels: int
    exact: bool
    #: distractor kind -> (voxels >= 130 HU, voxels the model counted as CAC)
    distractors: dict[str, tuple[int, int]]
    agatston_truth: float
    agatston_model: float

    @property
    def agatston_error(self) -> float:
        if self.agatston_truth == 0:
            return 0.0 if self.agatston_model == 0 else float("inf")
        return (self.agatston_model - self.agatston_truth) / self.agatston_truth


def plaques_for(seed: int):
    from deepcac2.pipeline.synth.phantom import PlaqueSpec

    rng = np.random.default_rng([seed, 77])
    vessels = ("LM", "LAD", "LCX", "RCA")
    return tuple(
        PlaqueSpec(
            vessel=str(rng.choice(vessels)),
            size_mm=float(rng.uniform(2.0, 5.0)),
            hu=int(rng.choice(PLAQUE_HU)),
            position=float(rng.uniform(0.1, 0.9)),
        )
        for _ in range(int(rng.integers(1, 5)))
    )


def check_series(seed: int, noise_sd: float = 0.0, model: ClassicalModel | None = None) -> SeriesCheck:
    from deepcac2.pipeline.synth.phantom import ChestSpec, build_chest

    model = model or ClassicalModel()
    phantom = build_chest(ChestSpec(seed=seed, noise_sd_hu=noise_sd, plaques=plaques_for(seed)))
    clean = build_chest(ChestSpec(seed=seed, plaques=plaques_for(seed))) if noise_sd else phantom
    ct = types.CTVolume(hu=phantom.hu, geometry=phantom.geometry, series_uid=f"synth-{seed}")
    from deepcac2.pipeline.anatomy.classical.provider import classical_anatomy

    pred = model.predict(ct, classical_anatomy(ct))
    # truth: the planted plaque voxels at or above 130 HU in the image the model saw
    truth = (clean.cac_vessels > 0) & (phantom.hu >= 130)
    from deepcac2.pipeline.synth.labels import Distractor

    distractors = {}
    for kind in (
        Distractor.AORTIC_WALL,
        Distractor.AORTIC_VALVE,
        Distractor.MITRAL_ANNULUS,
        Distractor.BONE_NEAR_HEART,
    ):
        m = (clean.distractors == kind) & (clean.hu >= 130)
        distractors[kind.name.lower()] = (int(m.sum()), int((pred.cac & m).sum()))
    kw = dict(convention="literature", kvp=120)
    return SeriesCheck(
        seed=seed,
        noise_sd=noise_sd,
        truth_voxels=int(truth.sum()),
        found_voxels=int(pred.cac.sum()),
        exact=bool(np.array_equal(pred.cac, truth)),
        distractors=distractors,
        # both scored on the same (noisy) image: noise lifts peak HU, which is not the model's doing
        agatston_truth=score_series(phantom.hu, phantom.geometry, truth, **kw).agatston,
        agatston_model=score_series(phantom.hu, phantom.geometry, pred.cac, **kw).agatston,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--noise", type=float, default=0.0, help="noise SD in HU")
    args = p.parse_args(argv)
    model = ClassicalModel()
    checks = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        c = check_series(seed, args.noise, model)
        checks.append(c)
        print(
            f"seed={c.seed} noise={c.noise_sd:g} truth={c.truth_voxels} found={c.found_voxels} exact={c.exact} "
            + "".join(f"{k}={v[1]}/{v[0]} " for k, v in c.distractors.items())
            + f"agatston truth={c.agatston_truth:.1f} model={c.agatston_model:.1f} error={c.agatston_error:+.1%}",
            flush=True,
        )
    for kind in checks[0].distractors:
        total = sum(c.distractors[kind][0] for c in checks)
        counted = sum(c.distractors[kind][1] for c in checks)
        print(f"rejection {kind}: {1 - counted / max(total, 1):.4f} ({counted} of {total} voxels counted)")
    errors = np.array([abs(c.agatston_error) for c in checks])
    print(f"exact: {sum(c.exact for c in checks)}/{len(checks)}")
    print(
        f"|Agatston error| within 5%: {int((errors <= 0.05).sum())}/{len(checks)}; median {np.median(errors):.2%}, max {errors.max():.2%}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
