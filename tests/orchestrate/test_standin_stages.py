"""The scale bench's stand-ins: rows the writer and QA's table checks accept, objects the release can place."""

from __future__ import annotations

from deepcac2.pipeline.convert.parquet_tables import to_arrow
from deepcac2.pipeline.dev import standin_stages
from deepcac2.pipeline.dev.standin_rows import PER_RUN, series_rows
from deepcac2.pipeline.stage_values import SeriesRef
from deepcac2.qa.series_checks import check_categories
from deepcac2.qa.walk import walk
from deepcac2.release.layout import find_dicom_objects, referenced_sop_uids
from deepcac2.schemas.registry import TABLES


def test_standin_rows_pass_the_writer_and_the_category_check():
    rows = {}
    for i in range(40):
        for table, got in series_rows(f"1.2.3.{i}", f"P{i}", study_year=i % 3).items():
            rows.setdefault(table, []).extend(got)
    for table, got in rows.items():
        to_arrow(TABLES[table], got, derive=False)  # raises on a value outside its column's type, range or set
    assert all(r.passed for r in check_categories(rows["cac_series"]))
    assert {r["conventions_json"] for r in rows["cac_series"]} == {PER_RUN["conventions_json"]}
    counts = [r["lesion_count_deepcac"] for r in rows["cac_series"]]
    assert 0 in counts and max(counts) > 0  # zero for some series, lesions for others


def test_standin_objects_are_the_ones_the_rows_name(tmp_path):
    ref = SeriesRef("1.2.3.7", "1.2.3.7.0", "P7", "nlst", params={"study_year": 1})
    rows = standin_stages.finish(ref, {"uid": ref.series_uid}, None, tmp_path / "dicom", ("deepcac",))
    import pandas as pd

    series = pd.DataFrame(rows["cac_series"])
    objects = find_dicom_objects(tmp_path, keep=referenced_sop_uids(series))
    row = rows["cac_series"][0]
    assert {(o.modality, o.sop_uid, o.series_uid) for o in objects} == {
        ("SEG", row["seg_sop_instance_uid"], row["seg_series_uid"]),
        ("SR", row["sr_sop_instance_uid"], row["sr_series_uid"]),
    }
    found = walk(tmp_path).objects
    assert set(found.segs) == {ref.series_uid} and not found.unreadable
    assert {m["SOPInstanceUID"] for m in rows["measurements"]} <= {row["sr_sop_instance_uid"]}


def test_about_one_in_fifty_series_fails_at_load():
    failed = sum(standin_stages.fails(f"1.2.826.{i}") for i in range(5000))
    assert 50 < failed < 150
