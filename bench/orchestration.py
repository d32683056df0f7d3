"""Orchestration benchmarks: worker scaling, orchestration overhead, NLST projection.

    python -m bench.orchestration [--series 60] [--spin 0.25] [--json]

(``make bench`` runs it as part of ``bench/stages/pipeline.py``.)

* **scaling**: series/hour with 1 and with 2 local workers (target: 2 workers >= 1.7x).
  The stand-in stages compute for ``spin`` CPU seconds per CPU stage, so only the
  orchestration differs from a real run.
* **overhead**: 1 - (seconds spent inside stage functions) / (wall seconds x workers)
  (target: <= 5%). It counts scheduling, transfers, commits and idle workers.
* **projection**: hours and cost for the NLST cohort from measured per-stage seconds
  (:func:`nlst_projection`), which ``bench/`` can feed with real-stage timings.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from deepcac2.pipeline.dev import fake_stages as fake
from deepcac2.pipeline.orchestrate.cluster import ClusterSpec
from deepcac2.pipeline.orchestrate.run import RunConfig, run_series
from deepcac2.pipeline.stage_values import SeriesRef

NLST_SERIES = 127_776


@dataclass(frozen=True)
class RunTiming:
    workers: int
    series: int
    wall_s: float
    stage_s: float

    @property
    def series_per_hour(self) -> float:
        return self.series / self.wall_s * 3600

    @property
    def overhead(self) -> float:
        return 1.0 - self.stage_s / (self.wall_s * self.workers)


def stage_seconds(log_path: Path) -> dict[str, float]:
    """Sum of each stage's seconds over the series done in a run's log."""
    totals: dict[str, float] = {}
    for line in log_path.read_text().splitlines():
        event = json.loads(line)
        if event["event"] == "series_done":
            for stage, s in event["seconds"].items():
                totals[stage] = totals.get(stage, 0.0) + s
    return totals


def time_run(workers: int, n_series: int, spin_s: float, work_dir: Path) -> RunTiming:
    refs = [SeriesRef(f"1.2.826.0.1.3680043.55.{i}", params={"spin_s": spin_s}) for i in range(n_series)]
    config = RunConfig(cluster=ClusterSpec(workers=workers, threads=1, dashboard_address=":0"), progress=False)
    summary = run_series(refs, work_dir / f"w{workers}", config, stages=fake.STAGES)
    first = last = None
    for line in summary.log_path.read_text().splitlines():
        event = json.loads(line)
        if event["event"] == "cluster":
            first = event["ts"]
        if event["event"] in ("series_done", "series_failed"):
            last = event["ts"]
    if first is None or last is None:
        raise RuntimeError("the run logged no work")
    return RunTiming(workers, n_series, last - first, sum(stage_seconds(summary.log_path).values()))


def nlst_projection(
    seconds_per_series: dict[str, float], gpus: int, cpu_threads_per_gpu: int = 8, gpu_hour_usd: float = 2.5
) -> dict[str, float]:
    """Wall hours and GPU cost for the NLST cohort on ``gpus`` GPU workers.

    Each GPU worker runs inference one series at a time while its other threads run the
    CPU stages, so a series costs ``max(infer, cpu / (threads - 1))`` seconds of a worker.
    """
    infer = seconds_per_series.get("infer", 0.0)
    cpu = sum(v for k, v in seconds_per_series.items() if k != "infer")
    per_series = max(infer, cpu / max(1, cpu_threads_per_gpu - 1))
    hours = NLST_SERIES * per_series / gpus / 3600
    return {"gpus": gpus, "seconds_per_series": per_series, "hours": hours, "cost_usd": hours * gpus * gpu_hour_usd}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--series", type=int, default=60)
    p.add_argument("--spin", type=float, default=0.25, help="CPU seconds per CPU stage per series")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        one = time_run(1, args.series, args.spin, Path(tmp))
        two = time_run(2, args.series, args.spin, Path(tmp))
    speedup = two.series_per_hour / one.series_per_hour
    per_series = {"fetch_load": args.spin, "infer": 0.0, "score_convert": args.spin}
    result = {
        "one_worker": {**asdict(one), "series_per_hour": one.series_per_hour, "overhead": one.overhead},
        "two_workers": {**asdict(two), "series_per_hour": two.series_per_hour, "overhead": two.overhead},
        "speedup_2_vs_1": speedup,
        "projection_example": nlst_projection(per_series, gpus=8),
    }
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"1 worker:  {one.series_per_hour:8.0f} series/h, overhead {one.overhead:6.1%}")
        print(f"2 workers: {two.series_per_hour:8.0f} series/h, overhead {two.overhead:6.1%}")
        print(f"speedup 2 vs 1: {speedup:.2f}x (target >= 1.7x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
