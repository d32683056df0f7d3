"""Losing a worker mid-run loses no series: SIGKILL (the nanny restarts it), SIGSTOP (silent, never closes).

Real ``dask scheduler`` / ``dask worker`` processes on loopback. Every trial must end with
every series done exactly once, none failed, in less than twice the undisturbed time.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow.parquet as pq
import pytest
from distributed import Client

from deepcac2.pipeline.dev import fake_stages as fake
from deepcac2.pipeline.orchestrate import hooks
from deepcac2.pipeline.orchestrate.cluster import ClusterSpec
from deepcac2.pipeline.orchestrate.plugin import PLUGIN_NAME
from deepcac2.pipeline.orchestrate.run import RunConfig, run_cohort, run_series
from deepcac2.pipeline.stage_values import SeriesRef

from .helpers import start_dask, stop_dask

pytestmark = pytest.mark.slow
TRIALS = 5


def _worker_pids(address: str) -> dict[str, int]:
    with Client(address, timeout=30) as client:
        return client.run(os.getpid)


@contextmanager
def _kill_at(address: str, pick: int, after: int, sig: int = signal.SIGKILL) -> Iterator[list[int]]:
    """Send ``sig`` to one worker process right after the run's ``after``-th commit.

    A run hook (``orchestrate.hooks``) does it in the run's own thread, so the run cannot
    finish first however loaded the machine is. Yields the pids it signalled.
    """
    pids = _worker_pids(address)
    victim = pids[sorted(pids)[pick % len(pids)]]
    sent: list[int] = []

    def kill(count: int) -> None:
        if count == after and not sent:
            os.kill(victim, sig)
            sent.append(victim)

    with hooks.installed("committed", kill):
        yield sent


def _every_series_done_once(summary, uids: list[str], table: str) -> None:
    done = pq.read_table(summary.tables[table]).column("SeriesInstanceUID").to_pylist()
    failed = pq.read_table(summary.tables["failures"]).to_pylist()
    assert failed == [], [(r["SeriesInstanceUID"], r["error_code"], r["message"]) for r in failed]
    assert sorted(done) == sorted(uids), "every series exactly once"
    assert summary.complete and summary.done == len(uids) and summary.failed == 0


@pytest.fixture(scope="module")
def nanny_cluster(tmp_path_factory):
    """A scheduler and two nanny-managed workers: a killed worker process is replaced, as in a LocalCluster."""
    procs = start_dask(tmp_path_factory.mktemp("dask-nanny"), 2, nanny=True)
    try:
        yield procs
    finally:
        stop_dask(procs)


def test_sigkill_a_worker_five_times_loses_no_series(nanny_cluster, tmp_path):
    refs = [SeriesRef(f"1.2.826.0.1.3680043.77.{i}", params={"work_s": 0.25}) for i in range(24)]
    uids = [r.series_uid for r in refs]
    config = RunConfig(cluster=ClusterSpec(scheduler=nanny_cluster.address), progress=False, backoff_s=0.0)
    t0 = time.monotonic()
    _every_series_done_once(run_series(refs, tmp_path / "calm", config, stages=fake.STAGES), uids, "fake_series")
    calm = time.monotonic() - t0
    for trial in range(TRIALS):
        out = tmp_path / f"trial{trial}"
        before = _worker_pids(nanny_cluster.address)
        with _kill_at(nanny_cluster.address, pick=trial, after=3) as killed:
            t0 = time.monotonic()
            summary = run_series(refs, out, config, stages=fake.STAGES)
            elapsed = time.monotonic() - t0
        assert killed, "the worker was killed mid-run"
        _every_series_done_once(summary, uids, "fake_series")
        print(f"SIGKILL trial {trial}: {elapsed:.1f} s, undisturbed {calm:.1f} s")  # shown with -s
        assert elapsed < 2 * calm, f"trial {trial}: {elapsed:.1f} s, undisturbed {calm:.1f} s"
        nanny_cluster.wait_for_workers(2)
        after = _worker_pids(nanny_cluster.address)
        assert len(set(after.values()) - set(before.values())) == 1, "one worker process was replaced"
    # the replacement imported the stages' modules in the plugin's setup, before any task
    with Client(nanny_cluster.address) as client:
        warmed = client.run(lambda dask_worker: dask_worker.plugins[PLUGIN_NAME].warmed)
        assert all(w == ["pydicom"] for w in warmed.values()), warmed
        assert all(client.run(lambda: "pydicom" in sys.modules).values())


def test_sigkill_a_worker_with_the_real_stages(tmp_path):
    """Real series (synth -> cohort -> load -> model -> SEG/SR) on two nanny workers, one killed mid-run."""
    from deepcac2.pipeline.cohort.select import index_local
    from deepcac2.pipeline.cohort.table import write_cohort as write_cohort_table
    from deepcac2.pipeline.synth.named_cohorts import write_cohort

    root = tmp_path / "synth"
    for seed in range(3):
        write_cohort("chest", root / f"chest{seed}", seed=seed, slices=40, rows=256, plaques=2)
    table, _ = index_local(root)
    cohort = write_cohort_table(table, tmp_path / "cohort.parquet")
    uids = table.column("SeriesInstanceUID").to_pylist()
    (tmp_path / "dask").mkdir()
    procs = start_dask(tmp_path / "dask", 2, nanny=True)
    try:
        t0 = time.monotonic()
        config = RunConfig(cluster=ClusterSpec(scheduler=procs.address), progress=False)
        calm = run_cohort(cohort, tmp_path / "calm", config)
        calm_s = time.monotonic() - t0
        _every_series_done_once(calm, uids, "cac_series")
        with Client(procs.address) as client:  # setup imported the real stages' modules on each worker
            warmed = client.run(lambda dask_worker: dask_worker.plugins[PLUGIN_NAME].warmed)
        assert all({"pydicom", "highdicom", "deepcac2.pipeline.loader"} <= set(w) for w in warmed.values()), warmed
        with _kill_at(procs.address, pick=0, after=1) as killed:
            t0 = time.monotonic()
            hit = run_cohort(cohort, tmp_path / "hit", config)
            elapsed = time.monotonic() - t0
        assert killed, "the worker was killed mid-run"
        _every_series_done_once(hit, uids, "cac_series")
        print(f"SIGKILL, real stages: {elapsed:.1f} s, undisturbed {calm_s:.1f} s")  # shown with -s
        assert elapsed < 2 * calm_s, f"{elapsed:.1f} s, undisturbed {calm_s:.1f} s"
        for name, path in calm.tables.items():
            if name != "runs":
                assert (tmp_path / "hit" / "tables" / f"{name}.parquet").read_bytes() == path.read_bytes(), name
    finally:
        stop_dask(procs)


def test_a_silent_worker_is_removed_and_its_series_run_elsewhere(tmp_path):
    """SIGSTOP: the worker's connection stays open, so Dask would wait its 5-minute worker-ttl."""
    procs = start_dask(tmp_path, 2)
    stopped: list[int] = []
    try:
        refs = [SeriesRef(f"1.2.826.0.1.3680043.78.{i}", params={"work_s": 0.2}) for i in range(12)]
        config = RunConfig(
            cluster=ClusterSpec(scheduler=procs.address),
            progress=False,
            backoff_s=0.0,
            series_timeout_s=300.0,
            worker_ttl_s=3.0,
        )
        pids = _worker_pids(procs.address)
        stopped.append(pids[sorted(pids)[0]])

        def freeze(count: int) -> None:  # in the run's thread, after its 2nd commit: no race
            if count == 2:
                os.kill(stopped[0], signal.SIGSTOP)

        t0 = time.monotonic()
        with hooks.installed("committed", freeze):
            summary = run_series(refs, tmp_path / "out", config, stages=fake.STAGES)
        elapsed = time.monotonic() - t0
        _every_series_done_once(summary, [r.series_uid for r in refs], "fake_series")
        print(f"SIGSTOP: {elapsed:.1f} s with --worker-ttl 3, series timeout 300 s")  # shown with -s
        assert elapsed < 60, f"{elapsed:.0f} s: the series waited on the frozen worker"
        log = [json.loads(line) for line in summary.log_path.read_text().splitlines()]
        removed = [e for e in log if e["event"] == "worker_removed"]
        assert len(removed) == 1 and removed[0]["silent_s"] >= 3.0 and removed[0]["tasks"], removed
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        stop_dask(procs)
