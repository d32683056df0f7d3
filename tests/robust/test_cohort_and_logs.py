"""Issue 25, item 10: cohorts written by pandas or DuckDB are read; failure messages are one line;
a run log cut by a full disk still reads with ``pandas.read_json(lines=True)``."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from deepcac2.errors import DeepCACError, ErrorCode, one_line
from deepcac2.pipeline.cohort.table import frame_to_table, read_cohort, write_cohort
from deepcac2.pipeline.orchestrate import log as runlog
from deepcac2.pipeline.orchestrate.records import failure_row
from deepcac2.pipeline.orchestrate.tasks import Failure


@pytest.fixture
def cohort(tmp_path: Path) -> Path:
    rows = [
        dict(PatientID=f"P{i}", StudyInstanceUID=f"1.2.{i}", SeriesInstanceUID=f"1.2.{i}.1", location=f"/data/{i}",
             instanceCount=100 + i, series_size_bytes=None if i else 5, Modality="CT", selection_reason="test",
             slice_thickness_mm=2.5)
        for i in range(4)
    ]  # fmt: skip
    return write_cohort(frame_to_table(pd.DataFrame(rows)), tmp_path / "cohort.parquet")


def _same(path: Path, original: Path) -> None:
    got, want = read_cohort(path), read_cohort(original)
    assert [(f.name, f.type) for f in got.schema] == [(f.name, f.type) for f in want.schema]
    assert got.to_pylist() == want.to_pylist()


def test_a_cohort_filtered_and_saved_by_pandas_is_read(cohort: Path, tmp_path: Path) -> None:
    df = pd.read_parquet(cohort)
    out = tmp_path / "pandas.parquet"
    df[df["PatientID"] != "P9"].to_parquet(out, index=False)  # pandas 3: text as large_string, ints with nulls float
    types = {f.name: f.type for f in pq.read_schema(out)}
    assert types["PatientID"] in (pa.large_string(), pa.string())
    _same(out, cohort)


@pytest.mark.parametrize("encoding", ["large_string", "dictionary", "string_view"])
def test_text_columns_in_any_arrow_encoding_are_read(cohort: Path, tmp_path: Path, encoding: str) -> None:
    table = pq.read_table(cohort)
    for i, f in enumerate(table.schema):
        if pa.types.is_string(f.type):
            col = table.column(i)
            col = pc.dictionary_encode(col) if encoding == "dictionary" else col.cast(getattr(pa, encoding)())
            table = table.set_column(i, pa.field(f.name, col.type), col)
    out = tmp_path / f"{encoding}.parquet"
    pq.write_table(table, out)
    _same(out, cohort)


def test_a_cohort_filtered_by_duckdb_is_read(cohort: Path, tmp_path: Path) -> None:
    out = tmp_path / "duck.parquet"
    duckdb.sql(f"COPY (SELECT * FROM '{cohort}' WHERE PatientID <> 'P9') TO '{out}' (FORMAT parquet)")
    _same(out, cohort)


def test_a_different_kind_of_value_is_still_refused(cohort: Path, tmp_path: Path) -> None:
    df = pd.read_parquet(cohort)
    df["instanceCount"] = df["instanceCount"].astype(str)  # text where a count belongs
    df.to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(DeepCACError) as exc:
        read_cohort(tmp_path / "bad.parquet")
    assert exc.value.code is ErrorCode.E_COHORT_INVALID and "instanceCount" in exc.value.message


TRACEBACK = """Traceback (most recent call last):
  File "/x/process.py", line 12, in run
    score(ct)
ValueError: operands could not be broadcast together"""


def test_a_failure_message_is_one_line_and_the_traceback_goes_to_detail() -> None:
    row = failure_row(Failure("1.2.3", "score", ErrorCode.E_INTERNAL.value, TRACEBACK))
    assert row["message"] == "ValueError: operands could not be broadcast together"
    assert json.loads(row["detail_json"])["message_full"] == TRACEBACK
    assert "\n" not in one_line("a\nb  c\r\nd" + "x" * 900) and len(one_line("x" * 900)) == 500


def test_a_log_line_cut_by_a_full_disk_is_taken_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "run.jsonl"
    with runlog.RunLog(path, "r1") as log:
        log.write("run_start", total=2)
        real_write = os.write

        def half(fd: int, data: bytes) -> int:  # the disk fills half way through the line
            real_write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(runlog.os, "write", half)
        with pytest.raises(OSError):
            log.write("series_done", series="1.2.3", detail="x" * 200)
        monkeypatch.setattr(runlog.os, "write", real_write)
        log.write("run_end")
    events = pd.read_json(path, lines=True)
    assert list(events["event"]) == ["run_start", "run_end"]


def test_the_reader_drops_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text('{"event": "run_start"}\n{"event": "series_do')
    assert [e["event"] for e in runlog.read_log(path)] == ["run_start"]
    path.write_text('{"event": "run_start"}\n{"event": "seri\n{"event": "run_end"}\n')
    with pytest.raises(ValueError):
        runlog.read_log(path)  # damage inside the file is not a torn end: it is reported
