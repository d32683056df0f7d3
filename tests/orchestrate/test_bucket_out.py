"""``run --out s3://...``: a run whose outputs go to an object store (moto in server mode on loopback).

The stand-in stages run on real Dask worker processes that reach the bucket themselves
(no shared folder); the tables must be the bytes a run into a local folder writes.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import uuid

import pytest
from distributed import LocalCluster

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.location import LOCK_FILE, Remote
from deepcac2.pipeline.dev import fake_stages as fake
from deepcac2.pipeline.orchestrate.cluster import ClusterSpec
from deepcac2.pipeline.orchestrate.run import RunConfig, run_series
from deepcac2.pipeline.orchestrate.store import OutputStore
from deepcac2.pipeline.stage_values import SeriesRef

from .helpers import bucket_fragment_count, bucket_fragments, held_run, write_cohort_parquet

BUCKET = "deepcac2-runs"


@pytest.fixture(scope="module")
def bucket_env(aws_env, s3):
    """The run's bucket on the moto server; the AWS variables are set before the workers start (they inherit them)."""
    s3.create_bucket(Bucket=BUCKET)
    return s3


@pytest.fixture(scope="module")
def scheduler(bucket_env):
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def _url() -> str:
    return f"s3://{BUCKET}/runs/{uuid.uuid4().hex[:8]}"


def _refs(n: int) -> list[SeriesRef]:
    refs = []
    for i in range(n):
        params: dict = {"write_dicom": True}
        if i % 4 == 1:
            params = {"fail": "E_NO_IMAGES"}
        elif i % 4 == 2:
            params = {"write_dicom": True, "finish_fail": "E_SR_WRITE"}  # objects written, then the series fails
        refs.append(SeriesRef(f"1.2.826.0.1.77.{i}", patient_id=f"P{i}", params=params))
    return refs


def _config(scheduler: str, **kw) -> RunConfig:
    return RunConfig(cluster=ClusterSpec(scheduler=scheduler), backoff_s=0.0, progress=False, **kw)


def _files(url: str, rel: str = "") -> list[str]:
    return Remote.parse(url).files(rel)


def test_a_run_into_a_bucket_writes_the_bytes_of_a_run_into_a_folder(scheduler, tmp_path):
    refs = _refs(9)
    url = _url()
    remote = run_series(refs, url, _config(scheduler, max_in_flight=3), stages=fake.STAGES)
    local = run_series(refs, tmp_path / "local", _config(scheduler, max_in_flight=3), stages=fake.STAGES)
    assert remote.complete and remote.out_dir == url
    assert set(remote.tables) == set(local.tables)
    bucket = Remote.parse(url)
    for name, path in local.tables.items():
        assert remote.tables[name] == f"{url}/tables/{name}.parquet"
        if name != "runs":  # the one table that differs per run (ids, times)
            assert bucket.read_bytes(f"tables/{name}.parquet") == path.read_bytes(), name
    # the workers put each done series' SEG; the failed ones' objects are gone, as on disk
    done = sorted(f"dicom/{r.series_uid}/seg.dcm" for i, r in enumerate(refs) if i % 4 in (0, 3))
    assert _files(url, "dicom") == done
    assert (
        sorted(p.relative_to(tmp_path / "local").as_posix() for p in (tmp_path / "local" / "dicom").rglob("*.dcm"))
        == done
    )
    # state, the run record, the log and the cohort copy are in the bucket; the lock and the local mirror are gone
    names = _files(url)
    loose, packed = bucket_fragments(url)  # the run's fragments, packed when it stopped
    assert not loose and len(packed) == len(refs)
    assert [n for n in names if n.startswith("state/packs/")] == ["state/packs/00000001.tar.zst"]
    assert [n for n in names if n.startswith("logs/")] == [remote.log_path.split(f"{url}/")[1]]
    assert "state/created" in names and "state/run.json" in names and LOCK_FILE not in names
    assert not any(n.startswith("tables/.parts") for n in names)


def test_a_second_run_into_the_same_bucket_prefix_is_refused(bucket_env, tmp_path):
    url = _url()
    with OutputStore(url) as first:
        assert Remote.parse(url).exists(LOCK_FILE)
        with pytest.raises(DeepCACError) as err:
            OutputStore(url).acquire()
        assert err.value.code is ErrorCode.E_OUTPUT_LOCKED
        assert url in err.value.message and "pid" in err.value.message
        assert first.root.is_dir()  # the mirror of the run that holds the lock is untouched
    assert not Remote.parse(url).exists(LOCK_FILE)
    # a lock held by a run on another machine is never taken over, dead or not: only its owner can tell
    Remote.parse(url).write_bytes(LOCK_FILE, b'{"pid": 1, "host": "node-elsewhere", "started": 0}')
    with pytest.raises(DeepCACError) as err:
        OutputStore(url).acquire()
    assert err.value.code is ErrorCode.E_OUTPUT_LOCKED and "node-elsewhere" in err.value.message


def test_a_stale_lock_of_a_dead_process_on_this_host_is_taken_over(bucket_env):
    url = _url()
    Remote.parse(url).write_bytes(LOCK_FILE, f'{{"pid": 999999999, "host": "{socket.gethostname()}"}}'.encode())
    with OutputStore(url) as store:
        assert store.bucket is not None
    assert not Remote.parse(url).exists(LOCK_FILE)


def test_resume_reads_the_committed_series_from_the_bucket(scheduler, tmp_path):
    refs = _refs(8)
    url = _url()
    first = run_series(refs[:5], url, _config(scheduler), stages=fake.STAGES)  # stands for a run cut short
    assert first.complete
    with pytest.raises(DeepCACError) as err:  # results there: a fresh run is refused, as on disk
        run_series(refs, url, _config(scheduler), stages=fake.STAGES)
    assert err.value.code is ErrorCode.E_OUTPUT_EXISTS
    again = run_series(refs, url, _config(scheduler, resume=True), stages=fake.STAGES)
    assert (again.skipped, again.done + again.failed) == (5, 3)
    whole = run_series(refs, tmp_path / "whole", _config(scheduler), stages=fake.STAGES)
    bucket = Remote.parse(url)
    for name in ("fake_series", "failures"):
        assert bucket.read_bytes(f"tables/{name}.parquet") == whole.tables[name].read_bytes(), name
    assert len([n for n in _files(url, "state/runs")]) == 2
    # --overwrite forgets the bucket's results and starts again
    over = run_series(refs[:2], url, _config(scheduler, overwrite=True), stages=fake.STAGES)
    assert over.skipped == 0 and over.done + over.failed == 2
    assert bucket_fragment_count(url) == 2
    assert _files(url, "state/packs") == ["state/packs/00000001.tar.zst"]  # the old packs went with --overwrite


def test_objects_of_series_not_done_are_swept_from_the_bucket(scheduler):
    refs = _refs(4)
    url = _url()
    Remote.parse(url).write_bytes("dicom/1.2.3.not-in-this-run/seg.dcm", b"an earlier run's object")
    Remote.parse(url).write_bytes("state/run.json", b"{}")  # a run folder, so the prefix is ours
    summary = run_series(refs, url, _config(scheduler), stages=fake.STAGES)
    assert summary.complete
    assert [n.split("/")[1] for n in _files(url, "dicom")] == [refs[0].series_uid, refs[3].series_uid]


def test_a_prefix_holding_dicom_but_no_run_state_is_not_ours(bucket_env):
    url = _url()
    Remote.parse(url).write_bytes("dicom/x/seg.dcm", b"someone else's")
    with pytest.raises(DeepCACError) as err:
        run_series(_refs(1), url, RunConfig(progress=False), stages=fake.STAGES)
    assert err.value.code is ErrorCode.E_OUTPUT_NOT_OURS
    assert Remote.parse(url).files() == ["dicom/x/seg.dcm"]  # nothing written, lock released


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("gs://bucket/run", ["gcsfs", "deepcac2[cloud]"]),
        ("ftp://host/run", ["not a supported output location"]),
        ("s3://", ["names no bucket"]),
    ],
)
def test_an_unusable_url_is_refused_before_any_work(url, words):
    try:
        import gcsfs  # noqa: F401

        if url.startswith("gs://"):
            pytest.skip("gcsfs is installed: the missing-package message cannot be shown")
    except ImportError:
        pass
    with pytest.raises(DeepCACError) as err:
        run_series(_refs(1), url, RunConfig(progress=False), stages=fake.STAGES)
    assert err.value.code is ErrorCode.E_OUTPUT_UNWRITABLE
    assert all(w in err.value.message for w in words), err.value.message


@pytest.mark.slow  # four deepcac2 processes
def test_a_cli_run_into_a_bucket_refuses_a_second_one_and_resumes_after_an_interrupt(scheduler, tmp_path):
    """Two ``deepcac2 run`` processes on one bucket prefix: the second exits E_OUTPUT_LOCKED while the first holds
    (after its 2nd commit); the first, interrupted there, resumes to the bytes of an uninterrupted local run."""
    uids = [f"1.2.826.0.1.78.{i}" for i in range(8)]
    cohort = write_cohort_parquet(tmp_path / "cohort.parquet", uids)
    url = _url()

    def cmd(out: str, *extra: str) -> list[str]:
        base = [sys.executable, "-m", "deepcac2", "run", "--cohort", str(cohort), "--out", out, "--no-progress"]
        return [*base, "--scheduler", scheduler, "--stages", "deepcac2.pipeline.dev.fake_stages:STAGES", *extra]

    first = held_run(cmd(url), tmp_path / "held", at_commit=2)
    try:
        second = subprocess.run(cmd(url), capture_output=True, text=True, timeout=120)
        assert second.returncode == 3, second.stderr
        assert "E_OUTPUT_LOCKED" in second.stderr and url in second.stderr
    finally:
        first.send_signal(signal.SIGINT)
    text, _ = first.communicate(timeout=60)
    assert first.returncode == 130, text
    assert f"--out {url}" in text and "--resume" in text  # how to go on names the bucket
    names = _files(url)
    assert bucket_fragment_count(url) == 2, names
    assert LOCK_FILE not in names and not any(n.startswith("tables/") for n in names)
    assert any(n.startswith("logs/") for n in names)  # the interrupted run's log is kept

    again = subprocess.run(cmd(url, "--resume"), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    whole = subprocess.run(cmd(str(tmp_path / "whole")), capture_output=True, text=True, timeout=120)
    assert whole.returncode == 0, whole.stderr
    bucket = Remote.parse(url)
    for path in sorted((tmp_path / "whole" / "tables").glob("*.parquet")):
        if path.name != "runs.parquet":
            assert bucket.read_bytes(f"tables/{path.name}") == path.read_bytes(), path.name
    assert len(bucket.files("state/runs")) == 2


def test_a_lock_taken_is_given_back_when_the_state_cannot_be_read(bucket_env, monkeypatch):
    from deepcac2.pipeline.orchestrate.bucket import BucketMirror

    def unreadable(self):
        raise DeepCACError(ErrorCode.E_OUTPUT_UNWRITABLE, "state/ cannot be read (stands for a network error)")

    monkeypatch.setattr(BucketMirror, "pull", unreadable)
    url = _url()
    store = OutputStore(url)
    with pytest.raises(DeepCACError, match="cannot be read"):
        store.acquire()
    assert not Remote.parse(url).exists(LOCK_FILE)  # the next run is not locked out
    assert not store.root.exists()  # nor is the local mirror left behind


@pytest.fixture
def gs_on_moto(bucket_env):
    """``gs://`` served by s3fs on the moto server: fsspec's gs protocol without Google's service.

    It shows that nothing between ``--out`` and fsspec is S3-specific (the URL's scheme is kept,
    and only fsspec calls are made); gcsfs itself (and GCS's conditional create) is not exercised.
    """
    import sys

    import fsspec
    from s3fs import S3FileSystem

    class GSOnMoto(S3FileSystem):
        protocol = ("gs", "gcs")

    fsspec.register_implementation("gs", GSOnMoto, clobber=True)
    try:
        yield
    finally:
        sys.modules["fsspec.registry"]._registry.pop("gs", None)  # back to gcsfs (or its absence)


def test_a_gs_url_runs_through_fsspec_like_s3(gs_on_moto, tmp_path):
    refs = _refs(5)
    url = f"gs://{BUCKET}/gs-runs/{uuid.uuid4().hex[:8]}"
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        config = _config(cluster.scheduler_address)
        remote = run_series(refs, url, config, stages=fake.STAGES)
        local = run_series(refs, tmp_path / "local", config, stages=fake.STAGES)
        with pytest.raises(DeepCACError) as err:  # results there: a fresh run is refused, as on disk
            run_series(refs, url, config, stages=fake.STAGES)
    assert err.value.code is ErrorCode.E_OUTPUT_EXISTS
    assert remote.complete and remote.out_dir == url and remote.tables["fake_series"].startswith("gs://")
    bucket = Remote.parse(url)
    assert bucket.uri() == url and bucket.fs.protocol == ("gs", "gcs")
    for name in ("fake_series", "fake_lesions", "failures"):
        assert bucket.read_bytes(f"tables/{name}.parquet") == local.tables[name].read_bytes(), name
    done = [r.series_uid for i, r in enumerate(refs) if i % 4 in (0, 3)]
    assert [n.split("/")[1] for n in bucket.files("dicom")] == done
    # the same objects, seen through S3: they are where the gs:// URL said
    assert Remote.parse(url.replace("gs://", "s3://", 1)).files("dicom") == bucket.files("dicom")


def test_the_log_reaches_the_bucket_while_the_run_goes_on(scheduler, monkeypatch):
    from deepcac2.pipeline.orchestrate import bucket, hooks

    monkeypatch.setattr(bucket, "LOG_EVERY_S", 0.0)
    url = _url()
    seen: dict[str, object] = {}

    def look(count: int) -> None:
        if count == 3:  # mid-run: fragments and the log so far are there, no table yet
            names = _files(url)
            logs = [n for n in names if n.startswith("logs/")]
            seen.update(names=names, log=Remote.parse(url).read_bytes(logs[0]).decode() if logs else "")

    with hooks.installed("committed", look):
        run_series(_refs(6), url, _config(scheduler, max_in_flight=2), stages=fake.STAGES)
    assert sum(n.startswith("logs/") for n in seen["names"]) == 1
    assert not any(n.startswith("tables/") for n in seen["names"])
    assert '"run_start"' in seen["log"] and '"run_end"' not in seen["log"]
    assert '"series_done"' in seen["log"] or '"series_failed"' in seen["log"]


def test_a_worker_that_cannot_put_the_objects_fails_the_series_not_the_run(bucket_env):
    """finish_task on a worker: objects that cannot reach the bucket make a convert Failure (no rows to commit)."""
    from deepcac2.pipeline.orchestrate.tasks import Done, Failure, Loaded, Policy, Predicted, finish_task

    ref = SeriesRef("1.2.826.0.1.79.1", params={"write_dicom": True})
    loaded = Loaded({"uid": ref.series_uid}, 0.0)
    predicted = Predicted({"uid": ref.series_uid, "score": 1.0}, 0.0)
    bad = finish_task(ref, loaded, predicted, fake.STAGES, Policy("s3://no-such-bucket-here/run/dicom", retries=0))
    assert isinstance(bad, Failure) and (bad.code, bad.stage) == ("E_OUTPUT_UNWRITABLE", "convert")
    url = _url()
    good = finish_task(ref, loaded, predicted, fake.STAGES, Policy(f"{url}/dicom", retries=0))
    assert isinstance(good, Done)
    assert Remote.parse(url).read_bytes(f"dicom/{ref.series_uid}/seg.dcm") == f"fake SEG of {ref.series_uid}".encode()
