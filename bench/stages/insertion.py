"""Insertion test on the real chests (issue 21): recall of inserted coronary plaques, distractors kept out.

For each real chest in ``../shared/data`` (``DEEPCAC2_SHARED_DATA``), ``bench.insertion``
inserts small calcified plaques at the reader's coronary points and non-coronary
distractors (``tests/models/coronary_paths.json``) and runs the default classical chain
(classical anatomy, classical model). Per chest and vessel: the share of the inserted
Agatston counted (target >= 0.95) and the visible inserts of >= 5 mm3 not counted
(target 0); per chest: distractor voxels counted as coronary (target 0).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bench.context import BenchContext, Result

CHESTS = ("LUNG1-001", "A0001-B", "A0002-B40f")


def run(ctx: BenchContext) -> list[Result]:
    from bench import insertion

    repo = Path(__file__).resolve().parents[2]
    base = Path(os.environ.get("DEEPCAC2_SHARED_DATA", repo.parent / "shared" / "data"))
    if not base.is_dir():
        raise FileNotFoundError(f"no real chests: {base} (set DEEPCAC2_SHARED_DATA)")
    sys.path.insert(0, str(repo / "tests" / "models"))
    from conftest import read_ct  # the tests' reader: SimpleITK, independent of our loader

    out: list[Result] = []
    for chest in CHESTS:
        ct = read_ct(base / insertion.load_sites(chest)["series"])
        r = insertion.measure(chest, ct)
        for vessel in (*insertion.VESSELS, None):
            rs = r.coronary(vessel)
            if not rs:
                continue
            share, missed = r.share(vessel), r.missed(vessel)
            visible = sum(x.visible for x in rs)
            out.append(
                Result(
                    "insertion",
                    f"{chest} {vessel or 'all coronary'}: inserted Agatston counted",
                    share if share == share else 0.0,
                    "",
                    ">= 0.95, no visible insert >= 5 mm3 missed",
                    bool(share >= 0.95 and not missed) if visible else None,
                    detail=f"{sum(x.counted for x in rs):.1f} of {sum(x.agatston for x in rs):.1f} Agatston; "
                    f"{len(rs)} inserts, {visible} visible; missed: "
                    + (", ".join(f"{x.insert.name} {x.insert.volume_mm3:g} mm3 ({x.where})" for x in missed) or "none"),
                )
            )
        distractors = [x for x in r.inserts if not x.insert.coronary]
        counted = r.distractor_coronary_voxels()
        out.append(
            Result(
                "insertion", f"{chest} distractors: voxels counted as coronary", counted, "voxels", "0",
                counted == 0, detail="; ".join(f"{x.insert.group} {x.voxels} voxels -> {x.where}" for x in distractors),
            )
        )  # fmt: skip
    return out
