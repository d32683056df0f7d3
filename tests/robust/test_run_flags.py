"""Operator probes of ``deepcac2 run``'s flags: every wrong value is a usage error at parse time (exit 2,
one line naming the flag, no traceback) and writes nothing, so the corrected command starts clean.

On the old code ``--scheduler http://h:8787``, ``--scheduler notascheme://x`` and ``--memory-limit lots``
ended in tracebacks after the output folder was set up, ``--overwrite --retry-failed`` and
``--device quantum`` were accepted, and ``--workers 200`` on 2 CPUs started 200 processes.
"""

from __future__ import annotations

import json
import os
import socket

import pytest

from deepcac2.cli import main
from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.dev import fake_stages as fake
from deepcac2.pipeline.models.base import ModelSpec
from deepcac2.pipeline.orchestrate import flags
from deepcac2.pipeline.orchestrate.cluster import ClusterSpec
from deepcac2.pipeline.orchestrate.run import RunConfig, run_series
from deepcac2.pipeline.orchestrate.store import LOCK_NAME, OutputStore, _process_started
from deepcac2.pipeline.stage_values import SeriesRef

BAD = [
    (["--scheduler", "http://h:8787"], "--scheduler", "dashboard"),
    (["--scheduler", "notascheme://x"], "--scheduler", "unknown scheme"),
    (["--scheduler", "tcp://"], "--scheduler", "does not name a host"),
    (["--scheduler", "tcp://h:99999"], "--scheduler", "out of range"),
    (["--memory-limit", "lots"], "--memory-limit", "not a memory size"),
    (["--memory-limit", "-0.5"], "--memory-limit", "fraction"),
    (["--device", "quantum"], "--device", "not a device"),
    (["--dashboard", "nowhere"], "--dashboard", "HOST:PORT"),
    (["--overwrite", "--retry-failed", "E_INTERNAL"], "--overwrite", "choose one"),
    (["--resume", "--overwrite"], "--overwrite", "not allowed with"),
    (["--oversubscribe"], "--oversubscribe", "--workers"),
]


@pytest.mark.parametrize(("extra", "flag", "why"), BAD, ids=[" ".join(b[0]) for b in BAD])
def test_a_wrong_flag_is_a_usage_error_that_writes_nothing(tmp_path, capsys, extra, flag, why):
    out = tmp_path / "out"
    argv = ["run", "--cohort", str(tmp_path / "cohort.parquet"), "--out", str(out), *extra]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert flag in err and why in err, err
    assert "Traceback" not in err
    assert not out.exists(), "a refused command wrote nothing"


@pytest.mark.parametrize(
    "good",
    ["tcp://node1:8786", "tls://10.0.0.5:8786", "node1:8786", "tcp://[::1]:8786", "ucx://gpu-node:13337"],
)
def test_scheduler_addresses_that_dask_takes_are_accepted(good):
    assert flags.scheduler_address(good).split("://", 1)[1] == good.split("://")[-1]


@pytest.mark.parametrize("good", ["auto", "0", "0.5", "4GiB", "500MB", "2e9"])
def test_memory_limits_that_dask_takes_are_accepted(good):
    assert flags.memory_limit(good)


def test_workers_are_capped_by_the_cpus_unless_forced(tmp_path, monkeypatch, capsys):
    assert flags.cap_workers(200, False, cpus=2) == (2, flags.cap_workers(200, False, cpus=2)[1])
    assert "--oversubscribe" in flags.cap_workers(200, False, cpus=2)[1]
    assert flags.cap_workers(200, True, cpus=2) == (200, None)
    assert flags.cap_workers(2, False, cpus=2) == (2, None)
    # through the command line: the run is asked for the capped count
    seen = {}
    import deepcac2.pipeline.orchestrate.run as run_module

    def fake_run_cohort(cohort, out, config, **kw):
        seen["workers"] = config.cluster.workers
        raise DeepCACError(ErrorCode.E_INTERNAL, "stop here")

    monkeypatch.setattr(run_module, "run_cohort", fake_run_cohort)
    cpus = os.cpu_count() or 1
    main(["run", "--cohort", "c.parquet", "--out", str(tmp_path), "--workers", str(cpus + 198)])
    assert seen["workers"] == cpus
    assert f"--workers {cpus + 198} is more than this machine's {cpus} CPUs" in capsys.readouterr().err
    main(["run", "--cohort", "c.parquet", "--out", str(tmp_path), "--workers", str(cpus + 198), "--oversubscribe"])
    assert seen["workers"] == cpus + 198


def test_the_command_line_builds_one_run_config(tmp_path, monkeypatch):
    import deepcac2.pipeline.orchestrate.run as run_module

    seen = {}

    def fake_run_cohort(cohort, out, config, **kw):
        seen["config"] = config
        raise DeepCACError(ErrorCode.E_INTERNAL, "stop here")

    monkeypatch.setattr(run_module, "run_cohort", fake_run_cohort)
    args = ["--weights", "w.pt", "--conventions", "deepcac, canon", "--retry-failed", "E_INTERNAL"]
    args += ["--series-timeout", "0", "--no-progress", "--threads", "3", "--cache-dir", str(tmp_path / "c")]
    main(["run", "--cohort", "c.parquet", "--out", str(tmp_path), *args])
    config = seen["config"]
    assert config.model == ModelSpec(None, "w.pt", None) and config.conventions == ("deepcac", "canon")
    assert config.resume and config.retry_codes == frozenset({"E_INTERNAL"}) and not config.overwrite
    assert config.series_timeout_s is None and config.worker_ttl_s == 120.0 and not config.progress
    assert config.cluster.threads == 3 and config.cache.root == str(tmp_path / "c") and config.anatomy == "auto"


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"retries": -1}, "retries"),
        ({"max_in_flight": 0}, "max_in_flight"),
        ({"series_timeout_s": -5.0}, "series_timeout_s"),
        ({"conventions": ()}, "conventions"),
        ({"resume": True, "overwrite": True}, "resume and overwrite"),
    ],
)
def test_a_run_config_refuses_values_no_run_can_use(bad, named):
    with pytest.raises(ValueError, match=named):
        RunConfig(**bad)


def test_an_attempt_that_committed_nothing_does_not_block_the_corrected_command(scheduler, tmp_path):
    """A model that cannot load stops the run before any commit; its run.json must not make the fixed
    command fail with E_OUTPUT_EXISTS (on the old code it did, and so did a bad --scheduler)."""
    refs = [SeriesRef(f"1.2.826.0.1.3680043.33.{i}") for i in range(3)]
    config = RunConfig(cluster=ClusterSpec(scheduler=scheduler), progress=False, model=ModelSpec(name="missing"))
    with pytest.raises(DeepCACError) as err:
        run_series(refs, tmp_path, config, stages=fake.STAGES)
    assert err.value.code is ErrorCode.E_MODEL_UNKNOWN
    assert (tmp_path / "state" / "run.json").exists() and not list((tmp_path / "state" / "series").glob("*/*"))
    fixed = RunConfig(cluster=ClusterSpec(scheduler=scheduler), progress=False)
    summary = run_series(refs, tmp_path, fixed, stages=fake.STAGES)  # no --resume, no --overwrite needed
    assert summary.complete and summary.done == 3
    # once something is committed, a fresh run is refused as before
    with pytest.raises(DeepCACError) as err:
        run_series(refs, tmp_path, fixed, stages=fake.STAGES)
    assert err.value.code is ErrorCode.E_OUTPUT_EXISTS


def test_a_lock_whose_pid_was_reused_is_not_respected(tmp_path):
    """The lock names a live pid, but that process started after the lock's: the pid was reused."""
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    (tmp_path / LOCK_NAME).write_text(json.dumps({**me, "pid_started": _process_started(os.getpid()) - 3600}))
    with OutputStore(tmp_path):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid_started"] == _process_started(os.getpid())
    # the same pid with its own start time: a live run, respected
    (tmp_path / LOCK_NAME).write_text(json.dumps({**me, "pid_started": _process_started(os.getpid())}))
    with pytest.raises(DeepCACError) as err:
        OutputStore(tmp_path).acquire()
    assert err.value.code is ErrorCode.E_OUTPUT_LOCKED


def test_an_older_lock_without_a_start_time_is_stale_when_its_pid_started_later(tmp_path):
    """Locks written before start times were kept carry when they were taken: a pid younger than that is reused."""
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    (tmp_path / LOCK_NAME).write_text(json.dumps({**me, "started": _process_started(os.getpid()) - 3600}))
    with OutputStore(tmp_path):
        pass
    (tmp_path / LOCK_NAME).write_text(json.dumps({**me, "started": _process_started(os.getpid()) + 5}))
    with pytest.raises(DeepCACError) as err:
        OutputStore(tmp_path).acquire()
    assert err.value.code is ErrorCode.E_OUTPUT_LOCKED
