"""The local source over a messy folder, and ``deepcac2 fetch`` (dry run, IDC, local, limits)."""

from __future__ import annotations

import os
import uuid

import pyarrow as pa
import pytest
from pydicom.uid import generate_uid
from sources_dicom import ct_bytes, write_series

from deepcac2.cli import main as cli_main
from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.cohort.select import index_local
from deepcac2.pipeline.cohort.table import cohort_to_refs, frame_to_table, write_cohort
from deepcac2.pipeline.sources import LocalSource, SeriesCache
from deepcac2.pipeline.stage_values import SeriesRef


@pytest.fixture()
def mixed(tmp_path):
    """Series A split over two sub-folders with clashing file names; series B in the same folder tree."""
    root, study = tmp_path / "src", generate_uid()
    a, b = generate_uid(), generate_uid()
    files_a = write_series(root / "p" / "one", a, study, 3, "IMG{i}") + write_series(
        root / "p" / "two", a, study, 2, "IMG{i}"
    )
    files_b = write_series(root / "p" / "one", b, study, 4, "B{i}.dcm")
    (root / "p" / "readme.txt").write_text("x")
    return root, {a: files_a, b: files_b}


def test_local_source_stages_only_the_series_files(mixed, tmp_path):
    root, series = mixed
    table, _ = index_local(root)
    refs = {r.series_uid: r for r in cohort_to_refs(table)}
    with SeriesCache(LocalSource(root), tmp_path / "cache", max_bytes=10**8, ahead=1) as cache:
        for item in cache.stage(list(refs.values())):
            assert item.ok, item.error
            staged = sorted(p.read_bytes() for p in item.folder.iterdir())
            assert staged == sorted(p.read_bytes() for p in series[item.ref.series_uid])
            cache.release(item.ref)
            assert not item.folder.exists()
    # releasing deletes the staged links, never the source files
    assert all(p.exists() for files in series.values() for p in files)


def test_local_source_lists_a_folder_as_the_cohort_does(mixed, tmp_path):
    """A hidden copy of a file is not in the cohort's inventory (loader.read.walk_files): nor is it fetched."""
    root, series = mixed
    uid = sorted(series)[0]
    hidden = root / "p" / ".backup"
    hidden.mkdir()
    hidden.joinpath("IMG0").write_bytes(series[uid][0].read_bytes())
    ref = next(r for r in cohort_to_refs(index_local(root)[0]) if r.series_uid == uid)
    assert ref.instance_count == len(series[uid])
    assert sorted(LocalSource(root).series_files(ref)) == sorted(series[uid])


def test_local_source_refuses_locations_outside_its_root(mixed, tmp_path):
    root, series = mixed
    uid = next(iter(series))
    outside = SeriesRef(series_uid=uid, location=str(tmp_path), instance_count=5)
    with pytest.raises(DeepCACError) as e:
        LocalSource(root / "p").fetch(outside, tmp_path / "dest")
    assert e.value.code is ErrorCode.E_FETCH_FAILED
    with pytest.raises(DeepCACError) as e:
        LocalSource(root).fetch(SeriesRef(series_uid="1.2/../3", location="p"), tmp_path)
    assert e.value.code is ErrorCode.E_UID_INVALID


def test_local_series_with_a_file_gone_is_a_count_mismatch(mixed, tmp_path):
    root, series = mixed
    table, _ = index_local(root)
    uid = next(iter(series))
    os.remove(series[uid][0])
    with SeriesCache(LocalSource(root), tmp_path / "cache", max_bytes=10**8) as cache:
        items = {i.ref.series_uid: i for i in cache.stage(cohort_to_refs(table))}
    assert items[uid].error.code is ErrorCode.E_FETCH_COUNT_MISMATCH


def idc_cohort(s3, path, n_series=2, n=3):
    """Upload series to the bucket and write a cohort file naming them; returns the total bytes."""
    rows, total = [], 0
    for _ in range(n_series):
        crdc, uid, study = str(uuid.uuid4()), generate_uid(), generate_uid()
        sizes = 0
        for i in range(n):
            body = ct_bytes(uid, study, i)
            sizes += len(body)
            s3.put_object(Bucket="idc-open-data", Key=f"{crdc}/{i}.dcm", Body=body)
        total += sizes
        rows.append(
            dict(PatientID="P", StudyInstanceUID=study, SeriesInstanceUID=uid, crdc_series_uuid=crdc,
                 series_aws_url=f"s3://idc-open-data/{crdc}/*", series_size_bytes=sizes, instanceCount=n,
                 Modality="CT", selection_reason="test")
        )  # fmt: skip
    import pandas as pd

    write_cohort(frame_to_table(pd.DataFrame(rows)), path)
    return total, rows


def test_fetch_cli_dry_run_prints_the_size_and_moves_nothing(s3, s3_endpoint, tmp_path, capsys):
    total, _ = idc_cohort(s3, tmp_path / "c.parquet")
    dest = tmp_path / "dest"
    args = ["fetch", "--cohort", str(tmp_path / "c.parquet"), "--dest", str(dest), "--endpoint-url", s3_endpoint]
    assert cli_main([*args, "--dry-run"]) == 0
    assert f"2 series, {total:,} bytes" in capsys.readouterr().out
    assert not dest.exists()
    assert cli_main([*args, "--max-gb", str(total / 2 / 1e9)]) == 3
    assert "E_CACHE_FULL" in capsys.readouterr().err


def test_fetch_cli_downloads_each_series_into_its_folder(s3, s3_endpoint, tmp_path, capsys):
    _, rows = idc_cohort(s3, tmp_path / "c.parquet")
    dest = tmp_path / "dest"
    rc = cli_main(
        ["fetch", "--cohort", str(tmp_path / "c.parquet"), "--dest", str(dest), "--endpoint-url", s3_endpoint]
    )
    assert rc == 0, capsys.readouterr().out
    for row in rows:
        assert len(list((dest / row["SeriesInstanceUID"]).iterdir())) == 3


def test_fetch_cli_reports_series_it_could_not_get(s3, s3_endpoint, tmp_path, capsys):
    _, rows = idc_cohort(s3, tmp_path / "c.parquet", n_series=1)
    s3.delete_object(Bucket="idc-open-data", Key=f"{rows[0]['crdc_series_uuid']}/0.dcm")
    rc = cli_main(
        ["fetch", "--cohort", str(tmp_path / "c.parquet"), "--dest", str(tmp_path / "d"), "--endpoint-url", s3_endpoint]
    )
    assert rc == 1 and "E_FETCH_COUNT_MISMATCH" in capsys.readouterr().out


def test_fetch_cli_local_source(mixed, tmp_path):
    root, series = mixed
    table, _ = index_local(root)
    write_cohort(table, tmp_path / "c.parquet")
    rc = cli_main(
        ["fetch", "--cohort", str(tmp_path / "c.parquet"), "--dest", str(tmp_path / "d"), "--source", "local"]
    )
    assert rc == 0
    for uid, files in series.items():
        assert len(list((tmp_path / "d" / uid).iterdir())) == len(files)
    assert isinstance(table, pa.Table)


class FlakySource(LocalSource):
    """A local source whose first ``failures`` fetches fail as a network error would."""

    def __init__(self, root, failures: int) -> None:
        super().__init__(root)
        self.failures, self.calls = failures, 0

    def fetch(self, ref, dest):
        self.calls += 1
        if self.calls <= self.failures:
            (dest / "partial.dcm").write_bytes(b"half")  # a failed try may leave debris
            raise DeepCACError(ErrorCode.E_FETCH_TRANSIENT, "connection reset by peer")
        super().fetch(ref, dest)


def test_transient_errors_are_retried_until_the_fetch_succeeds(mixed, tmp_path):
    root, series = mixed
    table, _ = index_local(root)
    ref = cohort_to_refs(table)[0]
    sleeps: list[float] = []
    source = FlakySource(root, failures=2)
    from deepcac2.pipeline.sources import RetryPolicy, fetch_verified

    fetch_verified(source, ref, tmp_path / "s", RetryPolicy(attempts=3, base_s=0.25), sleeps.append)
    assert source.calls == 3 and sleeps == [0.25, 0.5]
    assert sorted(p.read_bytes() for p in (tmp_path / "s").iterdir()) == sorted(
        p.read_bytes() for p in series[ref.series_uid]
    )  # the debris of the failed tries is gone


def test_closing_mid_cohort_stops_prefetching_and_deletes_everything(mixed, tmp_path):
    root, _ = mixed
    table, _ = index_local(root)
    refs = cohort_to_refs(table)
    # ahead=0: the prefetcher is waiting for a slot for the second series when we close
    cache = SeriesCache(LocalSource(root), tmp_path / "c", max_bytes=10**8, ahead=0)
    first = next(iter(cache.stage(refs)))
    assert first.ok and first.folder.exists()
    cache.close()
    assert list((tmp_path / "c").iterdir()) == []
    assert cache.used_bytes == 0
    assert cache._thread is not None and not cache._thread.is_alive()
