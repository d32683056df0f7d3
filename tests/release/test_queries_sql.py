"""``queries.sql`` ships with every release and each of its queries answers right on a built release; the
data dictionary is self-contained (issue #22)."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from deepcac2.pipeline import risk_categories
from deepcac2.pipeline.cohort.table import exclusions_path
from deepcac2.release.build import build_release
from deepcac2.release.query import open_release
from tests.release.runfactory import conform, make_run, series_rows, uid, write_checks
from tests.release.test_left_out import _cohort, _exclusions

QUERIES = Path(__file__).resolve().parents[2] / "release" / "queries.sql"
SCORES = [0.0, 50.0, 500.0, 0.0, 0.0, 150.0, 20.0, 20.0, 20.0]


def queries(text: str) -> dict[str, str]:
    """``-- name: X`` blocks of the file."""
    blocks = re.split(r"^-- name: (\w+)\s*$", text, flags=re.MULTILINE)
    return {name: body.strip() for name, body in zip(blocks[1::2], blocks[2::2], strict=True)}


def _measurement(row: dict, quantity: str, value: float) -> dict:
    code = {"CodeValue": quantity, "CodingSchemeDesignator": "DCM", "CodeMeaning": quantity}
    return {
        "SOPInstanceUID": uid("sop", row["SeriesInstanceUID"], "SR"),
        "SeriesInstanceUID": uid("out", row["SeriesInstanceUID"], "SR"),  # the SR's series, as in IDC
        "measurementGroup_number": 0,
        "segmentationInstanceUID": uid("sop", row["SeriesInstanceUID"], "SEG"),
        "segmentationSegmentNumber": 1,
        "sourceSegmentedSeriesUID": row["SeriesInstanceUID"],
        "trackingIdentifier": "Coronary calcium [deepcac]",
        "trackingUniqueIdentifier": uid("track", row["SeriesInstanceUID"]),
        "Quantity": code,
        "Value": value,
        "Units": {"CodeValue": "1", "CodingSchemeDesignator": "UCUM", "CodeMeaning": "no units"},
        "convention": "deepcac",
    }


@pytest.fixture(scope="module")
def rel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("queries")
    rows = series_rows(3, list(SCORES))
    for r in rows:
        r["risk_deepcac_deepcac"] = risk_categories.category("deepcac", r["agatston_deepcac"])
    second = dict(rows[0], SeriesInstanceUID="1.8.1", agatston_deepcac=900.0, kernel="LUNG")
    rows[0]["kernel"] = "B30f"
    run = make_run(tmp / "RUN", rows=[*rows, second], images=False)
    measured = [_measurement(r, "112058", r["agatston_deepcac"]) for r in [*rows, second]]
    pq.write_table(conform(measured, "measurements"), run / "tables" / "measurements.parquet")
    pq.write_table(_cohort([*rows, second], {"policy": "all", "collection": "nlst"}), run / "cohort.parquet")
    pq.write_table(_exclusions(), exclusions_path(run / "cohort.parquet"))
    write_checks(run, blocking_failure=False)  # QA again: it is bound to the tables it checked
    return build_release(run, "1.0.0", tmp / "REL", dashboard_patients=2)


def test_the_release_ships_the_queries(rel: Path) -> None:
    assert (rel / "queries.sql").read_text() == QUERIES.read_text()
    assert set(queries(QUERIES.read_text())) >= {
        "category_at_t0", "progression_t0_t2", "exclusions_by_rule", "measurements_with_series",
    }  # fmt: skip


def test_every_query_answers_right(rel: Path) -> None:
    q = queries((rel / "queries.sql").read_text())
    with open_release(rel, idc_index=False) as r:
        t0 = r.sql(q["category_at_t0"]).df()
        # one row per participant, its primary series (not the 900 second reconstruction)
        assert t0["PatientID"].tolist() == ["100000", "100001", "100002"]
        assert t0["agatston_deepcac"].tolist() == [0.0, 0.0, 20.0]
        assert t0["category"].tolist() == ["very low", "very low", "low"]
        counts = dict(r.sql(q["categories_at_t0"]).fetchall())
        assert counts == {"very low": 2, "low": 1}
        progression = r.sql(q["progression_t0_t2"]).df().set_index("PatientID")["change"].to_dict()
        assert progression == {"100000": 500.0, "100001": 150.0, "100002": 0.0}
        excluded = {row[0]: row[2:] for row in r.sql(q["exclusions_by_rule"]).fetchall()}
        assert excluded == {"not_localizer": (2, 1), "min_instances_50": (1, 1)}
        assert dict(r.sql(q["failures_by_code"]).fetchall()) == {"E_GEOMETRY_GAP": 1}
        joined = r.sql(q["measurements_with_series"]).df()
        assert len(joined) == 9  # the primary series' measurements; none of the second reconstruction
        assert set(joined["ct_series"]) == {
            row[0] for row in r.sql("SELECT SeriesInstanceUID FROM cac_series WHERE is_primary").fetchall()
        }
        # the pitfall the dictionary warns about: measurements' SeriesInstanceUID is the SR's
        naive = r.sql("SELECT count(*) FROM measurements JOIN cac_series USING (SeriesInstanceUID)").fetchone()[0]
        assert naive == 0


def test_the_dictionary_is_self_contained(rel: Path) -> None:
    text = (rel / "DATA_DICTIONARY.md").read_text() + (rel / "data_dictionary.csv").read_text()
    assert "docs/" not in text  # nothing points into the repository
    assert "ON s.SeriesInstanceUID = m.sourceSegmentedSeriesUID" in text and "queries.sql" in text
    assert "`very low` 0-0" in text and "## `exclusions`" in text
    for name in ("CONVENTIONS.md", "queries.sql"):
        assert (rel / name).is_file()
