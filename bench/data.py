"""Inputs shared by the stage benchmarks: synthetic 512x512 NLST-like series, built once per run."""

from __future__ import annotations

from pathlib import Path

from bench.context import BenchContext


def chest_phantom(n_slices: int, seed: int = 0, plaques: int = 8):
    import numpy as np

    from deepcac2.pipeline.synth.phantom import ChestSpec, build_chest, random_plaques

    plaque_specs = random_plaques(np.random.default_rng(seed), plaques)
    spec = ChestSpec(seed=seed, n_slices=n_slices, noise_sd_hu=25.0, plaques=plaque_specs)
    return build_chest(spec)


def series_dir(ctx: BenchContext, n_slices: int) -> Path:
    """A written 512x512 series of ``n_slices`` (uncompressed), cached in the bench context."""
    key = f"series_{n_slices}"
    if key not in ctx.cache:
        from deepcac2.pipeline.synth.dicom_writer import write_series
        from deepcac2.pipeline.synth.nlst_headers import SCANNERS, study_meta

        phantom = chest_phantom(n_slices)
        meta = study_meta("bench", 0, n_slices, 0, SCANNERS[0], SCANNERS[0].kernels[0])
        out = ctx.work / key
        write_series(phantom, meta, out)
        ctx.cache[key] = out
    return ctx.cache[key]
