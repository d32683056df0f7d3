"""Check the classical model on synthetic chests: planted calcium found, non-coronary calcium sorted out.

``python -m deepcac2.pipeline.dev.classical_evaluate --first-seed 1000 --seeds 20 --noise 20
--anatomy phantom`` prints one line per series and the agreement (weighted kappa on the
DeepCAC groups, Spearman) of the model's Agatston with the truth's; ``bench`` and
``docs/models.md`` quote it.

Anatomy: ``totalseg`` is what IDC's TotalSegmentator SEG of the phantom holds (the synth
package's v1 label map with boundary errors, read as the ``idc-totalsegmentator`` provider
reads it); ``phantom`` is the phantom's own labels without boundary errors (bones as
vertebrae and ribs); ``classical`` is the classical provider run on the image.

Patients: great-vessel chests (``ChestSpec.great_vessels``, 220 mm of z) with the synth
package's drawn plaques (``drawn_patient_plaques``: every tenth seed of ten consecutive
seeds is the same tier, zero to severe), so a run of ten seeds covers every risk group.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from deepcac2.pipeline import stage_values
from deepcac2.pipeline.anatomy.base import Anatomy, AnatomyProvenance
from deepcac2.pipeline.models.classical.model import ClassicalModel
from deepcac2.pipeline.scoring.engine import score_series

#: plaque HU values in the middle of the Agatston bands, so noise rarely flips a weight
PLAQUE_HU = (170, 250, 350, 500, 700)
#: seeds used while tuning the rules are below this; benchmarks report on seeds at or above it
HELD_OUT_FROM = 1000
#: held-out seeds of the issue-21 benchmark (noise 35 HU): 5000-5019, declared before the noise,
#: pulmonary and root-shell rules were re-tuned on seeds 0-19 and 2000-2019 (which were held out
#: until then) and run once after the merge (docs/models.md)
HELD_OUT_BORDERS_FROM = 5000


def plaques_for(seed: int):
    """1-4 random plaques (the plain chests' test plaques)."""
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


def drawn_plaques(seed: int):
    """The synth package's drawn patient ``seed % 10`` of seed ``seed`` (zero to severe calcium)."""
    from deepcac2.pipeline.synth.named_cohorts import drawn_patient_plaques
    from deepcac2.pipeline.synth.phantom import PlaqueSpec

    return tuple(PlaqueSpec(v, s, h, p) for v, s, h, p in drawn_patient_plaques(seed, seed % 10))


def chest_spec(seed: int, noise_sd: float = 0.0, *, great_vessels: bool = True, plaques=None):
    """The benchmark chest of ``seed``: a great-vessel chest over 220 mm of z, or the plain one."""
    from deepcac2.pipeline.synth.named_cohorts import GREAT_VESSEL_Z_CENTER_MM, GREAT_VESSEL_Z_MM
    from deepcac2.pipeline.synth.phantom import ChestSpec

    if not great_vessels:
        return ChestSpec(seed=seed, noise_sd_hu=noise_sd, plaques=plaques if plaques is not None else plaques_for(seed))
    return ChestSpec(
        seed=seed,
        noise_sd_hu=noise_sd,
        plaques=plaques if plaques is not None else drawn_plaques(seed),
        great_vessels=True,
        n_slices=int(round(GREAT_VESSEL_Z_MM / 2.5)),
        z_center_mm=GREAT_VESSEL_Z_CENTER_MM,
    )


def phantom_anatomy(ph) -> Anatomy:
    """The phantom's labels as an anatomy (what a TotalSegmentator SEG would give, without boundary errors).

    The aorta holds its wall calcium, as a segmentation of the vessel does.
    """
    from deepcac2.pipeline.synth.labels import DISTRACTOR_GROUP, Tissue

    a = ph.anatomy
    bone = np.isin(a, (Tissue.CORTICAL_BONE, Tissue.CANCELLOUS_BONE))
    wall = np.isin(ph.distractors, [k for k, g in DISTRACTOR_GROUP.items() if g == "aortic"])
    return Anatomy(
        heart=ph.heart.copy(),
        aorta=(a == Tissue.AORTA) | wall,
        pulmonary_artery=a == Tissue.PULMONARY_ARTERY,
        provenance=AnatomyProvenance("phantom-labels", "0"),
        structures={"vertebrae": bone, "ribs": bone},
    )


def totalseg_anatomy(ph) -> Anatomy:
    """The anatomy IDC's TotalSegmentator SEG of this phantom holds (``synth/totalseg_writer.py``: its v1 label
    map with about 1 mm of boundary wander), as the ``idc-totalsegmentator`` provider reads it by
    default: the heart (five classes) whole; the aorta, pulmonary artery and ``DEFAULT_STRUCTURES``
    (trachea, esophagus, vertebrae, ribs) over their slabs only (``provider.slab_of``: the cardiac
    slab; the ribs near the heart), empty elsewhere."""
    from deepcac2.pipeline.anatomy.idc_totalseg import HEART_PARTS, slab_of
    from deepcac2.pipeline.synth.totalseg_writer import label_map, with_boundary_errors
    from deepcac2.pipeline.totalseg.codes import DEFAULT_STRUCTURES, STRUCTURE_CLASSES, classes

    labels = with_boundary_errors(label_map(ph), ph.geometry.spacing, ph.seed)
    ids = {name: i for name, (i, _) in classes().items()}

    def union(prefixes: tuple[str, ...]) -> np.ndarray:
        wanted = [
            i for name, i in ids.items() if any(name == p or (p.endswith("_") and name.startswith(p)) for p in prefixes)
        ]
        return np.isin(labels, wanted)

    parts = {k: union(STRUCTURE_CLASSES[k]) for k in HEART_PARTS}
    heart = np.logical_or.reduce(list(parts.values()))
    # the provider's slabs (array axis 0 is the slice axis here, as on the provider's CT grid)
    ks = np.flatnonzero(heart.any(axis=(1, 2)))

    def slab(mask: np.ndarray, name: str) -> np.ndarray:
        lo, hi = slab_of(name, (int(ks[0]), int(ks[-1])), ph.geometry.spacing[2])
        mask[: max(lo, 0)] = False
        mask[hi + 1 :] = False
        return mask

    return Anatomy(
        heart=heart,
        aorta=slab(union(("aorta",)), "aorta"),
        pulmonary_artery=slab(union(("pulmonary_artery",)), "pulmonary_artery"),
        provenance=AnatomyProvenance("idc-totalsegmentator", "synthetic v1 label map with boundary errors"),
        structures={**parts, **{k: slab(union(STRUCTURE_CLASSES[k]), k) for k in DEFAULT_STRUCTURES}},
    )


@dataclass(frozen=True)
class SeriesCheck:
    seed: int
    noise_sd: float
    truth_voxels: int
    found_voxels: int
    exact: bool
    #: distractor group (aortic, valvular, nodal, bone) -> (voxels >= 130 HU, voxels counted as coronary)
    distractors: dict[str, tuple[int, int]]
    agatston_truth: float
    agatston_model: float
    #: planted aortic wall calcium voxels (>= 130 HU) and how many the aortic mask holds
    aortic_truth: int
    aortic_found: int
    rejected: dict[str, int]

    @property
    def agatston_error(self) -> float:
        if self.agatston_truth == 0:
            return 0.0 if self.agatston_model == 0 else float("inf")
        return (self.agatston_model - self.agatston_truth) / self.agatston_truth


def check_series(
    seed: int,
    noise_sd: float = 0.0,
    model: ClassicalModel | None = None,
    *,
    anatomy: str = "phantom",
    great_vessels: bool = True,
    plaques=None,
) -> SeriesCheck:
    from deepcac2.pipeline.synth.labels import DISTRACTOR_GROUP, Distractor
    from deepcac2.pipeline.synth.phantom import build_chest

    model = model or ClassicalModel()
    phantom = build_chest(chest_spec(seed, noise_sd, great_vessels=great_vessels, plaques=plaques))
    clean = build_chest(chest_spec(seed, 0.0, great_vessels=great_vessels, plaques=plaques)) if noise_sd else phantom
    ct = stage_values.CTVolume(hu=phantom.hu, geometry=phantom.geometry, series_uid=f"synth-{seed}")
    if anatomy == "phantom":
        given = phantom_anatomy(clean)
    elif anatomy == "totalseg":
        given = totalseg_anatomy(clean)
    else:
        from deepcac2.pipeline.anatomy.classical.provider import classical_anatomy

        given = classical_anatomy(ct)
    result = model.analyse(ct, given)
    pred = result.prediction
    # truth: the planted plaque voxels at or above 130 HU in the image the model saw
    truth = (clean.cac_vessels > 0) & (phantom.hu >= 130)
    distractors: dict[str, tuple[int, int]] = {}
    for kind in Distractor:
        m = (clean.distractors == kind) & (clean.hu >= 130)
        group = DISTRACTOR_GROUP.get(kind, "other")
        seen, counted = distractors.get(group, (0, 0))
        distractors[group] = (seen + int(m.sum()), counted + int((pred.cac & m).sum()))
    wall = np.isin(clean.distractors, [k for k, g in DISTRACTOR_GROUP.items() if g == "aortic"]) & (clean.hu >= 130)
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
        aortic_truth=int(wall.sum()),
        aortic_found=int((wall & pred.aortic).sum()) if pred.aortic is not None else 0,
        rejected=dict(result.rejected),
    )


def agreement(checks: list[SeriesCheck]):
    """``scoring.evaluate.compare`` of the model's Agatston against the truth's (one row per seed)."""
    import pandas as pd

    from deepcac2.pipeline.scoring.evaluate import compare

    key = [f"seed-{c.seed}" for c in checks]
    pred = pd.DataFrame({"SeriesInstanceUID": key, "agatston": [c.agatston_model for c in checks]})
    ref = pd.DataFrame({"SeriesInstanceUID": key, "agatston": [c.agatston_truth for c in checks]})
    return compare(pred, ref)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--first-seed", type=int, default=HELD_OUT_FROM)
    p.add_argument("--noise", type=float, default=0.0, help="noise SD in HU")
    p.add_argument("--anatomy", choices=("totalseg", "phantom", "classical"), default="totalseg")
    p.add_argument("--plain", action="store_true", help="plain chests (no great vessels), test plaques")
    args = p.parse_args(argv)
    model = ClassicalModel()
    checks = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        c = check_series(seed, args.noise, model, anatomy=args.anatomy, great_vessels=not args.plain)
        checks.append(c)
        print(
            f"seed={c.seed} noise={c.noise_sd:g} truth={c.truth_voxels} found={c.found_voxels} exact={c.exact} "
            + "".join(f"{k}={v[1]}/{v[0]} " for k, v in c.distractors.items())
            + f"aortic={c.aortic_found}/{c.aortic_truth} "
            + f"agatston truth={c.agatston_truth:.1f} model={c.agatston_model:.1f} rejected={c.rejected}",
            flush=True,
        )
    for group in checks[0].distractors:
        total = sum(c.distractors[group][0] for c in checks)
        counted = sum(c.distractors[group][1] for c in checks)
        print(f"{group} calcium counted as coronary: {counted} of {total} voxels")
    agr = agreement(checks)
    print(f"exact: {sum(c.exact for c in checks)}/{len(checks)}")
    print(f"weighted kappa (DeepCAC groups) {agr.kappa['deepcac']:.3f}, Spearman {agr.spearman_rho:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
