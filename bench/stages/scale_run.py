"""One size of the ``scale`` bench, in a process of its own (so its peak RSS is its own run's).

The steps of an NLST run at N series, each timed:

1. ``cohort``: a stand-in cohort Parquet (every column filled from the schema), written
   ``COHORT_BATCH`` rows at a time;
2. ``run``: ``run_cohort`` (what ``deepcac2 run`` calls) on a local Dask cluster (``WORKERS`` worker processes, 1 thread each)
   with the stand-in stages (``standin_stages``: realistic rows, a tiny SEG and SR per series, 2 %
   failed), committing every series through the real ``OutputStore``, then sweeping ``dicom/``
   and assembling the tables (timed apart through the run's ``tables`` hook);
3. ``resume start``: what ``--resume`` does before it starts a cluster, on the finished store: the
   cohort checked and planned (``series_batches.check_cohort`` and ``plan``: every series' status
   line read); ``committed()`` (every status line at once) timed apart;
4. ``qa``, ``release build``, ``release verify`` and ``query`` as ``deepcac2`` commands in child
   processes (time and peak RSS each, from ``wait4``).

QA's per-object checks reject the stand-in objects (header-only DICOM: no pixel data, no SR
content), and its score checks reject the stand-in rows' random values: the blocking checks
that failed are reported by name. The release is then built as a draft (``--allow-no-qa``,
QA moved aside), so ``release build``/``verify`` run on every table and object anyway.

    python -m bench.stages.scale_run N WORK     # prints one JSON line of figures
"""

from __future__ import annotations

import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: cohort rows built and written at once (the run reads them back as many at a time)
COHORT_BATCH = 10_000
WORKERS = 2
#: series submitted at once: enough to keep the scheduler busy while the client commits
MAX_IN_FLIGHT = 64
#: the run logs the client's RSS every this many series (the growth within one run)
MEMORY_EVERY = 2_000
REPO = Path(__file__).resolve().parents[2]


def peak_mib() -> float:
    """This process's peak RSS so far (VmHWM where there is /proc: not the forking parent's, as ru_maxrss)."""
    return _hwm_mib("self") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def du_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def uid_of(i: int) -> str:
    return f"1.2.826.0.1.3680043.10.9999.{i}"


def write_cohort(n: int, path: Path) -> None:
    """The stand-in cohort of n series (5 per patient, 3 rounds), a batch of rows at a time."""
    import pyarrow.parquet as pq

    from deepcac2.pipeline.convert.parquet_tables import to_arrow
    from deepcac2.pipeline.dev.standin_rows import fill
    from deepcac2.schemas.registry import TABLES

    schema = TABLES["cohort"]
    with pq.ParquetWriter(path, schema.arrow, compression="zstd") as writer:
        for start in range(0, n, COHORT_BATCH):
            rows = []
            for i in range(start, min(n, start + COHORT_BATCH)):
                uid, patient, year = uid_of(i), f"P{i // 5:06d}", (i // 2) % 3
                rng = random.Random(i)
                rows.append(
                    fill(
                        schema,
                        rng,
                        SeriesInstanceUID=uid,
                        PatientID=patient,
                        StudyInstanceUID=f"{uid}.0",
                        study_year=year,
                        collection_id="nlst",
                        location=None,
                        source_fingerprint=None,
                        Modality="CT",
                        selection_reason="policy standin: passed one_series_per_round",
                    )
                )
            writer.write_table(to_arrow(schema, rows, derive=False))


def run(n: int, work: Path, figures: dict[str, Any]) -> Path:
    """The Dask run of the stand-in cohort into ``work/run``; figures of its steps."""
    from deepcac2.pipeline.dev.standin_stages import STAGES
    from deepcac2.pipeline.orchestrate import hooks
    from deepcac2.pipeline.orchestrate.cluster import ClusterSpec
    from deepcac2.pipeline.orchestrate.run import RunConfig, run_cohort

    out = work / "run"
    cohort = work / "cohort.parquet"
    t0 = time.perf_counter()
    write_cohort(n, cohort)
    figures["cohort_s"] = time.perf_counter() - t0
    figures["cohort_rss_mib"] = peak_mib()
    marks: dict[str, float] = {}

    def mark(name: str) -> Any:
        def at(**_: Any) -> None:
            marks[name] = time.perf_counter()
            marks[name + "_rss"] = peak_mib()

        return at

    cluster = ClusterSpec(workers=WORKERS, threads=1)
    config = RunConfig(
        cluster=cluster, max_in_flight=MAX_IN_FLIGHT, progress=False, backoff_s=0.0, memory_every=MEMORY_EVERY
    )
    t0 = time.perf_counter()
    with hooks.installed("plugin_registered", mark("plugin")), hooks.installed("tables", mark("tables")):
        summary = run_cohort(cohort, out, config, stages=STAGES)
    end = time.perf_counter()
    assert summary.complete and summary.done + summary.failed == n, summary.format()
    figures.update(
        run_s=end - t0,
        cluster_start_s=marks["plugin"] - t0,
        scheduling_s=marks["tables"] - marks["plugin"],
        series_per_s=n / (marks["tables"] - marks["plugin"]),
        scheduling_rss_mib=marks["tables_rss"],
        assembly_s=end - marks["tables"],
        run_rss_mib=peak_mib(),
        done=summary.done,
        failed=summary.failed,
        client_rss_by_series=_rss_by_series(Path(summary.log_path)),
    )
    return out


def _rss_by_series(log: Path) -> dict[int, float]:
    """Series finished -> the client's RSS then (MiB), from the run log's ``memory`` events."""
    out = {}
    with open(log, encoding="utf-8") as lines:  # line by line: the log holds an event per series
        for line in lines:
            if '"memory"' in line:
                event = json.loads(line)
                out[event["finished"]] = round(event["client_rss_mb"])
    return out


def partial(figures: dict[str, Any]) -> None:
    """The figures so far, on a line of their own: a long run that fails later keeps them."""
    print(json.dumps({"partial": figures}), flush=True)


def _hwm_mib(pid: int | str) -> float:
    """A process's peak RSS so far (VmHWM: of its own program, unlike wait4's, which keeps the forking parent's)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def child(args: list[str]) -> tuple[int, float, float, str]:
    """A ``deepcac2`` command: (exit status, wall s, its peak RSS MiB, last output line)."""
    t0 = time.perf_counter()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-m", "deepcac2", *args], cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _hwm_mib(proc.pid))
        time.sleep(0.05)
    log.seek(0)
    lines = [x for x in log.read().decode(errors="replace").splitlines() if x.strip()]
    return proc.returncode, time.perf_counter() - t0, peak, (lines or [""])[-1][:300]


def failed_checks(checks: Path) -> dict[str, int]:
    """Blocking QA checks that failed, by check name, with how many subjects each."""
    import pyarrow.parquet as pq

    table = pq.read_table(checks, columns=["check", "passed", "blocking"]).to_pandas()
    bad = table[table["blocking"].astype(bool) & ~table["passed"].astype(bool)]
    return {str(k): int(v) for k, v in sorted(bad["check"].value_counts().items())}


def after_run(out: Path, work: Path, figures: dict[str, Any]) -> None:
    """Resume start, QA, release build, verify and query on the finished run."""
    from deepcac2.location import DICOM_DIR, QA_CHECKS, QA_DIR, STATE_DIR, TABLES_DIR
    from deepcac2.pipeline.orchestrate.series_batches import check_cohort, from_cohort, plan
    from deepcac2.pipeline.orchestrate.store import OutputStore

    t0 = time.perf_counter()
    committed = OutputStore(out).committed()
    figures["resume_read_s"] = time.perf_counter() - t0
    figures["resume_rss_mib"] = peak_mib()
    del committed
    t0 = time.perf_counter()
    series = from_cohort(work / "cohort.parquet")
    check_cohort(series, verify_inputs=False)
    planned = plan(series, OutputStore(out), frozenset(), verify_inputs=False, rescan=False)
    figures["resume_start_s"] = time.perf_counter() - t0
    assert planned.todo == 0, planned.todo
    figures["fragments_mib"] = du_mib(out / STATE_DIR)
    figures["dicom_mib"] = du_mib(out / DICOM_DIR)
    for table in sorted((out / TABLES_DIR).glob("*.parquet")):
        figures[f"table_{table.stem}_mib"] = table.stat().st_size / 2**20

    status, figures["qa_s"], figures["qa_rss_mib"], _ = child(["qa", str(out)])
    figures["qa_exit"] = status
    figures["qa_blocking_failed"] = failed_checks(out / QA_DIR / QA_CHECKS)
    partial(figures)
    (out / QA_DIR).rename(work / "qa.standin")  # the draft release below is built without it (module doc)

    rel = work / "release"
    build = ["release", "build", str(out), "--version", "0.0.0-scale", "--out", str(rel), "--allow-no-qa"]
    status, figures["build_s"], figures["build_rss_mib"], last = child(build)
    figures["build_exit"] = status
    partial(figures)
    if status:
        figures["build_error"] = last
        return
    status, figures["verify_s"], figures["verify_rss_mib"], last = child(["release", "verify", str(rel)])
    figures["verify_exit"], figures["verify_last"] = status, last
    sql = (
        "SELECT s.study_year, count(DISTINCT s.SeriesInstanceUID) AS series, count(m.SOPInstanceUID) AS measurements "
        "FROM cac_series s LEFT JOIN measurements m ON m.sourceSegmentedSeriesUID = s.SeriesInstanceUID "
        "GROUP BY ALL ORDER BY 1"
    )
    status, figures["query_s"], figures["query_rss_mib"], last = child(["query", "--release", str(rel), sql])
    figures["query_exit"], figures["query_last"] = status, last
    figures["release_mib"] = du_mib(rel)
    figures["manifest_mib"] = (rel / "MANIFEST.csv").stat().st_size / 2**20


def simulate(n: int, work: Path) -> dict[str, Any]:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    figures: dict[str, Any] = {"series": n, "rss_start_mib": peak_mib()}
    out = run(n, work, figures)
    partial(figures)
    after_run(out, work, figures)
    return figures


if __name__ == "__main__":
    print(json.dumps(simulate(int(sys.argv[1]), Path(sys.argv[2]))), flush=True)
