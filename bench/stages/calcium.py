"""Coronary calcium only, on held-out synthetic seeds (issue 15).

Great-vessel chests (realistic aortic arch, descending aorta against the left atrium,
pulmonary trunk; aortic, valvular, nodal and costal-cartilage calcium) with the synth
package's drawn patients (zero to severe calcium). The rules were tuned on seeds below
``evaluate.HELD_OUT_FROM`` (1000); this reports on seeds 1000-1019 (1000-1009 with
``--quick``), never looked at while tuning.

Anatomy ``totalseg``: what IDC's TotalSegmentator SEG of the phantom holds (the synth
package's v1 label map with its boundary errors), as the ``idc-totalsegmentator`` provider
reads it by default (heart, aorta, pulmonary artery, vertebrae, trachea, esophagus; ribs near the heart).
Anatomy ``classical``: the classical provider on the image.
Statistics: ``scoring.evaluate.compare`` (weighted kappa on the DeepCAC groups, Spearman).
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

from bench.context import BenchContext, Result

TARGETS = {20.0: {"kappa": 0.95, "spearman": 0.97}, 40.0: {"kappa": 0.85}}


def distractor_results(stage: str, label: str, checks: list) -> list[Result]:
    """One row per kind of non-coronary calcium: its voxels the model counted as coronary (target 0)."""
    out = []
    for group in ("aortic", "valvular", "nodal", "bone"):
        seen = sum(c.distractors.get(group, (0, 0))[0] for c in checks)
        counted = sum(c.distractors.get(group, (0, 0))[1] for c in checks)
        out.append(
            Result(
                stage, f"{label}: {group} calcium counted as coronary", counted, "voxels", "0",
                counted == 0, detail=f"of {seen} voxels >= 130 HU",
            )
        )  # fmt: skip
    return out


def _check(args: tuple[int, float, str]):
    from deepcac2.pipeline.dev.classical_evaluate import check_series

    seed, noise, anatomy = args
    return check_series(seed, noise, anatomy=anatomy)


def run(ctx: BenchContext) -> list[Result]:
    from deepcac2.pipeline.dev.classical_evaluate import HELD_OUT_FROM, agreement

    seeds = list(range(HELD_OUT_FROM, HELD_OUT_FROM + (10 if ctx.quick else 20)))
    out: list[Result] = []
    for anatomy in ("totalseg", "classical"):
        for noise, targets in TARGETS.items():
            with ProcessPoolExecutor(max_workers=2) as pool:
                checks = list(pool.map(_check, [(s, noise, anatomy) for s in seeds]))
            agr = agreement(checks)
            label = f"{anatomy} anatomy, noise {noise:g} HU, seeds {seeds[0]}-{seeds[-1]}"
            exact = sum(c.exact for c in checks)
            for stat, value in (("kappa", agr.kappa["deepcac"]), ("spearman", agr.spearman_rho)):
                if stat not in targets and stat != "spearman":
                    continue
                goal = targets.get(stat)
                out.append(
                    Result(
                        "calcium",
                        f"{label}: {'weighted kappa (DeepCAC groups)' if stat == 'kappa' else 'Spearman'}",
                        value,
                        "",
                        None if goal is None else f">= {goal}",
                        None if goal is None else bool(value >= goal),
                        detail=f"exact mask {exact}/{len(checks)}",
                    )
                )
            out += distractor_results("calcium", label, checks)
            wall = sum(c.aortic_truth for c in checks)
            found = sum(c.aortic_found for c in checks)
            out.append(
                Result(
                    "calcium", f"{label}: aortic wall calcium reported as aortic", found / max(wall, 1), "", None,
                    None, detail=f"{found} of {wall} voxels",
                )
            )  # fmt: skip
    return out
