"""QA's row checks read ``TableRows`` (views over Arrow columns) exactly as they read ``to_pylist`` dicts."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from deepcac2.pipeline.convert.parquet_tables import to_arrow
from deepcac2.pipeline.dev.standin_rows import series_rows
from deepcac2.qa import integrity, plausibility, series_checks, stats
from deepcac2.qa.report import write_report
from deepcac2.qa.review import write_review_sheet
from deepcac2.qa.row_views import TableRows
from deepcac2.schemas.registry import TABLES

CONVENTION = "deepcac"


@pytest.fixture(scope="module")
def table():
    rows = [series_rows(f"1.2.826.0.1.3680043.10.9999.{i}", f"P{i // 3}", i % 3)["cac_series"][0] for i in range(40)]
    rows[3]["qa_flags"] = ["cac_in_aorta"]  # a flagged series, for the report's list
    rows[5]["agatston_deepcac"] = None
    return to_arrow(TABLES["cac_series"], rows, derive=False)


def test_a_row_reads_as_its_dict(table):
    views, dicts = TableRows(table), table.to_pylist()
    assert len(views) == len(dicts) == 40
    assert [dict(v) for v in views] == dicts
    row = views[7]
    assert row["SeriesInstanceUID"] == dicts[7]["SeriesInstanceUID"] and views[-1] == dicts[-1]
    assert "agatston_deepcac" in row and "nope" not in row and row.get("nope", 3) == 3
    with pytest.raises(KeyError):
        row["nope"]
    with pytest.raises(IndexError):
        views[40]
    assert [dict(v) for v in views[2:5]] == dicts[2:5]


def test_the_checks_and_report_are_the_same_on_views(table, tmp_path):
    views, dicts = TableRows(table), table.to_pylist()
    for check in (series_checks.check_categories, series_checks.check_flags):
        assert check(views) == check(dicts)
    assert plausibility.check_plausibility(views, CONVENTION) == plausibility.check_plausibility(dicts, CONVENTION)
    assert stats.distributions(views, CONVENTION) == stats.distributions(dicts, CONVENTION)
    assert stats.outliers(views, CONVENTION) == stats.outliers(dicts, CONVENTION)
    assert stats.drift(views, views, CONVENTION) == stats.drift(dicts, dicts, CONVENTION)
    walked = {f"dicom/{r['seg_sop_instance_uid']}": r["seg_sop_instance_uid"] for r in dicts} | {"dicom/x": "1.2"}
    assert integrity.check_unreferenced(views, walked) == integrity.check_unreferenced(dicts, walked)
    results = series_checks.check_categories(dicts)
    a = write_report(results, views, tmp_path / "a.html", convention=CONVENTION, failures=[])
    b = write_report(results, dicts, tmp_path / "b.html", convention=CONVENTION, failures=[])
    assert a.read_text() == b.read_text()
    write_review_sheet(views, tmp_path / "a.csv", n=5, seed=0, convention=CONVENTION)
    write_review_sheet(dicts, tmp_path / "b.csv", n=5, seed=0, convention=CONVENTION)
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()


def test_a_file_is_read_with_the_columns_asked_for(table, tmp_path):
    path = tmp_path / "cac_series.parquet"
    pq.write_table(table, path)
    rows = TableRows.read(path, columns=("SeriesInstanceUID", "not_a_column"))
    assert rows.names == ("SeriesInstanceUID",) and len(rows) == 40
    assert len(TableRows.read(tmp_path / "absent.parquet")) == 0
    with pytest.raises(FileNotFoundError):
        TableRows.read(tmp_path / "absent.parquet", missing_ok=False)
