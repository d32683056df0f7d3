"""The series clock, on a stand-in client and scheduler: time running counts, time queued never does.

The processes tests (``test_queued_behind_hung.py``, ``test_processes.py``) show it with
real Dask; these pin each rule on its own, with a clock the test moves.
"""

from __future__ import annotations

import pytest

from deepcac2.pipeline.dev import fake_stages as fake
from deepcac2.pipeline.orchestrate import loop
from deepcac2.pipeline.orchestrate.run import RunConfig
from deepcac2.pipeline.orchestrate.store import OutputStore
from deepcac2.pipeline.stage_values import SeriesRef

A, B = "tcp://a:1", "tcp://b:1"


class _Future:
    def __init__(self, key: str) -> None:
        self.key = key

    def release(self) -> None:
        pass


class _Client:
    """Answers ``task_states`` from ``self.states`` (stage -> (state, worker, running_s)); records the rest."""

    def __init__(self) -> None:
        self.states: dict[str, tuple[str, str | None, float | None]] = {}
        self.free: list[str] = []
        self.workers = 2
        self.submitted: list[dict] = []
        self.cancelled: list[str] = []
        self.restarted: list[str] = []

    def scheduler_info(self, n_workers: int = -1) -> dict:
        return {"workers": {A: {"nthreads": 1}, B: {"nthreads": 1}}}

    def submit(self, fn, *args, **kwargs):
        self.submitted.append(kwargs)
        return _Future(kwargs["key"])

    def run_on_scheduler(self, fn, **kwargs):
        assert fn is loop.task_states
        tasks = {}
        for key in kwargs["keys"]:
            stage = key.split("-", 1)[0]
            if stage in self.states:
                tasks[key] = self.states[stage]
        return {"tasks": tasks, "free": self.free, "workers": self.workers}

    def cancel(self, futures, force=False):
        self.cancelled += [f.key for f in futures]

    def restart_workers(self, workers, **kwargs):
        self.restarted += workers
        return {w: "OK" for w in workers}


class _Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def write(self, event: str, **fields) -> None:
        self.events.append((event, fields))


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(loop.time, "monotonic", lambda: now[0])
    return now


def _loop(tmp_path, timeout: float = 60.0) -> tuple[loop.SeriesLoop, _Client, _Log]:
    client = _Client()
    series = loop.SeriesLoop(client, OutputStore(tmp_path), RunConfig(series_timeout_s=timeout), fake.STAGES, "r-x")
    series.submit(SeriesRef("1.2.3"), 1)
    return series, client, _Log()


def _tick(series: loop.SeriesLoop, log: _Log, clock: list[float], seconds: float) -> list:
    clock[0] += seconds
    series._next_observe = 0.0
    series._observe(log)
    return series._expired(log)


def test_time_queued_never_counts(tmp_path, clock):
    series, client, log = _loop(tmp_path)
    client.states = {"fetch_load": ("assigned", A, None)}  # behind another task on A, nothing free
    assert _tick(series, log, clock, 5) == [] and _tick(series, log, clock, 3600) == []
    client.states = {"fetch_load": ("running", A, 1.0)}
    assert _tick(series, log, clock, 1) == []
    assert _tick(series, log, clock, 58) == []  # 59 s running
    (late,) = _tick(series, log, clock, 2)  # 61 s running
    ref, failure = late
    assert (failure.code, failure.stage) == ("E_TIMEOUT", "fetch_load")
    assert "its fetch_load task ran 60 s on worker tcp://a:1" in failure.message
    assert client.restarted == [A] and not series.inflight


def test_a_task_rescheduled_on_another_worker_starts_its_clock_again(tmp_path, clock):
    series, client, log = _loop(tmp_path)
    client.states = {"fetch_load": ("memory", None, None), "infer": ("running", A, 0.0)}
    assert _tick(series, log, clock, 1) == [] and _tick(series, log, clock, 50) == []
    client.states = {"fetch_load": ("memory", None, None), "infer": ("running", B, 0.0)}  # A died
    assert _tick(series, log, clock, 1) == [] and _tick(series, log, clock, 50) == []
    (late,) = _tick(series, log, clock, 11)
    assert "its infer task ran 60 s on worker tcp://b:1" in late[1].message


def test_a_series_that_never_started_moves_off_a_busy_worker_when_another_is_free(tmp_path, clock):
    series, client, log = _loop(tmp_path)
    client.states = {"fetch_load": ("assigned", A, None)}
    client.free = [A]  # only the worker it waits on looks free (a stuck thread the scheduler forgot)
    _tick(series, log, clock, 1)
    _tick(series, log, clock, loop.MOVE_AFTER_S + 1)
    assert len(client.submitted) == 3 and not client.cancelled
    client.free = [A, B]
    _tick(series, log, clock, 1)
    assert len(client.cancelled) == 3 and len(client.submitted) == 6
    assert all(kw["workers"] == [B] and kw["allow_other_workers"] for kw in client.submitted[3:])
    assert all(kw["key"].endswith("-1-m1") for kw in client.submitted[3:])
    assert [e for e, _ in log.events] == ["series_moved"]


def test_a_moved_series_never_prefers_a_worker_without_the_gpu_for_inference(tmp_path, clock):
    """CI saw it: Dask's scheduler raised KeyError 'GPU' and dropped the only other worker when a
    GPU task preferred a worker without the GPU; the series then waited for ever."""
    series, client, log = _loop(tmp_path)
    series.gpu = True
    client.scheduler_info = lambda n_workers=-1: {"workers": {A: {"resources": {"GPU": 1}}, B: {"resources": {}}}}
    client.states = {"fetch_load": ("assigned", A, None)}
    client.free = [A, B]
    _tick(series, log, clock, 1)
    _tick(series, log, clock, loop.MOVE_AFTER_S + 1)
    fetch, infer, finish = client.submitted[3:]
    assert fetch["workers"] == [B] and finish["workers"] == [B]
    assert infer["resources"] == {"GPU": 1} and "workers" not in infer


def test_a_started_series_is_not_moved(tmp_path, clock):
    series, client, log = _loop(tmp_path)
    client.states = {"fetch_load": ("memory", None, None), "infer": ("assigned", A, None)}
    client.free = [B]
    _tick(series, log, clock, 1)
    _tick(series, log, clock, loop.MOVE_AFTER_S + 1)
    assert len(client.submitted) == 3 and not client.cancelled


def test_a_series_behind_a_stuck_thread_that_stays_times_out(tmp_path, clock):
    series, client, log = _loop(tmp_path)
    series.stuck.add(A)  # a timed-out task's worker that could be neither restarted nor removed
    client.states = {"fetch_load": ("memory", None, None), "infer": ("assigned", A, None)}
    assert _tick(series, log, clock, 1) == [] and _tick(series, log, clock, 59) == []
    (late,) = _tick(series, log, clock, 2)
    assert late[1].code == "E_TIMEOUT" and "behind the stuck thread of worker tcp://a:1" in late[1].message


class _Bar:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, message: str) -> None:
        self.lines.append(message)


@pytest.mark.parametrize(
    ("workers", "states", "reason"),
    [
        (0, {"fetch_load": ("queued", None, None)}, "no Dask worker is connected"),
        (1, {"fetch_load": ("memory", None, None), "infer": ("no-worker", None, None)}, "resource (GPU)"),
    ],
    ids=["all-workers-lost", "no-gpu-worker-left"],
)
def test_a_run_nothing_can_run_says_so_and_keeps_waiting(tmp_path, clock, workers, states, reason):
    """Tasks that cannot start never time out: the run waits for workers (adaptive clusters), never silently."""
    series, client, log = _loop(tmp_path)
    series._bar = bar = _Bar()
    client.workers, client.states = workers, states
    for _ in range(5):
        assert _tick(series, log, clock, 10) == []  # seen stalled at the first poll, 40 s ago: not yet said
    assert not log.events and not bar.lines
    assert _tick(series, log, clock, 25) == []  # 65 s
    ((event, fields),) = log.events
    assert event == "no_worker" and reason in fields["reason"] and fields["waited_s"] == 65
    assert reason in bar.lines[0] and "--resume" in bar.lines[0]
    _tick(series, log, clock, 100)
    assert len(log.events) == 1  # repeated every STALL_REPEAT_S, not every poll
    _tick(series, log, clock, loop.STALL_REPEAT_S)
    assert len(log.events) == 2 and series.inflight  # still waiting: the series is neither failed nor dropped


def test_a_run_with_a_running_task_is_not_stalled(tmp_path, clock):
    series, client, log = _loop(tmp_path)
    client.states = {"fetch_load": ("memory", None, None), "infer": ("running", A, 1.0)}
    for _ in range(10):
        _tick(series, log, clock, 10)
    assert not [e for e, _ in log.events if e == "no_worker"]
    # a worker comes back after a stall: the clock of the stall starts again
    client.workers, client.states = 0, {"fetch_load": ("queued", None, None)}
    _tick(series, log, clock, 30)
    client.workers, client.states = 1, {"fetch_load": ("running", A, 0.0)}
    _tick(series, log, clock, 1)
    client.workers, client.states = 0, {"fetch_load": ("queued", None, None)}
    _tick(series, log, clock, 40)
    assert not [e for e, _ in log.events if e == "no_worker"]
