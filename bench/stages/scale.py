"""An NLST-size run's bookkeeping: commits, resume start and table assembly at 10k..129k series (issue 23).

Each size runs in a fresh process (so its peak RSS is its own): stand-in rows of every
registered result table (``standin_rows``: lesion counts 0 for about half the series,
geometric otherwise; 2 % of the series failed) are committed through the real
``OutputStore``, then ``committed()`` is timed (what a ``--resume`` reads before it starts)
and ``assemble`` writes the final tables (out of core). The process reports each step's
wall time and its peak RSS so far.

Not simulated here (yet): the Dask scheduler, stand-in SEG/SR objects, QA, ``release
build``/``verify`` and ``query``; BENCHMARKS.md says so.

    python -m bench.stages.scale N OUT     # one size, prints JSON
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.context import BenchContext, Result

NLST = 129_147
#: sizes (series) of the full and the quick bench; DEEPCAC2_SCALE_SIZES="2000,10000" overrides
FULL = (10_000, NLST)
QUICK = (2_000, 10_000)
FAILED_EVERY = 50  # 2 % of the series fail
TARGET_RSS_GIB = 2.0
TARGET_ASSEMBLY_S = 600.0
TARGET_RESUME_S = 60.0


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def simulate(n: int, out: Path) -> dict[str, float]:
    """Commit n series, read their statuses, assemble the tables; figures of each step."""
    from deepcac2.pipeline.orchestrate.standin_rows import series_rows
    from deepcac2.pipeline.orchestrate.store import Fragment, OutputStore

    shutil.rmtree(out, ignore_errors=True)
    store = OutputStore(out)
    uids = [f"1.2.826.0.1.3680043.10.9999.{i}" for i in range(n)]
    figures: dict[str, float] = {"series": n, "rss_start_mib": _peak_mib()}
    t0 = time.perf_counter()
    for i, uid in enumerate(uids):
        if i % FAILED_EVERY == FAILED_EVERY - 1:
            row = {
                "SeriesInstanceUID": uid,
                "stage": "load",
                "error_code": "E_NO_IMAGES",
                "message": f"stand-in failure of {uid}",
                "attempts": 1,
                "transient": False,
                "detail_json": None,
                "toolkit_version": "0.0.0",
            }
            store.commit(Fragment(uid, "failed", "E_NO_IMAGES", {"failures": [row]}))
        else:
            store.commit(Fragment(uid, "done", None, series_rows(uid, f"P{i // 5:06d}", study_year=(i // 2) % 3)))
    figures["commit_s"] = time.perf_counter() - t0
    figures["commit_rss_mib"] = _peak_mib()
    figures["fragments_mib"] = _du(store.series_dir) / 2**20

    t0 = time.perf_counter()
    committed = store.committed()
    figures["resume_read_s"] = time.perf_counter() - t0
    assert len(committed) == n
    del committed
    figures["resume_rss_mib"] = _peak_mib()

    t0 = time.perf_counter()
    written = store.assemble(uids, ["failures"])
    figures["assembly_s"] = time.perf_counter() - t0
    figures["assembly_rss_mib"] = _peak_mib()
    import pyarrow.parquet as pq

    for table, path in written.items():
        figures[f"{table}_rows"] = pq.ParquetFile(path).metadata.num_rows
        figures[f"{table}_mib"] = path.stat().st_size / 2**20
    return figures


def _sizes(ctx: BenchContext) -> tuple[int, ...]:
    env = os.environ.get("DEEPCAC2_SCALE_SIZES")
    if env:
        return tuple(int(x) for x in env.split(","))
    return QUICK if ctx.quick else FULL


def run(ctx: BenchContext) -> list[Result]:
    results: list[Result] = []
    runs = {}
    for n in _sizes(ctx):
        out = ctx.work / f"scale-{n}"
        proc = subprocess.run(
            [sys.executable, "-m", "bench.stages.scale", str(n), str(out)],
            check=True,
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        runs[n] = f = json.loads(proc.stdout.strip().splitlines()[-1])
        shutil.rmtree(out, ignore_errors=True)
        peak = max(f["commit_rss_mib"], f["resume_rss_mib"], f["assembly_rss_mib"]) / 1024
        rows = ", ".join(f"{t} {int(f[t + '_rows']):,} rows {f[t + '_mib']:.1f} MiB" for t in _tables(f))
        results += [
            Result("scale", f"{n:,} series: commit throughput", n / f["commit_s"], "series/s"),
            Result(
                "scale",
                f"{n:,} series: resume start (committed())",
                f["resume_read_s"],
                "s",
                f"< {TARGET_RESUME_S:.0f}",
            ),
            Result("scale", f"{n:,} series: assembly", f["assembly_s"], "s", f"< {TARGET_ASSEMBLY_S:.0f}", detail=rows),
            Result("scale", f"{n:,} series: client peak RSS", peak, "GiB", f"< {TARGET_RSS_GIB:.0f}"),
            Result("scale", f"{n:,} series: fragments on disk", f["fragments_mib"], "MiB"),
        ]
        for r in results[-4:-1]:
            if r.target:
                limit = float(r.target.split()[-1])
                r.met = r.value < limit
    if len(runs) >= 2:
        small, big = min(runs), max(runs)
        for key, label in (("assembly_s", "assembly time"), ("assembly_rss_mib", "peak RSS")):
            growth = runs[big][key] / runs[small][key]
            results.append(
                Result(
                    "scale",
                    f"growth {small:,} -> {big:,} series ({big / small:.1f}x): {label}",
                    growth,
                    "x",
                    detail=f"{runs[small][key]:.1f} -> {runs[big][key]:.1f}",
                )
            )
    return results


def _tables(f: dict[str, float]) -> list[str]:
    return sorted(k[: -len("_rows")] for k in f if k.endswith("_rows"))


if __name__ == "__main__":
    print(json.dumps(simulate(int(sys.argv[1]), Path(sys.argv[2]))), flush=True)
