"""Losing the scheduler (kill -9) mid-run: E_SCHEDULER_LOST, a run record in runs.parquet, and the exact
``--resume`` command, instead of a raw FuturesCancelledError traceback (exit 1, no record).

The scheduler is killed at a fixed point of the run (after its 3rd commit), through the run's
test hooks: in process (``hooks.installed``) and in a ``deepcac2 run`` subprocess (held at the
commit by ``DEEPCAC2_TEST_HOLD_AT_COMMIT`` while the test kills the scheduler).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.dev import fake_stages as fake
from deepcac2.pipeline.orchestrate import hooks
from deepcac2.pipeline.orchestrate.cluster import ClusterSpec
from deepcac2.pipeline.orchestrate.run import RunConfig, run_series
from deepcac2.pipeline.stage_values import SeriesRef

from .helpers import held_run, start_dask, stop_dask, write_cohort_parquet

pytestmark = pytest.mark.slow


def _kill_scheduler(procs) -> None:
    os.kill(procs.scheduler.pid, signal.SIGKILL)
    procs.scheduler.wait(30)


def test_losing_the_scheduler_stops_the_run_with_a_code_and_a_run_record(tmp_path):
    procs = start_dask(tmp_path, 2)
    try:
        refs = [SeriesRef(f"1.2.826.0.1.3680043.44.{i}", params={"work_s": 0.05}) for i in range(16)]
        config = RunConfig(cluster=ClusterSpec(scheduler=procs.address), progress=False, max_in_flight=4)

        def kill(count: int) -> None:
            if count == 3:
                _kill_scheduler(procs)

        with hooks.installed("committed", kill), pytest.raises(DeepCACError) as err:
            run_series(refs, tmp_path / "out", config, stages=fake.STAGES)
        assert err.value.code is ErrorCode.E_SCHEDULER_LOST
        assert procs.address in err.value.message and "--resume" in err.value.message
        (run,) = pq.read_table(tmp_path / "out" / "tables" / "runs.parquet").to_pylist()
        assert (run["outcome"], run["n_series"], run["n_succeeded"]) == ("E_SCHEDULER_LOST", 16, 3)
        assert not (tmp_path / "out" / ".deepcac2-run.lock").exists()
        assert not (tmp_path / "out" / "tables" / "fake_series.parquet").exists(), "no half-done result table"
    finally:
        stop_dask(procs)


def test_cli_prints_the_resume_command_that_then_finishes_the_run(tmp_path):
    """``deepcac2 run`` exits 3 with E_SCHEDULER_LOST and ``continue with: ...``; that command, run once a
    scheduler is back, gives the same tables as an undisturbed run."""
    uids = [f"1.2.826.0.1.3680043.45.{i}" for i in range(10)]
    cohort = write_cohort_parquet(tmp_path / "cohort.parquet", uids)
    (tmp_path / "first").mkdir()
    first = start_dask(tmp_path / "first", 2)
    try:
        cmd = [sys.executable, "-m", "deepcac2", "run", "--cohort", str(cohort), "--out", str(tmp_path / "out")]
        cmd += ["--scheduler", first.address, "--no-progress", "--max-in-flight", "2"]
        cmd += ["--stages", "deepcac2.pipeline.dev.fake_stages:STAGES"]
        run = held_run(cmd, tmp_path / "held", at_commit=3)
        _kill_scheduler(first)
        (tmp_path / "held").unlink()  # let the run go on, without its scheduler
        text, _ = run.communicate(timeout=180)
    finally:
        stop_dask(first)
    assert run.returncode == 3, text
    assert "error E_SCHEDULER_LOST" in text and "Traceback" not in text, text
    resume = next(line for line in text.splitlines() if "continue with:" in line).split("continue with: ", 1)[1]
    words = shlex.split(resume)
    assert words[:2] == ["deepcac2", "run"] and words[-1] == "--resume", resume
    runs = pq.read_table(tmp_path / "out" / "tables" / "runs.parquet").to_pylist()
    assert [r["outcome"] for r in runs] == ["E_SCHEDULER_LOST"]

    (tmp_path / "second").mkdir()
    second = start_dask(tmp_path / "second", 2)
    try:  # the printed command, against the new scheduler
        words[words.index("--scheduler") + 1] = second.address
        again = subprocess.run(
            [sys.executable, "-m", "deepcac2", *words[1:]], capture_output=True, text=True, timeout=180
        )
        assert again.returncode == 0, again.stderr
        whole = subprocess.run(
            [*cmd[:7], str(tmp_path / "whole"), "--scheduler", second.address, *cmd[10:]],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert whole.returncode == 0, whole.stderr
    finally:
        stop_dask(second)
    for name in ("fake_series", "failures"):
        assert (tmp_path / "out" / "tables" / f"{name}.parquet").read_bytes() == (
            tmp_path / "whole" / "tables" / f"{name}.parquet"
        ).read_bytes(), name
    runs = pq.read_table(tmp_path / "out" / "tables" / "runs.parquet").to_pylist()
    assert sorted(r["outcome"] for r in runs) == ["E_SCHEDULER_LOST", "ended"]
    log = (tmp_path / "out" / "logs").glob("run-*.jsonl")
    assert any(json.loads(line)["event"] == "run_failed" for p in log for line in p.read_text().splitlines())
