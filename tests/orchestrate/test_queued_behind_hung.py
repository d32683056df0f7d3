"""A series that waits behind a hung one is not lost with it (real scheduler and worker processes).

CI saw it: two series sent to the queue of the worker whose thread hung were timed out with
the hung series, because the clock counted from submission. The clock now counts a task's
time running on a worker, and a series that never started moves off a busy worker to a free one.
"""

from __future__ import annotations

import json
import time

import pyarrow.parquet as pq
import pytest
from distributed import Client

from deepcac2.pipeline.dev import fake_stages as fake
from deepcac2.pipeline.orchestrate.cluster import ClusterSpec
from deepcac2.pipeline.orchestrate.run import RunConfig, run_series
from deepcac2.pipeline.stage_values import SeriesRef

from .helpers import start_dask, stop_dask

pytestmark = pytest.mark.slow


def _log(summary) -> list[dict]:
    return [json.loads(line) for line in summary.log_path.read_text().splitlines()]


def _tables(summary) -> tuple[list[str], list[dict]]:
    done = pq.read_table(summary.tables["fake_series"]).column("SeriesInstanceUID").to_pylist()
    return done, pq.read_table(summary.tables["failures"]).to_pylist()


def test_series_queued_behind_a_hung_inference_survive_its_timeout(tmp_path):
    """One worker has the GPU: every inference queues on it, behind the hung one.

    Counted from submission, all of them would time out with it. The hung one times out
    after 6 s running, the nanny restarts its worker, and the others finish.
    """
    procs = start_dask(tmp_path, 2, worker_args=[["--resources", "GPU=1"], []], nanny=True)
    try:
        refs = [SeriesRef(f"1.2.826.0.1.3680043.79.{i}", params={"work_s": 0.05}) for i in range(6)]
        hung = refs[0].series_uid
        procs.plan.write_text(json.dumps({hung: {"infer_hang_s": 120}}))
        config = RunConfig(
            cluster=ClusterSpec(scheduler=procs.address), progress=False, backoff_s=0.0, series_timeout_s=6.0
        )
        summary = run_series(refs, tmp_path / "out", config, stages=fake.STAGES)
        done, failed = _tables(summary)
        assert [(r["SeriesInstanceUID"], r["error_code"], r["stage"]) for r in failed] == [
            (hung, "E_TIMEOUT", "infer")
        ], failed
        assert "worker restarted" in failed[0]["message"], failed[0]["message"]
        assert sorted(done) == sorted(r.series_uid for r in refs[1:])
        assert summary.elapsed_s < 90
    finally:
        stop_dask(procs)


def test_a_series_queued_on_a_busy_worker_moves_to_a_free_one(tmp_path):
    """No timeout at all: a series sent to the worker whose only thread is stuck moves, or the run would wait.

    The stuck thread runs a cancelled task: the scheduler forgot it and sends that worker
    series as if it were free (as after a timed-out task on a worker nobody could restart).
    """
    procs = start_dask(tmp_path, 2)
    try:
        with Client(procs.address) as client:
            busy = sorted(client.scheduler_info(n_workers=-1)["workers"])[0]
            blocker = client.submit(time.sleep, 300, workers=[busy], pure=False)
            while not client.run(lambda dask_worker: len(dask_worker.state.executing), workers=[busy])[busy]:
                time.sleep(0.05)
            client.cancel(blocker, force=True)
            refs = [SeriesRef(f"1.2.826.0.1.3680043.80.{i}", params={"work_s": 0.05}) for i in range(12)]
            config = RunConfig(
                cluster=ClusterSpec(scheduler=procs.address), progress=False, backoff_s=0.0, series_timeout_s=None
            )
            t0 = time.monotonic()
            summary = run_series(refs, tmp_path / "out", config, stages=fake.STAGES)
            elapsed = time.monotonic() - t0
        done, failed = _tables(summary)
        assert failed == [] and sorted(done) == sorted(r.series_uid for r in refs)
        moved = [e for e in _log(summary) if e["event"] == "series_moved"]
        assert moved and {e["worker"] for e in moved} == {busy}, moved
        assert elapsed < 60, f"{elapsed:.0f} s"
    finally:
        stop_dask(procs)
