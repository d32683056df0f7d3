"""The one column-naming rule (``schemas.docs.NAMING_RULE``), checked against IDC's own index."""

from __future__ import annotations

import re

import idc_index_data
import pyarrow.parquet as pq
import pytest

from deepcac2.pipeline.synth.truth_tables import MANIFEST, TRUTH
from deepcac2.schemas.registry import TABLES

#: IDC names our tables use with IDC's meaning (rule 1)
SAME_AS_IDC = {
    "PatientID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "Modality",
    "SeriesDescription",
    "TransferSyntaxUID",
    "collection_id",
    "crdc_series_uuid",
    "series_aws_url",
    "instanceCount",
}
SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
ALL = {**TABLES, MANIFEST.name: MANIFEST, TRUTH.name: TRUTH}


def idc_index_columns() -> set[str]:
    return set(pq.read_schema(idc_index_data.IDC_INDEX_PARQUET_FILEPATH).names)


@pytest.mark.parametrize("name", sorted(ALL))
def test_columns_follow_the_naming_rule(name: str) -> None:
    idc = idc_index_columns()
    by_lower = {c.lower(): c for c in idc}
    exempt = set()
    if name == "measurements":  # rule 1: IDC's quantitative_measurements names
        from deepcac2.schemas.measurements import IDC_COLUMNS

        exempt = set(IDC_COLUMNS)
    for column in ALL[name].columns:
        c = column.name
        if c.lower() in by_lower:
            assert c == by_lower[c.lower()], f"{name}.{c}: IDC spells it {by_lower[c.lower()]}"
            assert c in SAME_AS_IDC, f"{name}.{c} collides with IDC's index column {c}"
        elif c not in exempt:
            assert SNAKE.match(c), f"{name}.{c} is neither an IDC name nor snake_case"


def test_no_table_keeps_the_old_identifier_names() -> None:
    old = {"series_uid", "study_uid", "patient_id", "manufacturer", "manufacturer_model"}
    for name, table in ALL.items():
        assert not old & {c.name for c in table.columns}, name


def test_a_collision_is_caught() -> None:
    # the rule's test must be able to fail: 'manufacturer' equals IDC's 'Manufacturer' without case
    assert "manufacturer" in {c.lower() for c in idc_index_columns()}
