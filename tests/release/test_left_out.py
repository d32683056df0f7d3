"""The release says what it left out (exclusions by rule, failures by code), per series and round and per
participant, counts risk categories per participant, and names its real source (issue #22)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deepcac2.pipeline.cohort.table import exclusions_path
from deepcac2.release.build import build_release
from deepcac2.schemas.cohort import TABLE as COHORT
from deepcac2.schemas.exclusions import TABLE as EXCLUSIONS
from tests.release.runfactory import make_run, series_rows, uid


def _cohort(rows: list[dict], meta: dict[str, str]) -> pa.Table:
    records = [{**r, "instanceCount": 100, "selection_reason": "policy all: passed ct"} for r in rows]
    table = pa.Table.from_pylist([{f.name: r.get(f.name) for f in COHORT.arrow} for r in records], schema=COHORT.arrow)
    return table.replace_schema_metadata(meta)


def _exclusions() -> pa.Table:
    rows = [  # two localizers of one participant (T0, T1) and a thin series of another (T2)
        {"SeriesInstanceUID": "1.9.1", "PatientID": "100000", "study_year": 0, "rule": "not_localizer"},
        {"SeriesInstanceUID": "1.9.2", "PatientID": "100000", "study_year": 1, "rule": "not_localizer"},
        {"SeriesInstanceUID": "1.9.3", "PatientID": "100001", "study_year": 2, "rule": "min_instances_50"},
    ]
    for r in rows:
        r.update(rule_kind="eligibility", description="...")
    return pa.Table.from_pylist(
        [{f.name: r.get(f.name) for f in EXCLUSIONS.arrow} for r in rows], schema=EXCLUSIONS.arrow
    )


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    tmp = tmp_path_factory.mktemp("leftout")
    rows = series_rows(3, [0.0, 50.0, 500.0, 0.0, 0.0, 150.0, 20.0, 20.0, 20.0])
    rows[0]["kernel"] = "B30f"  # DeepCAC's kernel preference makes it the primary series of its round
    second = dict(rows[0], SeriesInstanceUID="1.8.1", agatston_deepcac=900.0, kernel="LUNG")  # T0, 2nd recon
    run = make_run(tmp / "RUN", rows=[*rows, second], images=False)
    failed = {"SeriesInstanceUID": uid("failed", 1), "PatientID": "100002", "StudyInstanceUID": "1.7", "study_year": 1}
    cohort = _cohort([*rows, second, failed], {"policy": "all", "collection": "nlst", "idc_index_data": "21.0.0"})
    pq.write_table(cohort, run / "cohort.parquet")
    pq.write_table(_exclusions(), exclusions_path(run / "cohort.parquet"))
    return build_release(run, "1.0.0", tmp / "REL", dashboard_patients=2), rows


def test_exclusions_ship_and_the_card_counts_rules_and_codes(released) -> None:
    rel, _ = released
    assert pq.read_table(rel / "tables" / "exclusions.parquet").num_rows == 3
    text = (rel / "DATASET_CARD.md").read_text()
    # rule | series | T0 | T1 | T2 | no round | participants
    assert "| `not_localizer` | 2 | 1 | 1 | 0 | 0 | 1 |" in text
    assert "| `min_instances_50` | 1 | 0 | 0 | 1 | 0 | 1 |" in text
    assert "| `E_GEOMETRY_GAP` | 1 | 0 | 1 | 0 | 0 | 1 |" in text  # round and participant from the cohort
    assert "CT series of the IDC collection `nlst`" in text and "NLST low-dose chest CT" in text


def test_categories_per_participant_count_one_series_each(released) -> None:
    rel, _ = released
    text = (rel / "DATASET_CARD.md").read_text()
    section = text.split("Risk categories per participant:", 1)[1].split("Risk categories per series", 1)[0]
    deepcac = section.split("(`deepcac`", 1)[1].split("(`classic`", 1)[0]
    # T0: participants 100000 (0, not its 900 second reconstruction), 100001 (0), 100002 (20)
    assert "| very low | 2 (66.7 %) | 1 (33.3 %) | 0 (0.0 %) |" in deepcac  # T1: 50, 0, 20
    assert "| high | 0 (0.0 %) | 0 (0.0 %) | 1 (33.3 %) |" in deepcac


def test_a_local_cohort_is_named_as_a_folder(tmp_path: Path) -> None:
    rows = series_rows(1)
    run = make_run(tmp_path / "RUN", rows=rows, images=False)
    pq.write_table(_cohort(rows, {"policy": "local", "source_folder": "/data/my_ct"}), run / "cohort.parquet")
    rel = build_release(run, "1.0.0", tmp_path / "REL", dashboard_patients=1)
    text = (rel / "DATASET_CARD.md").read_text()
    assert "local folder of DICOM files (`my_ct`)" in text and "CT series of the IDC collection" not in text
    assert "NLST low-dose chest CT" not in text
    # no exclusions recorded with this cohort: the release still ships the (empty) table and says so
    assert pq.read_table(rel / "tables" / "exclusions.parquet").num_rows == 0
    assert "exclusions were not recorded" in text
    assert pd.read_parquet(rel / "tables" / "exclusions.parquet").columns.tolist() == EXCLUSIONS.arrow.names
