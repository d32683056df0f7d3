"""The whole pipeline: series/hour with 1 and 2 Dask workers, orchestration overhead, peak RSS (issue 7).

Two measurements, side by side in one run:

* **stand-in stages** (``pipeline.dev.fake_stages``) that compute a fixed CPU time, so only
  the orchestration differs between 1 and 2 workers: the scaling and overhead targets;
* **real stages** (synth series -> load -> classical model -> scoring -> SEG/SR/Parquet) on
  a few 512x512 series: real series/hour, per-stage seconds (for the NLST projection) and
  the peak RSS of the whole process tree.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.context import BenchContext, Result
from bench.measure import TreeRSS
from bench.orchestration import stage_seconds, time_run


def _real_run(ctx: BenchContext, workers: int, cohort: Path) -> tuple[float, dict[str, float], int, int]:
    """Wall seconds, per-series stage seconds, peak RSS of the tree, series done."""
    from deepcac2.pipeline.cohort.table import cohort_to_refs, read_cohort
    from deepcac2.pipeline.orchestrate.cluster import ClusterSpec
    from deepcac2.pipeline.orchestrate.run import RunConfig, run_series

    refs = cohort_to_refs(read_cohort(cohort))
    config = RunConfig(cluster=ClusterSpec(workers=workers, threads=1, dashboard_address=":0"), progress=False)
    with TreeRSS() as rss:
        summary = run_series(refs, ctx.work / f"real-w{workers}", config)
    events = [json.loads(line) for line in summary.log_path.read_text().splitlines()]
    start = next(e["ts"] for e in events if e["event"] == "cluster")
    end = max(e["ts"] for e in events if e["event"] in ("series_done", "series_failed"))
    per_stage = {k: v / max(summary.done, 1) for k, v in stage_seconds(summary.log_path).items()}
    return end - start, per_stage, rss.peak_bytes, summary.done


def _real_cohort(ctx: BenchContext, n: int) -> Path:
    from deepcac2.pipeline.cohort.select import index_local
    from deepcac2.pipeline.cohort.table import write_cohort as write_cohort_table
    from deepcac2.pipeline.synth.named_cohorts import write_cohort

    root = ctx.work / "pipeline-cohort"
    for seed in range(n):
        write_cohort("chest", root / f"s{seed}", seed=seed, slices=64, plaques=3)
    table, _ = index_local(root)
    return write_cohort_table(table, ctx.work / "pipeline-cohort.parquet")


def run(ctx: BenchContext) -> list[Result]:
    n_fake, spin = (16, 0.25) if ctx.quick else (60, 0.25)
    one = time_run(1, n_fake, spin, ctx.work / "fake")
    two = time_run(2, n_fake, spin, ctx.work / "fake")
    speedup = two.series_per_hour / one.series_per_hour
    results = [
        Result(
            "pipeline", "stand-in stages: 2 workers / 1 worker series/hour", speedup, "x", ">= 1.7", speedup >= 1.7,
            detail=f"{one.series_per_hour:.0f} vs {two.series_per_hour:.0f} series/h, {n_fake} series, {spin}s CPU/stage",
        ),
        Result(
            "pipeline", "orchestration overhead (1 worker)", one.overhead * 100, "%", "<= 5", one.overhead <= 0.05,
            detail=f"2 workers: {two.overhead:.1%}",
        ),
    ]  # fmt: skip
    cohort = _real_cohort(ctx, 2 if ctx.quick else 10)  # 10: the last series (one worker idle) weighs less
    for workers in (1, 2):
        wall, per_stage, peak, done = _real_run(ctx, workers, cohort)
        rate = done / wall * 3600
        ctx.cache[f"real_rate_{workers}"] = rate
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in sorted(per_stage.items()))
        results.append(Result("pipeline", f"real stages, {workers} worker(s)", rate, "series/h", detail=stages))
        results.append(
            Result("pipeline", f"real stages, {workers} worker(s): peak RSS of the run", peak / 2**30, "GiB")
        )
        if workers == 1:
            results.append(
                Result("pipeline", "cpu_per_series_1_worker", sum(per_stage.values()), "s/series", detail=stages)
            )
            ctx.cache["per_stage_seconds"] = per_stage
    real_speedup = ctx.cache["real_rate_2"] / ctx.cache["real_rate_1"]
    results.append(
        Result(
            "pipeline",
            "real stages: 2 workers / 1 worker series/hour",
            real_speedup,
            "x",
            ">= 1.7",
            real_speedup >= 1.7,
        )
    )
    return results
