"""Fragment packs of a bucket run (``packs.py``): written every N commits and when the run stops, read on resume.

Each moment is reached with a hook (the N-th commit, right after a pack's PUT), never a
sleep. A client "killed" there is a BaseException raised from the hook with the mirror's
``finish`` replaced by what a kill leaves: nothing put, the lock still in the bucket.
"""

from __future__ import annotations

import io
import tarfile
import uuid

import pyarrow as pa
import pytest
from distributed import LocalCluster

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.location import LOCK_FILE, NOT_READ_AFTER_RUN, Remote, staged
from deepcac2.pipeline.dev import fake_stages as fake
from deepcac2.pipeline.orchestrate import hooks, packs
from deepcac2.pipeline.orchestrate.bucket import BucketMirror
from deepcac2.pipeline.orchestrate.cluster import ClusterSpec
from deepcac2.pipeline.orchestrate.run import RunConfig, run_series
from deepcac2.pipeline.orchestrate.store import OutputStore
from deepcac2.pipeline.stage_values import SeriesRef

from .helpers import bucket_fragments

BUCKET = "deepcac2-packs"
TABLES = ("fake_series", "fake_lesions", "failures")


class Killed(BaseException):
    """The client process dies here (not an error the run could handle)."""


@pytest.fixture(scope="module")
def scheduler(aws_env, s3):
    s3.create_bucket(Bucket=BUCKET)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


@pytest.fixture
def every_two(monkeypatch):
    monkeypatch.setattr(packs, "PACK_EVERY", 2)


def _url() -> str:
    return f"s3://{BUCKET}/runs/{uuid.uuid4().hex[:8]}"


def _refs(n: int) -> list[SeriesRef]:
    params = [{"write_dicom": True}, {"fail": "E_NO_IMAGES"}, {"write_dicom": True, "finish_fail": "E_SR_WRITE"}]
    return [SeriesRef(f"1.2.826.0.1.91.{i}", patient_id=f"P{i}", params=params[i % 3]) for i in range(n)]


def _config(scheduler: str, **kw) -> RunConfig:
    return RunConfig(cluster=ClusterSpec(scheduler=scheduler), backoff_s=0.0, progress=False, max_in_flight=2, **kw)


def _names(url: str, rel: str) -> list[str]:
    return [n.rsplit("/", 1)[1] for n in Remote.parse(url).files(rel)]


def _same_tables(url: str, local: dict) -> None:
    bucket = Remote.parse(url)
    for name in TABLES:
        assert bucket.read_bytes(f"tables/{name}.parquet") == local[name].read_bytes(), name


def _killed(monkeypatch) -> None:
    """A client killed: its mirror is lost, nothing more is put, the lock stays (removed below as a user would)."""
    monkeypatch.setattr(BucketMirror, "finish", lambda self, *, put: self.close())


def test_packs_are_written_every_n_commits_and_when_the_run_stops(scheduler, every_two, tmp_path):
    url = _url()
    seen: dict[int, tuple[list[str], int]] = {}

    def look(count: int) -> None:
        loose, _ = bucket_fragments(url)
        seen[count] = (_names(url, "state/packs"), len(loose))

    with hooks.installed("committed", look):
        run = run_series(_refs(5), url, _config(scheduler), stages=fake.STAGES)
    assert run.complete
    one, two = "00000001.tar.zst", "00000002.tar.zst"
    assert seen == {1: ([], 1), 2: ([one], 0), 3: ([one], 1), 4: ([one, two], 0), 5: ([one, two], 1)}
    assert _names(url, "state/packs") == [one, two, "00000003.tar.zst"]  # the last, lone one when it stopped
    loose, packed = bucket_fragments(url)
    assert not loose and len(packed) == 5
    local = run_series(_refs(5), tmp_path / "local", _config(scheduler), stages=fake.STAGES)
    _same_tables(url, local.tables)
    # the fragments are packed verbatim: the bytes a local run commits
    for name, data in packed.items():
        assert (tmp_path / "local" / "state" / "series" / name).read_bytes() == data
    # qa and release build read the tables and objects, never the fragments, loose or packed
    copy = staged(url, tmp_path / "copy", ErrorCode.E_QA_INPUT, skip=NOT_READ_AFTER_RUN)
    got = {p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file()}
    assert "tables/fake_series.parquet" in got and not any(n.startswith(("state/series", "state/packs")) for n in got)


@pytest.mark.parametrize("moment", ["after a pack's PUT, before its deletes", "with packs and loose fragments"])
def test_a_client_killed_mid_run_resumes_to_the_bytes_of_an_uninterrupted_local_run(
    scheduler, every_two, monkeypatch, tmp_path, moment
):
    url = _url()
    refs = _refs(7)
    point = "pack_put" if moment.startswith("after") else "committed"

    def kill(**context) -> None:
        if context.get("name", "").endswith("00000002.tar.zst") or context.get("count") == 5:
            raise Killed(moment)

    with monkeypatch.context() as patched, hooks.installed(point, kill), pytest.raises(Killed):
        _killed(patched)
        run_series(refs, url, _config(scheduler), stages=fake.STAGES)
    loose, packed = bucket_fragments(url)
    assert _names(url, "state/packs") == ["00000001.tar.zst", "00000002.tar.zst"]
    if point == "pack_put":  # pack 2 is in and its two fragments are still loose: the same bytes twice
        assert len(packed) == 4 and len(loose) == 2 and all(packed[n] == data for n, data in loose.items())
    else:
        assert len(packed) == 4 and len(loose) == 1 and not set(loose) & set(packed)
    Remote.parse(url).delete(LOCK_FILE)  # the lock of a client that is gone (another host's: a person removes it)

    again = run_series(refs, url, _config(scheduler, resume=True), stages=fake.STAGES)
    held = 4 if point == "pack_put" else 5  # pack 2 is put at the 4th commit
    assert again.complete and (again.skipped, again.done + again.failed) == (held, 7 - held)
    whole = run_series(refs, tmp_path / "whole", _config(scheduler), stages=fake.STAGES)
    _same_tables(url, whole.tables)
    loose, packed = bucket_fragments(url)
    assert not loose and len(packed) == 7  # the duplicates were packed again and deleted


def test_resume_keeps_the_later_copy_of_a_series(scheduler, every_two, tmp_path):
    """One series in pack 1, again in a later pack, again loose: the loose copy is the mirror's; without it,
    the later pack's. (Copies differ here only to tell them apart: a run's copies differ when it retried.)"""
    url = _url()
    run_series(_refs(4), url, _config(scheduler), stages=fake.STAGES)
    remote = Remote.parse(url)
    _, packed = bucket_fragments(url)
    name = sorted(packed)[0]
    later, loose = b"{  " + packed[name][1:], b"{ " + packed[name][1:]  # the same JSON, other bytes
    (tmp_path / name).parent.mkdir(parents=True)
    (tmp_path / name).write_bytes(later)
    packs.write_pack(tmp_path, [name], tmp_path / "later.tar.zst")
    remote.put_file(tmp_path / "later.tar.zst", "state/packs/00000009.tar.zst")
    with OutputStore(url) as store:
        assert (store.series_dir / name).read_bytes() == later
    remote.write_bytes(f"state/series/{name}", loose)
    with OutputStore(url) as store:
        assert (store.series_dir / name).read_bytes() == loose
        assert set(store.committed()) == {r.series_uid for r in _refs(4)}


def _pack(members: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as out:
        out.write(raw.getvalue())
    return sink.getvalue().to_pybytes()


def _damage(good: bytes, how: str) -> bytes:
    tarred = pa.CompressedInputStream(pa.BufferReader(good), "zstd").read()
    with tarfile.open(fileobj=io.BytesIO(tarred), mode="r:") as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar}
    first = next(n for n in members if n != packs.INDEX)
    if how == "cut short":
        return good[: len(good) // 2]
    if how == "a fragment altered":
        return _pack({**members, first: members[first].replace(b"series_uid", b"series_uiD", 1)})
    if how == "no index":
        return _pack({n: d for n, d in members.items() if n != packs.INDEX})
    if how == "a fragment missing":
        return _pack({n: d for n, d in members.items() if n != first})
    if how == "a foreign member":
        return _pack({"../../escape.json": b"{}", **members})
    return b"not a pack at all"


@pytest.mark.parametrize(
    "how", ["cut short", "a fragment altered", "no index", "a fragment missing", "a foreign member", "garbage"]
)
def test_a_damaged_pack_is_a_coded_error_not_a_silent_loss(scheduler, every_two, how):
    url = _url()
    refs = _refs(4)
    run_series(refs, url, _config(scheduler), stages=fake.STAGES)
    remote = Remote.parse(url)
    pack = "state/packs/00000001.tar.zst"
    remote.write_bytes(pack, _damage(remote.read_bytes(pack), how))
    before = remote.files()
    with pytest.raises(DeepCACError) as err:
        run_series(refs, url, _config(scheduler, resume=True), stages=fake.STAGES)
    assert err.value.code is ErrorCode.E_RUN_STATE_DAMAGED, err.value.message
    assert f"{url}/{pack}" in err.value.message
    assert remote.files() == before  # nothing deleted or added; the lock given back


def test_a_fragment_whose_put_failed_goes_into_the_pack_when_the_run_stops(scheduler, monkeypatch):
    from deepcac2.pipeline.orchestrate.store import Fragment

    url = _url()
    real = Remote.put_file

    def flaky(self, local, rel):
        if rel.startswith("state/series/") and "1.2.3.b" in local.read_text():
            raise DeepCACError(ErrorCode.E_OUTPUT_UNWRITABLE, "stands for a network error")
        return real(self, local, rel)

    with OutputStore(url) as store:
        store.commit(Fragment("1.2.3.a", "done", None, {"t": [{"x": 1}]}))
        monkeypatch.setattr(Remote, "put_file", flaky)
        with pytest.raises(DeepCACError, match="network error"):
            store.commit(Fragment("1.2.3.b", "done", None, {"t": [{"x": 2}]}))
        monkeypatch.setattr(Remote, "put_file", real)
        assert len(Remote.parse(url).files("state/series")) == 1
    loose, packed = bucket_fragments(url)
    assert not loose and sorted(b'"1.2.3.b"' in data for data in packed.values()) == [False, True]
