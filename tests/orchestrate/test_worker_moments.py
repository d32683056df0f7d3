"""A worker lost at any moment of a run never ends it: before the plugin is registered, while it is
being registered, mid-series, and while the tables are written.

Each moment is reached deterministically: a hook of the run (``orchestrate.hooks``) or a fault
injected into the stand-in stages kills the worker there, never a thread racing a sleep. The
workers run without a nanny, so a killed one stays dead and the run must finish on the other.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pyarrow.parquet as pq
import pytest
from distributed import Client

from deepcac2.pipeline.dev import fake_stages as fake
from deepcac2.pipeline.dev.fake_crash import CRASH_ENV
from deepcac2.pipeline.orchestrate import hooks
from deepcac2.pipeline.orchestrate.cluster import ClusterSpec
from deepcac2.pipeline.orchestrate.run import RunConfig, run_series
from deepcac2.pipeline.stage_values import SeriesRef

from .helpers import start_dask, stop_dask

pytestmark = pytest.mark.slow


def _refs(n: int, **params) -> list[SeriesRef]:
    return [SeriesRef(f"1.2.826.0.1.3680043.66.{i}", params=dict(params)) for i in range(n)]


def _config(address: str) -> RunConfig:
    return RunConfig(cluster=ClusterSpec(scheduler=address), progress=False, backoff_s=0.0, max_in_flight=4)


def _all_done(summary, refs) -> None:
    assert summary.complete and (summary.done, summary.failed) == (len(refs), 0), summary.format()
    done = pq.read_table(summary.tables["fake_series"]).column("SeriesInstanceUID").to_pylist()
    assert sorted(done) == sorted(r.series_uid for r in refs), "every series exactly once"
    assert pq.read_table(summary.tables["failures"]).num_rows == 0


def _kill_worker(procs, index: int, client: Client) -> None:
    """SIGKILL one worker process and wait until the scheduler has dropped it."""
    os.kill(procs.workers[index].pid, signal.SIGKILL)
    procs.workers[index].wait(30)
    end = time.time() + 60
    while len(client.scheduler_info()["workers"]) != len(procs.workers) - 1:
        assert time.time() < end, "the scheduler never noticed the dead worker"
        time.sleep(0.05)


def _events(summary) -> list[dict]:
    return [json.loads(line) for line in summary.log_path.read_text().splitlines()]


def test_a_worker_lost_before_the_plugin_is_registered(tmp_path):
    procs = start_dask(tmp_path, 2)
    try:
        refs = _refs(8)
        with hooks.installed("client_ready", lambda client: _kill_worker(procs, 0, client)):
            summary = run_series(refs, tmp_path / "out", _config(procs.address), stages=fake.STAGES)
        assert procs.workers[0].returncode == -signal.SIGKILL
        _all_done(summary, refs)
    finally:
        stop_dask(procs)


def test_a_worker_lost_while_the_plugin_is_registered(tmp_path):
    """The first worker to run the plugin's setup dies in it; register_plugin's CommClosedError is retried.

    On the old code the run ended with that CommClosedError traceback (exit 1).
    """
    crashed = tmp_path / "crashed"
    procs = start_dask(tmp_path, 2, env={CRASH_ENV: str(crashed)})
    try:
        refs = _refs(8)
        summary = run_series(refs, tmp_path / "out", _config(procs.address), stages=fake.STAGES_CRASH_IN_SETUP)
        died = int(crashed.read_text())  # the pid of the worker that died in setup
        assert died in {p.pid for p in procs.workers}
        assert sum(p.poll() is not None for p in procs.workers) == 1
        _all_done(summary, refs)
        # retried at least once (again while the scheduler still lists the dead worker), then registered
        retries = [e["attempt"] for e in _events(summary) if e["event"] == "plugin_retry"]
        assert retries and retries == list(range(1, len(retries) + 1)) and len(retries) < 5, retries
    finally:
        stop_dask(procs)


def test_a_worker_lost_mid_series(tmp_path):
    """One series kills its worker inside its load step, once; Dask runs it again on the other worker."""
    crashed = tmp_path / "crashed"
    procs = start_dask(tmp_path, 2)
    try:
        refs = _refs(8)
        refs[2] = SeriesRef(refs[2].series_uid, params={"crash_once": str(crashed)})
        summary = run_series(refs, tmp_path / "out", _config(procs.address), stages=fake.STAGES)
        assert crashed.exists() and sum(p.poll() is not None for p in procs.workers) == 1
        _all_done(summary, refs)
    finally:
        stop_dask(procs)


def test_a_worker_lost_while_the_tables_are_written(tmp_path):
    procs = start_dask(tmp_path, 2)
    try:
        refs = _refs(8)

        def kill(store) -> None:
            os.kill(procs.workers[1].pid, signal.SIGKILL)
            procs.workers[1].wait(30)

        with hooks.installed("tables", kill):
            summary = run_series(refs, tmp_path / "out", _config(procs.address), stages=fake.STAGES)
        assert procs.workers[1].returncode == -signal.SIGKILL
        _all_done(summary, refs)
    finally:
        stop_dask(procs)
