"""A run reads its cohort a batch at a time: never every SeriesRef at once, with the same tables and resume."""

from __future__ import annotations

import gc

import dask
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from distributed import LocalCluster

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.cohort.table import read_cohort, read_cohort_batches
from deepcac2.pipeline.dev import fake_stages as fake
from deepcac2.pipeline.orchestrate import hooks, series_batches
from deepcac2.pipeline.orchestrate.cluster import ClusterSpec
from deepcac2.pipeline.orchestrate.run import RunConfig, run_cohort, run_series
from deepcac2.pipeline.orchestrate.series_batches import Plan, from_cohort, pending
from deepcac2.pipeline.stage_values import SeriesRef
from deepcac2.schemas.cohort import TABLE

from .helpers import write_cohort_parquet

N = 60
BATCH = 4
IN_FLIGHT = 3


@pytest.fixture(scope="module")
def scheduler():
    # Dask keeps its last 1,000 messages per stream for debugging (tasks, so their SeriesRefs, in them): a
    # bounded log, but longer than this test's run; kept short here so only what the run holds is counted
    with dask.config.set({"distributed.admin.low-level-log-length": 2}):
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
            yield cluster.scheduler_address


def _live_refs() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, SeriesRef))


def _cohort(tmp_path):
    uids = [f"1.2.826.0.1.3680043.99.2.{i}" for i in range(N)]
    return uids, write_cohort_parquet(tmp_path / "cohort.parquet", uids)


def _tables(summary) -> dict[str, bytes]:
    return {name: open(path, "rb").read() for name, path in summary.tables.items() if name != "runs"}


def _run(cohort, out, scheduler, **kw):
    config = RunConfig(
        cluster=ClusterSpec(scheduler=scheduler), max_in_flight=IN_FLIGHT, progress=False, backoff_s=0.0, **kw
    )
    return run_cohort(cohort, out, config, stages=fake.STAGES)


def test_a_cohort_run_holds_a_batch_of_series_not_the_cohort(scheduler, tmp_path, monkeypatch):
    monkeypatch.setattr(series_batches, "REF_BATCH_ROWS", BATCH)
    uids, cohort = _cohort(tmp_path)
    base = _live_refs()
    seen: list[int] = []

    def count(count: int) -> None:
        if count % 5 == 0:
            seen.append(_live_refs() - base)

    with hooks.installed("committed", count):
        summary = _run(cohort, tmp_path / "out", scheduler)
    assert summary.complete and summary.done == N and summary.total == N
    assert len(seen) == N // 5
    # the batch being read, the series in flight (and the scheduler's copies of their tasks): not the
    # 60 series of the cohort, which a run that held them all kept from start to end
    assert max(seen) <= 2 * BATCH + 3 * IN_FLIGHT, seen
    # the same bytes as a run given every series at once
    whole = run_series(
        [SeriesRef(u, patient_id=f"P{i % 3}") for i, u in enumerate(uids)],
        tmp_path / "whole",
        RunConfig(cluster=ClusterSpec(scheduler=scheduler), backoff_s=0.0, progress=False, max_in_flight=IN_FLIGHT),
        stages=fake.STAGES,
    )
    assert _tables(summary) == _tables(whole)


def test_an_interrupted_batched_run_resumes_to_the_same_bytes(scheduler, tmp_path, monkeypatch):
    monkeypatch.setattr(series_batches, "REF_BATCH_ROWS", BATCH)
    _, cohort = _cohort(tmp_path)

    def stop(count: int) -> None:
        if count == 17:  # mid-batch, mid-cohort
            raise KeyboardInterrupt("test")

    with hooks.installed("committed", stop):
        cut = _run(cohort, tmp_path / "out", scheduler)
    assert cut.interrupted and not cut.complete and cut.done + cut.failed == 17
    resumed = _run(cohort, tmp_path / "out", scheduler, resume=True)
    assert resumed.complete and resumed.skipped == 17 and resumed.done + resumed.failed == N - 17
    calm = _run(cohort, tmp_path / "calm", scheduler)
    assert _tables(resumed) == _tables(calm)


def test_cohort_batches_are_checked_as_the_whole_file(tmp_path):
    _, cohort = _cohort(tmp_path)
    batches = list(read_cohort_batches(cohort, rows=7))
    assert [b.num_rows for b in batches] == [7] * 8 + [4]
    assert pa.concat_tables(batches).equals(read_cohort(cohort))
    # a file without rows is still checked for its columns, as read_cohort checks it
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"SeriesInstanceUID": pa.array([], pa.string())}), bad)
    with pytest.raises(DeepCACError) as err:
        list(read_cohort_batches(bad))
    assert err.value.code == ErrorCode.E_COHORT_INVALID
    empty = tmp_path / "empty.parquet"
    pq.write_table(TABLE.arrow.empty_table(), empty)
    with pytest.raises(DeepCACError) as err:
        run_series(from_cohort(empty), tmp_path / "out", RunConfig(progress=False), stages=fake.STAGES)
    assert err.value.code == ErrorCode.E_COHORT_EMPTY


def test_a_cohort_that_changes_under_the_run_stops_it(tmp_path, monkeypatch):
    monkeypatch.setattr(series_batches, "REF_BATCH_ROWS", BATCH)
    _, cohort = _cohort(tmp_path)
    planned = Plan(total=N - 1, to_run=bytearray([1]) * (N - 1))  # planned on a file one row shorter
    with pytest.raises(DeepCACError) as err:
        list(pending(from_cohort(cohort), planned))
    assert err.value.code == ErrorCode.E_COHORT_INVALID
