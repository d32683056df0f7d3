"""Loader vs the plain pydicom read-and-stack floor and SimpleITK, side by side (issue 3)."""

from __future__ import annotations

from pathlib import Path

from bench.context import BenchContext, Result
from bench.data import series_dir
from bench.measure import paired_ratio, peak_rss, time_alternating
from deepcac2.pipeline.dev.load_floor import read_and_stack
from deepcac2.pipeline.loader import load_series  # imported here so memory baselines include it

#: A load takes well under a second and this machine's noise is +-15-30 % per call: three
#: times the usual repeats keep the median ratio steady for a few seconds more.
LOAD_REPEATS_FACTOR = 3


def _sorted_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.dcm"), key=lambda p: int(p.stem))


def load_ours(folder: str) -> None:
    load_series(folder)


def load_floor(folder: str) -> None:
    read_and_stack(_sorted_files(Path(folder)))


def run(ctx: BenchContext) -> list[Result]:
    import SimpleITK as sitk

    results = []
    for n in (150,) if ctx.quick else (150, 300):
        folder = series_dir(ctx, n)
        files = [str(p) for p in _sorted_files(folder)]

        def sitk_read(files: list[str] = files) -> None:
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(files)
            reader.Execute()

        t = time_alternating(
            {
                "ours": lambda f=folder: load_ours(str(f)),
                "floor": lambda f=folder: load_floor(str(f)),
                "sitk": sitk_read,
            },
            LOAD_REPEATS_FACTOR * ctx.repeats,
        )
        ratio, spread = paired_ratio(t["ours"], t["floor"])
        ctx.cache[f"load_seconds_{n}"] = t["ours"].median
        results.append(
            Result(
                "load", f"512x512x{n}: loader / pydicom read-and-stack", ratio, "x", "<= 1.2", ratio <= 1.2,
                spread=spread,
                detail=f"ours {t['ours'].median:.2f} s, floor {t['floor'].median:.2f} s (medians); median of per-round ratios",
            )
        )  # fmt: skip
        results.append(
            Result(
                "load", f"512x512x{n}: loader / SimpleITK ImageSeriesReader", t["ours"].median / t["sitk"].median, "x",
                detail=f"SimpleITK {t['sitk'].median:.2f} s",
            )
        )  # fmt: skip
        mem = peak_rss(load_ours, str(folder))
        volume = load_series(folder).hu.nbytes
        results.append(
            Result(
                "load", f"512x512x{n}: peak memory / HU volume", mem["added_bytes"] / volume, "x", "<= 2", mem["added_bytes"] / volume <= 2,
                detail=f"added {mem['added_bytes'] / 2**20:.0f} MiB for a {volume / 2**20:.0f} MiB volume",
            )
        )  # fmt: skip
    return results
