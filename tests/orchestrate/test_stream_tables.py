"""Tables assembled out of core (``parts``) are the bytes of the in-memory writer, however split."""

from __future__ import annotations

import json
import random

import pytest

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.convert import parquet_tables
from deepcac2.pipeline.dev.standin_rows import series_rows
from deepcac2.pipeline.orchestrate import parts
from deepcac2.pipeline.orchestrate.store import Fragment, OutputStore
from deepcac2.schemas.registry import TABLES


def _rows(n: int) -> dict[str, list[dict]]:
    """Stand-in rows of n series, two per patient and round (so is_primary has a choice to make)."""
    out: dict[str, list[dict]] = {}
    for i in range(n):
        for table, rows in series_rows(f"1.2.826.{i}", f"P{i // 4:04d}", study_year=(i // 2) % 3).items():
            out.setdefault(table, []).extend(rows)
    return out


def _commit_all(store: OutputStore, n: int, order: list[int]) -> list[str]:
    uids = [f"1.2.826.{i}" for i in range(n)]
    for i in order:
        rows = series_rows(uids[i], f"P{i // 4:04d}", study_year=(i // 2) % 3)
        store.commit(Fragment(uids[i], "done", None, rows))
    return uids


def test_streamed_tables_equal_the_in_memory_writer_whatever_the_parts(tmp_path, monkeypatch):
    # small row groups and parts, so several of each are crossed and reordered
    monkeypatch.setattr(parquet_tables, "ROW_GROUP_ROWS", 50)
    n = 60
    expected = {}
    for table, rows in _rows(n).items():
        expected[table] = parquet_tables.write_table(TABLES[table], rows, tmp_path / "mem" / f"{table}.parquet")
    order = list(range(n))
    random.Random(3).shuffle(order)
    for part_rows in (37, 1000):
        monkeypatch.setattr(parts, "PART_ROWS", part_rows)
        store = OutputStore(tmp_path / f"run's {part_rows}")  # a quote: paths reach DuckDB as SQL literals
        uids = _commit_all(store, n, order)
        written = store.assemble(uids, ["failures"])
        assert set(written) == {"cac_series", "cac_lesions", "measurements", "failures"}
        for table, path in expected.items():
            assert written[table].read_bytes() == path.read_bytes(), (table, part_rows)
        assert not (store.tables_dir / ".parts").exists()


def test_range_sorts_give_the_bytes_of_one_global_sort(tmp_path, monkeypatch):
    """Sorting a range of the first key at a time (memory flat in the run's size) gives the bytes of one
    sort of every part, and of the in-memory writer, whatever the range size, the parts and the order
    in which series were committed; ranges and row groups (of 50 rows) do not line up."""
    monkeypatch.setattr(parquet_tables, "ROW_GROUP_ROWS", 50)
    n = 60
    expected = {}
    for table, rows in _rows(n).items():
        expected[table] = parquet_tables.write_table(TABLES[table], rows, tmp_path / "mem" / f"{table}.parquet")
    split = parts.split_ranges
    ranges: dict[tuple[int, int], dict[str, int]] = {}

    for range_bytes, part_rows, seed in ((10**12, 1000, 1), (1, 37, 2), (30_000, 29, 3), (200_000, 1000, 4)):
        key = (range_bytes, part_rows)
        ranges[key] = {}

        def counted(schema, files, bounds, folder, key=key):
            out = split(schema, files, bounds, folder)
            ranges[key][schema.name] = len(out)
            return out

        monkeypatch.setattr(parts, "split_ranges", counted)
        monkeypatch.setattr(parts, "RANGE_BYTES", range_bytes)
        monkeypatch.setattr(parts, "PART_ROWS", part_rows)
        order = list(range(n))
        random.Random(seed).shuffle(order)
        store = OutputStore(tmp_path / f"run {range_bytes} {part_rows}")
        written = store.assemble(_commit_all(store, n, order), ["failures"])
        for table, path in expected.items():
            assert written[table].read_bytes() == path.read_bytes(), (table, range_bytes, part_rows)
    assert ranges[(10**12, 1000)] == {}  # one global sort: the assembly as it was before ranges
    with_lesions = len({r["SeriesInstanceUID"] for r in _rows(n)["cac_lesions"]})
    assert ranges[(1, 37)] == {"cac_series": n, "cac_lesions": with_lesions, "measurements": with_lesions}
    assert 2 < ranges[(30_000, 29)]["cac_series"] < n and 2 < ranges[(30_000, 29)]["measurements"] < with_lesions
    assert 1 < ranges[(200_000, 1000)]["measurements"] < ranges[(30_000, 29)]["measurements"]


def test_key_ranges_never_split_one_first_key(tmp_path, monkeypatch):
    """Rows with one first key (all the lesions of a series) share a range, so a duplicate key is never
    split across two ranges and still refused."""
    monkeypatch.setattr(parts, "RANGE_BYTES", 1)
    monkeypatch.setattr(parts, "PART_ROWS", 1)
    store = OutputStore(tmp_path)
    rows = series_rows("1.2.3", "P1")
    rows["cac_lesions"] = rows["cac_lesions"][:1] * 2 if rows["cac_lesions"] else []
    store.commit(Fragment("1.2.3", "done", None, rows))
    store.commit(Fragment("1.2.4", "done", None, series_rows("1.2.4", "P1")))
    store.commit(Fragment("1.2.5", "done", None, {"cac_series": rows["cac_series"]}))  # a duplicate series row
    with pytest.raises(DeepCACError) as err:
        store.assemble(["1.2.3", "1.2.4", "1.2.5"])
    assert err.value.code is ErrorCode.E_TABLE_WRITE and "duplicate key" in err.value.message


def test_duplicate_key_across_parts_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(parts, "PART_ROWS", 1)
    store = OutputStore(tmp_path)
    rows = series_rows("1.2.3", "P1")
    store.commit(Fragment("1.2.3", "done", None, rows))
    store.commit(Fragment("1.2.4", "done", None, {"cac_series": rows["cac_series"]}))  # the same key again
    with pytest.raises(DeepCACError) as err:
        store.assemble(["1.2.3", "1.2.4"])
    assert err.value.code is ErrorCode.E_TABLE_WRITE and "duplicate key" in err.value.message


def test_resume_reads_status_lines_only(tmp_path):
    store = OutputStore(tmp_path)
    store.commit(Fragment("1.2.3", "done", None, series_rows("1.2.3", "P1"), ("review_picture_failed",), "abc"))
    path = store.fragment_path("1.2.3")
    whole = json.loads(path.read_bytes())  # still one JSON document
    head, rows = path.read_bytes().split(b"\n")
    path.write_bytes(head + b"\n" + b"{not json: the rows are never parsed by committed()")
    got = store.committed()["1.2.3"]
    assert (got.status, got.rows, got.incomplete, got.inputs) == ("done", {}, ("review_picture_failed",), "abc")
    assert whole["rows"]["cac_series"][0]["SeriesInstanceUID"] == "1.2.3" and rows.startswith(b'"rows": ')


def test_fragments_of_the_one_line_format_are_still_read(tmp_path):
    store = OutputStore(tmp_path)
    doc = {"series_uid": "1.2.3", "status": "failed", "code": "E_NO_IMAGES", "rows": {"failures": []}}
    store.fragment_path("1.2.3").parent.mkdir(parents=True)
    store.fragment_path("1.2.3").write_text(json.dumps(doc, sort_keys=True))
    assert store.committed()["1.2.3"].code == "E_NO_IMAGES"
    (only,) = store.fragments()
    assert only.rows == {"failures": []}


def test_a_failed_sort_is_a_coded_failure_and_keeps_the_committed_series(tmp_path, monkeypatch):
    """DuckDB running out of memory (or disk) while it sorts the parts ends as E_TABLE_WRITE, not a raw
    DuckDB exception, and the committed series stay for the next assembly."""
    monkeypatch.setattr(parts, "DUCKDB_MEMORY", "1KB")  # far below what a sort of any table needs
    store = OutputStore(tmp_path)
    uids = _commit_all(store, 40, list(range(40)))
    with pytest.raises(DeepCACError) as err:
        store.assemble(uids)
    assert err.value.code is ErrorCode.E_TABLE_WRITE and "sorting its parts failed" in err.value.message
    assert set(store.committed()) == set(uids)


def test_each_part_is_split_into_files_closed_at_once(tmp_path, monkeypatch):
    """A range's rows from each part go to a file of their own, written and closed at once: a writer held
    open per range kept the footer of every row group it got (~1 KB per column chunk), O(parts x ranges)."""
    import pyarrow.parquet as pq

    monkeypatch.setattr(parts, "RANGE_BYTES", 30_000)
    monkeypatch.setattr(parts, "PART_ROWS", 29)
    split = parts.split_ranges
    seen: dict[str, list[list[tuple[str, int]]]] = {}

    def inspect(schema, files, bounds, folder):
        out = split(schema, files, bounds, folder)
        seen[schema.name] = [[(p.name, pq.ParquetFile(p).metadata.num_row_groups) for p in group] for group in out]
        assert sum(pq.ParquetFile(p).metadata.num_rows for group in out for p in group) == sum(
            pq.ParquetFile(f).metadata.num_rows for f in files
        )
        return out

    monkeypatch.setattr(parts, "split_ranges", inspect)
    store = OutputStore(tmp_path)
    store.assemble(_commit_all(store, 40, list(range(40))), ["failures"])
    groups = seen["measurements"]
    assert len(groups) > 2 and max(len(g) for g in groups) > 1  # several ranges, several parts in one
    assert all(n == 1 for group in groups for _, n in group)  # one row group per file: written once
    assert all(len({name for name, _ in group}) == len(group) for group in groups)  # a file per part
