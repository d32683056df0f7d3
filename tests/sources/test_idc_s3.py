"""The idc source against a real S3-compatible server (moto) with the real s5cmd binary."""

from __future__ import annotations

import socket
import threading
import uuid

import pytest
from pydicom.uid import generate_uid
from sources_dicom import ct_bytes

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.sources import IDCSource, RetryPolicy, SeriesCache, fetch_verified
from deepcac2.pipeline.stage_values import SeriesRef


def upload_series(s3, n: int) -> tuple[SeriesRef, dict[str, bytes]]:
    """Put ``n`` instances under ``<crdc_series_uuid>/<instance uuid>.dcm``; return the ref and the objects."""
    crdc, series, study = str(uuid.uuid4()), generate_uid(), generate_uid()
    objects = {f"{uuid.uuid4()}.dcm": ct_bytes(series, study, i) for i in range(n)}
    for name, body in objects.items():
        s3.put_object(Bucket="idc-open-data", Key=f"{crdc}/{name}", Body=body)
    ref = SeriesRef(
        series_uid=series,
        study_uid=study,
        crdc_series_uuid=crdc,
        location=f"s3://idc-open-data/{crdc}/*",
        instance_count=n,
        size_bytes=sum(len(b) for b in objects.values()),
    )
    return ref, objects


def test_fetch_brings_every_object_byte_for_byte(s3, s3_endpoint, tmp_path):
    ref, objects = upload_series(s3, 4)
    size = fetch_verified(IDCSource(endpoint_url=s3_endpoint), ref, tmp_path / "s")
    got = {p.name: p.read_bytes() for p in (tmp_path / "s").iterdir()}
    assert got == objects
    assert size == sum(len(b) for b in objects.values())


def test_missing_object_is_a_count_mismatch(s3, s3_endpoint, tmp_path):
    ref, objects = upload_series(s3, 3)
    s3.delete_object(Bucket="idc-open-data", Key=f"{ref.crdc_series_uuid}/{next(iter(objects))}")
    with pytest.raises(DeepCACError) as e:
        fetch_verified(IDCSource(endpoint_url=s3_endpoint), ref, tmp_path / "s")
    assert e.value.code is ErrorCode.E_FETCH_COUNT_MISMATCH
    assert e.value.detail == {"fetched": 2, "expected": 3}
    assert not (tmp_path / "s").exists()  # nothing half-done is left behind


def test_missing_series_fails_at_once_without_retries(s3, s3_endpoint, tmp_path):
    ref = SeriesRef(series_uid="1.2.3", crdc_series_uuid=str(uuid.uuid4()), instance_count=1, size_bytes=10)
    sleeps: list[float] = []
    with pytest.raises(DeepCACError) as e:
        fetch_verified(IDCSource(endpoint_url=s3_endpoint), ref, tmp_path / "s", RetryPolicy(3, 0.5), sleeps.append)
    assert e.value.code is ErrorCode.E_FETCH_FAILED and "no object found" in e.value.message
    assert sleeps == []


def test_unreachable_endpoint_retries_with_backoff_then_fails(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ref = SeriesRef(series_uid="1.2.3", crdc_series_uuid=str(uuid.uuid4()), instance_count=1, size_bytes=10)
    sleeps: list[float] = []
    source = IDCSource(endpoint_url=f"http://127.0.0.1:{port}")
    with pytest.raises(DeepCACError) as e:
        fetch_verified(source, ref, tmp_path / "s", RetryPolicy(attempts=4, base_s=0.5, max_s=1.5), sleeps.append)
    assert e.value.code is ErrorCode.E_FETCH_FAILED
    assert "4 tries" in e.value.message and "connection refused" in e.value.message
    assert e.value.detail["last_code"] == "E_FETCH_TRANSIENT"
    assert sleeps == [0.5, 1.0, 1.5]  # doubling, capped at max_s


def test_size_from_s5cmd_du_when_the_cohort_has_none(s3, s3_endpoint):
    ref, objects = upload_series(s3, 2)
    unsized = SeriesRef(series_uid=ref.series_uid, crdc_series_uuid=ref.crdc_series_uuid)
    assert IDCSource(endpoint_url=s3_endpoint).size(unsized) == sum(len(b) for b in objects.values())


@pytest.mark.parametrize("bad", ["../etc", "ABCDEF00-0000-4000-8000-000000000000", "x" * 36, None, "1.2.3"])
def test_unsafe_crdc_uuid_is_rejected_before_s5cmd_runs(bad, tmp_path):
    ref = SeriesRef(series_uid="1.2.3", crdc_series_uuid=bad)
    with pytest.raises(DeepCACError) as e:
        IDCSource(endpoint_url="http://127.0.0.1:9", s5cmd="/nonexistent/s5cmd").fetch(ref, tmp_path)
    assert e.value.code is ErrorCode.E_UID_INVALID


def test_bad_endpoint_or_bucket_is_refused():
    for kwargs in ({"endpoint_url": "file:///etc"}, {"endpoint_url": "http://x; rm -rf /"}, {"bucket": "../b"}):
        with pytest.raises(DeepCACError) as e:
            IDCSource(s5cmd="/nonexistent/s5cmd", **kwargs)
        assert e.value.code is ErrorCode.E_FETCH_FAILED


def test_cache_prefetches_within_its_byte_cap_and_deletes_on_release(s3, s3_endpoint, tmp_path):
    refs = [upload_series(s3, 3)[0] for _ in range(5)]
    biggest = max(r.size_bytes for r in refs)
    cap = 2 * biggest + biggest // 2  # room for two series, never three
    seen_used: list[int] = []
    cache = SeriesCache(IDCSource(endpoint_url=s3_endpoint), tmp_path / "cache", max_bytes=cap, ahead=4)
    with cache:
        delivered = []
        for item in cache.stage(refs):
            assert item.ok, item.error
            assert sorted(p.name for p in item.folder.iterdir()) and len(list(item.folder.iterdir())) == 3
            threading.Event().wait(0.3)  # "processing": gives the prefetcher time to fill the cache
            seen_used.append(cache.used_bytes)
            delivered.append(item.ref.series_uid)
            cache.release(item.ref)
            assert not item.folder.exists()
    assert delivered == [r.series_uid for r in refs]
    assert cache.peak_bytes <= cap
    assert max(seen_used) > biggest  # it did fetch ahead
    assert cache.used_bytes == 0 and list((tmp_path / "cache").iterdir()) == []


def test_cache_reports_a_series_larger_than_the_cap(s3, s3_endpoint, tmp_path):
    small, _ = upload_series(s3, 1)
    big, _ = upload_series(s3, 3)
    with SeriesCache(IDCSource(endpoint_url=s3_endpoint), tmp_path / "c", max_bytes=small.size_bytes, ahead=1) as cache:
        items = list(cache.stage([big, small]))
        for item in items:
            if item.ok:
                cache.release(item.ref)
    assert items[0].error.code is ErrorCode.E_CACHE_FULL
    assert items[1].ok


def test_cache_with_no_room_ahead_holds_one_series(s3, s3_endpoint, tmp_path):
    refs = [upload_series(s3, 2)[0] for _ in range(3)]
    with SeriesCache(IDCSource(endpoint_url=s3_endpoint), tmp_path / "c", max_bytes=10**9, ahead=0) as cache:
        for item in cache.stage(refs):
            threading.Event().wait(0.2)
            assert len(list((tmp_path / "c").iterdir())) == 1
            cache.release(item.ref)


def test_get_on_demand_from_two_threads_stays_within_the_cap(s3, s3_endpoint, tmp_path):
    refs = [upload_series(s3, 3)[0] for _ in range(4)]
    cap = max(r.size_bytes for r in refs) * 3 // 2  # one series at a time
    cache = SeriesCache(IDCSource(endpoint_url=s3_endpoint), tmp_path / "c", max_bytes=cap, ahead=0)
    got: dict[str, int] = {}
    errors: list[BaseException] = []

    def work(mine):
        try:
            for ref in mine:
                folder = cache.get(ref)
                got[ref.series_uid] = len(list(folder.iterdir()))
                threading.Event().wait(0.1)
                cache.release(ref)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(refs[i::2],)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    cache.close()
    assert errors == []
    assert got == {r.series_uid: 3 for r in refs}
    assert cache.peak_bytes <= cap and cache.used_bytes == 0


def test_get_returns_a_held_series_without_fetching_again(s3, s3_endpoint, tmp_path):
    ref, objects = upload_series(s3, 2)
    with SeriesCache(IDCSource(endpoint_url=s3_endpoint), tmp_path / "c", max_bytes=10**8) as cache:
        first = cache.get(ref)
        for name in objects:  # the bucket loses the series: a second fetch would fail
            s3.delete_object(Bucket="idc-open-data", Key=f"{ref.crdc_series_uuid}/{name}")
        assert cache.get(ref) == first and len(list(first.iterdir())) == 2
        cache.release(ref.series_uid)  # by UID works too
        assert not first.exists() and cache.used_bytes == 0
        with pytest.raises(DeepCACError) as e:
            cache.get(ref)
        assert e.value.code is ErrorCode.E_FETCH_FAILED


def test_get_gives_up_when_no_room_frees(s3, s3_endpoint, tmp_path):
    a, _ = upload_series(s3, 2)
    b, _ = upload_series(s3, 2)
    cap = a.size_bytes + b.size_bytes - 1
    with SeriesCache(IDCSource(endpoint_url=s3_endpoint), tmp_path / "c", max_bytes=cap, wait_s=1.0) as cache:
        cache.get(a)
        with pytest.raises(DeepCACError) as e:
            cache.get(b)
        assert e.value.code is ErrorCode.E_CACHE_FULL
        assert not cache.folder(b).exists()


def test_bucket_comes_from_the_row_unless_configured():
    uid = str(uuid.uuid4())
    ref = SeriesRef(series_uid="1.2", crdc_series_uuid=uid, location=f"s3://idc-open-data-cr/{uid}/*")
    assert IDCSource(s5cmd="/x").url(ref) == f"s3://idc-open-data-cr/{uid}/*"
    assert IDCSource(s5cmd="/x", bucket="mirror").url(ref) == f"s3://mirror/{uid}/*"
    assert IDCSource(s5cmd="/x").url(SeriesRef(series_uid="1.2", crdc_series_uuid=uid)) == f"s3://idc-open-data/{uid}/*"
    bad = SeriesRef(series_uid="1.2", crdc_series_uuid=uid, location=f"s3://Bad_Bucket/{uid}/*")
    with pytest.raises(DeepCACError):
        IDCSource(s5cmd="/x").url(bad)
