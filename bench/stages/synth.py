"""Synthetic series generation: eight 512x512x150 series in under a minute (issue 2)."""

from __future__ import annotations

import time

from bench.context import BenchContext, Result
from bench.data import chest_phantom


def run(ctx: BenchContext) -> list[Result]:
    from deepcac2.pipeline.synth.dicom_writer import write_series
    from deepcac2.pipeline.synth.nlst_headers import SCANNERS, study_meta

    n_series = 2 if ctx.quick else 8
    t0 = time.perf_counter()
    for i in range(n_series):
        phantom = chest_phantom(150, seed=i)
        meta = study_meta("bench-synth", 0, i, 0, SCANNERS[i % len(SCANNERS)], SCANNERS[i % len(SCANNERS)].kernels[0])
        write_series(phantom, meta, ctx.work / "synth" / str(i))
    elapsed = time.perf_counter() - t0
    eight = elapsed / n_series * 8
    return [
        Result(
            "synth", "eight 512x512x150 series (phantom + DICOM)", eight, "s", "< 60 s", eight < 60,
            detail=f"measured {n_series} series, scaled to eight" if n_series != 8 else "",
        )
    ]  # fmt: skip
