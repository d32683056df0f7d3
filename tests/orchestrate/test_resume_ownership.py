"""--resume and --retry-failed choose what runs again; the run owns dicom/; worker-loss classification."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from distributed import LocalCluster
from distributed.client import FutureCancelledError
from distributed.comm.core import CommClosedError

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.dev import fake_stages as fake
from deepcac2.pipeline.orchestrate.cluster import ClusterSpec
from deepcac2.pipeline.orchestrate.loop import KilledWorker, SeriesLoop, worker_lost
from deepcac2.pipeline.orchestrate.run import RunConfig, run_series
from deepcac2.pipeline.orchestrate.store import Fragment, OutputStore
from deepcac2.pipeline.stage_values import SeriesRef

CODES = ("E_WORKER_LOST", "E_OUT_OF_MEMORY", "E_DISK_FULL", "E_TIMEOUT", "E_INTERNAL", "E_NO_IMAGES")


@pytest.fixture(scope="module")
def scheduler():
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def _config(scheduler: str, **kw) -> RunConfig:
    return RunConfig(cluster=ClusterSpec(scheduler=scheduler), backoff_s=0.0, retries=0, progress=False, **kw)


def _refs(plan: dict[int, dict]) -> list[SeriesRef]:
    return [SeriesRef(f"1.2.826.0.1.3680043.55.{i}", params=plan.get(i, {})) for i in range(len(CODES) + 2)]


def _failed(summary) -> dict[str, str]:
    return {r["SeriesInstanceUID"]: r["error_code"] for r in pq.read_table(summary.tables["failures"]).to_pylist()}


def test_resume_retries_every_transient_class_and_retry_failed_the_codes_asked_for(scheduler, tmp_path):
    failing = {i: {"fail": code} for i, code in enumerate(CODES)}
    first = run_series(_refs(failing), tmp_path, _config(scheduler), stages=fake.STAGES)
    uids = [r.series_uid for r in _refs({})]
    assert _failed(first) == {uids[i]: code for i, code in enumerate(CODES)}
    # the inputs are fine now: --resume runs the transient ones again, keeps the permanent ones
    resumed = run_series(_refs({}), tmp_path, _config(scheduler, resume=True), stages=fake.STAGES)
    transient = {"E_WORKER_LOST", "E_OUT_OF_MEMORY", "E_DISK_FULL", "E_TIMEOUT"}
    assert resumed.done == len(transient) and resumed.skipped == len(uids) - len(transient)
    assert _failed(resumed) == {uids[i]: c for i, c in enumerate(CODES) if c not in transient}
    # --retry-failed E_INTERNAL (without --resume: it implies it) runs that one again, not E_NO_IMAGES
    again = run_series(
        _refs({}), tmp_path, _config(scheduler, retry_codes=frozenset({"E_INTERNAL"})), stages=fake.STAGES
    )
    assert again.done == 1
    assert _failed(again) == {uids[CODES.index("E_NO_IMAGES")]: "E_NO_IMAGES"}


def test_the_run_owns_dicom_stale_and_partial_objects_never_survive(scheduler, tmp_path):
    plan = {i: {"write_dicom": True} for i in range(3)}
    refs = _refs(plan)[:3]
    first = run_series(refs, tmp_path, _config(scheduler), stages=fake.STAGES)
    assert first.done == 3
    dicom = tmp_path / "dicom"
    assert sorted(p.name for p in dicom.iterdir()) == sorted(r.series_uid for r in refs)
    (dicom / "1.2.826.0.1.3680043.55.999").mkdir()  # objects of a series no longer in the cohort
    (dicom / "1.2.826.0.1.3680043.55.999" / "sr.dcm").write_bytes(b"old")
    (dicom / refs[0].series_uid / ".seg.dcm.x1.tmp").write_bytes(b"half")  # a worker killed mid-write
    (dicom / "notes.txt").write_text("someone's file")
    # rerun: series 1 now fails after writing its SEG; series 2 fails before writing anything
    plan = {0: {"write_dicom": True}, 1: {"write_dicom": True, "finish_fail": "E_SR_WRITE"}, 2: {"fail": "E_NO_IMAGES"}}
    second = run_series(_refs(plan)[:3], tmp_path, _config(scheduler, overwrite=True), stages=fake.STAGES)
    assert (second.done, second.failed) == (1, 2)
    assert [p.relative_to(dicom).as_posix() for p in sorted(dicom.rglob("*"))] == [
        refs[0].series_uid,
        f"{refs[0].series_uid}/seg.dcm",
    ]
    log = [json.loads(line) for line in second.log_path.read_text().splitlines()]
    swept = next(e["removed"] for e in log if e["event"] == "dicom_swept")
    assert "notes.txt" in swept and f"{refs[0].series_uid}/.seg.dcm.x1.tmp" in swept


def test_a_failed_series_loses_its_objects_when_it_is_committed(tmp_path):
    store = OutputStore(tmp_path)
    (store.series_dicom_dir("1.2.3") / "x").mkdir(parents=True)
    assert store.discard_dicom("1.2.3") and not store.series_dicom_dir("1.2.3").exists()
    assert not store.discard_dicom("1.2.3")


def test_an_empty_cohort_is_refused(tmp_path):
    with pytest.raises(DeepCACError) as err:
        run_series([], tmp_path, RunConfig(progress=False), stages=fake.STAGES)
    assert err.value.code is ErrorCode.E_COHORT_EMPTY


class _Worker:
    address = "tcp://10.0.0.1:1234"


@pytest.mark.parametrize(
    "exc",
    [
        KilledWorker("fetch_load-1.2.3-x-1", _Worker(), 3),
        FutureCancelledError("fetch_load-1.2.3-x-1", reason="scheduler-connection-lost"),
        CommClosedError("in <TCP>: Stream is closed"),
        ConnectionResetError("peer reset"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_worker_loss_errors_are_transient_worker_lost(exc):
    failure = worker_lost(exc, SeriesRef("1.2.3"), 1)
    assert failure is not None and failure.code == ErrorCode.E_WORKER_LOST.value and failure.transient
    if isinstance(exc, KilledWorker):
        assert failure.detail["worker"] == _Worker.address and failure.stage == "fetch_load"


def test_other_errors_are_not_worker_loss():
    assert worker_lost(ValueError("a bug"), SeriesRef("1.2.3"), 1) is None
    assert worker_lost(TimeoutError("slow"), SeriesRef("1.2.3"), 1) is None


class _Client:
    """Records what the loop submits."""

    def __init__(self, workers: list[str]) -> None:
        self.workers = workers
        self.calls: list[dict] = []

    def scheduler_info(self, n_workers: int = -1) -> dict:
        return {"workers": {w: {"nthreads": 1} for w in self.workers}}

    def submit(self, fn, *args, **kwargs):
        self.calls.append(kwargs)
        return type("F", (), {"key": kwargs["key"]})()


def test_a_series_lost_with_a_worker_is_retried_on_another(tmp_path):
    client = _Client(["tcp://a:1", "tcp://b:1", "tcp://c:1"])
    loop = SeriesLoop(client, OutputStore(tmp_path), RunConfig(), fake.STAGES, "run-abc")
    loop.submit(SeriesRef("1.2.3"), 1)
    assert all("workers" not in c for c in client.calls)
    client.calls.clear()
    loop.submit(SeriesRef("1.2.3"), 2, frozenset({"tcp://a:1"}))
    assert [c["workers"] for c in client.calls] == [["tcp://b:1", "tcp://c:1"]] * 3
    assert all(c["allow_other_workers"] for c in client.calls)
    client.calls.clear()
    loop.submit(SeriesRef("1.2.3"), 3, frozenset(client.workers))  # nowhere else: anywhere
    assert all("workers" not in c for c in client.calls)


def test_fragments_of_transient_codes_are_retried_on_resume():
    for code in ("E_WORKER_LOST", "E_OUT_OF_MEMORY", "E_DISK_FULL", "E_TIMEOUT", "E_FETCH_TRANSIENT"):
        assert Fragment("1.2.3", "failed", code, {}).retry_on_resume, code
    for code in ("E_INTERNAL", "E_NO_IMAGES", "E_INPUT_CHANGED", "E_SEG_WRITE"):
        assert not Fragment("1.2.3", "failed", code, {}).retry_on_resume, code


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deepcac2", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--workers", "0"], "--workers: 0 is out of range"),
        (["--workers", "-1"], "--workers: -1 is out of range"),
        (["--threads", "0"], "--threads: 0 is out of range"),
        (["--max-in-flight", "0"], "--max-in-flight: 0 is out of range"),
        (["--retries", "-1"], "--retries: -1 is out of range"),
        (["--series-timeout", "-5"], "--series-timeout: -5 is out of range"),
        (["--cache-gb", "0"], "--cache-gb: 0 is out of range"),
        (["--series-timeout", "nan"], "is not a finite number"),
        (["--retry-failed", "E_NOPE"], "'E_NOPE' is not an error code"),
    ],
)
def test_run_arguments_are_range_checked_at_parse_time(tmp_path, args, fragment):
    done = _cli("run", "--cohort", str(tmp_path / "c.parquet"), "--out", str(tmp_path / "o"), *args)
    assert done.returncode == 2 and fragment in done.stderr, done.stderr
    assert not (tmp_path / "o").exists()


def test_an_unwritable_out_is_a_coded_error_without_a_traceback(tmp_path):
    from .helpers import write_cohort_parquet

    cohort = write_cohort_parquet(tmp_path / "c.parquet", ["1.2.826.0.1.3680043.55.1"])
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    done = _cli("run", "--cohort", str(cohort), "--out", str(blocker / "out"), "--no-progress")
    assert done.returncode == 3, done.stderr
    assert "error E_OUTPUT_UNWRITABLE: cannot write the run's output folder (--out)" in done.stderr
    assert "Traceback" not in done.stderr
