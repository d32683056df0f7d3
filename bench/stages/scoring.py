"""Scoring a 512x512x300 volume with 50 lesions: under 10% of loading that series (issue 4)."""

from __future__ import annotations

import numpy as np

from bench.context import BenchContext, Result
from bench.data import series_dir
from bench.measure import peak_rss_result, time_alternating


def _lesion_mask(shape: tuple[int, int, int], n: int, seed: int = 0) -> np.ndarray:
    """``n`` separate box lesions of 2-6 voxels a side inside the central region."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, bool)
    z, y, x = shape
    for i in range(n):
        zc = int(z * (i + 0.5) / n)  # spread along z so lesions never merge
        yc, xc = rng.integers(y // 3, 2 * y // 3), rng.integers(x // 3, 2 * x // 3)
        d = rng.integers(2, 7, 3)
        mask[max(zc - 1, 0) : zc - 1 + d[0] // 2 + 1, yc : yc + d[1], xc : xc + d[2]] = True
    return mask


def load_and_score(folder: str) -> None:
    """What one scoring worker holds at its peak: the loaded series plus scoring under every convention."""
    from deepcac2.pipeline.conventions import CONVENTIONS
    from deepcac2.pipeline.loader import load_series
    from deepcac2.pipeline.scoring.engine import score_ct

    ct = load_series(folder)
    mask = _lesion_mask(ct.shape, 50)
    ct.hu[mask] = 450
    for name in CONVENTIONS:
        score_ct(ct, mask, convention=name)


def run(ctx: BenchContext) -> list[Result]:
    from deepcac2.pipeline.loader import load_series
    from deepcac2.pipeline.scoring.engine import score_ct

    n = 150 if ctx.quick else 300
    folder = series_dir(ctx, n)
    ct = load_series(folder)
    mask = _lesion_mask(ct.shape, 50)
    ct.hu[mask] = 450  # calcium where the lesions are
    t = time_alternating(
        {"score": lambda: score_ct(ct, mask, convention="literature"), "load": lambda: load_series(folder)},
        ctx.repeats,
    )
    ratio = t["score"].median / t["load"].median
    lessmann = time_alternating({"score3d": lambda: score_ct(ct, mask, convention="lessmann3d")}, ctx.repeats)
    return [
        peak_rss_result("scoring", f"512x512x{n}: load + all conventions", ct.hu.nbytes, load_and_score, str(folder)),
        Result(
            "scoring", f"512x512x{n}, 50 lesions: score / load", ratio, "x", "< 0.10", ratio < 0.10,
            spread=t["score"].spread, detail=f"score {t['score'].median * 1000:.0f} ms, load {t['load'].median:.2f} s",
        ),
        Result(
            "scoring", f"512x512x{n}, 50 lesions: lessmann3d / load", lessmann["score3d"].median / t["load"].median, "x",
            "< 0.10", lessmann["score3d"].median / t["load"].median < 0.10,
        ),
    ]  # fmt: skip
