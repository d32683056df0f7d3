"""Coronary calcium at the pulmonary trunk and the pericardium, on new held-out seeds (issue 21).

The same great-vessel chests as ``calcium`` (drawn patients, zero to severe calcium), at
noise 35 HU, on seeds ``evaluate.HELD_OUT_BORDERS_FROM`` (5000) to 5019 (5000-5009 with
``--quick``). They were recorded as held out (``docs/models.md``) before the ``noise``,
``pulmonary`` and root ``shell`` rules were re-tuned on seeds 0-19 and 2000-2019 (the previous
held-out seeds, looked at once before that), and run once after the merge. Seeds 1000-1019 and
2000-2019 have been looked at, so they no longer count as held out for those rules.

Both anatomies: ``totalseg`` (what the ``idc-totalsegmentator`` provider reads from the
phantom's TotalSegmentator SEG, with its boundary errors) and ``classical`` (the classical
provider on the image). Reported: weighted kappa on the DeepCAC groups and Spearman
(``scoring.evaluate.compare``), voxels each rule rejected, and the aortic, valvular, nodal
and bony calcium counted as coronary. Seeds run one after another (a shared machine).
"""

from __future__ import annotations

from bench.context import BenchContext, Result
from bench.stages.calcium import distractor_results

NOISE_HU = 35.0
TARGETS = {"kappa": 0.9, "spearman": 0.95}


def run(ctx: BenchContext) -> list[Result]:
    from deepcac2.pipeline.dev.classical_evaluate import HELD_OUT_BORDERS_FROM, agreement, check_series
    from deepcac2.pipeline.models.classical.candidate_rules import RULES
    from deepcac2.pipeline.models.classical.model import ClassicalModel

    seeds = list(range(HELD_OUT_BORDERS_FROM, HELD_OUT_BORDERS_FROM + (10 if ctx.quick else 20)))
    model = ClassicalModel()
    out: list[Result] = []
    for anatomy in ("totalseg", "classical"):
        checks = []
        for seed in seeds:
            checks.append(check_series(seed, NOISE_HU, model, anatomy=anatomy))
            c = checks[-1]
            print(
                f"[calcium_borders] {anatomy} seed {seed}: Agatston truth {c.agatston_truth:.1f} "
                f"model {c.agatston_model:.1f}; rejected {c.rejected}",
                flush=True,
            )
        agr = agreement(checks)
        label = f"{anatomy} anatomy, noise {NOISE_HU:g} HU, seeds {seeds[0]}-{seeds[-1]}"
        exact = sum(c.exact for c in checks)
        off = [f"{c.seed} ({c.agatston_truth:.0f} vs {c.agatston_model:.0f})" for c in checks
               if abs(c.agatston_model - c.agatston_truth) > max(10.0, 0.1 * c.agatston_truth)]  # fmt: skip
        detail = f"exact mask {exact}/{len(checks)}; Agatston off by > 10% and > 10: {', '.join(off) or 'none'}"
        for stat, name, value in (
            ("kappa", "weighted kappa (DeepCAC groups)", agr.kappa["deepcac"]),
            ("spearman", "Spearman", agr.spearman_rho),
        ):
            goal = TARGETS[stat]
            out.append(
                Result(
                    "calcium_borders", f"{label}: {name}", value, "", f">= {goal}", bool(value >= goal), detail=detail
                )
            )
        rejected = {r: sum(c.rejected.get(r, 0) for c in checks) for r in RULES}
        out.append(
            Result(
                "calcium_borders", f"{label}: voxels rejected by rule", sum(rejected.values()), "voxels",
                detail=", ".join(f"{r} {v}" for r, v in rejected.items()),
            )
        )  # fmt: skip
        out += distractor_results("calcium_borders", label, checks)
    return out
