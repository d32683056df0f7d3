"""Generated table docs are committed and current; every table uses plain Parquet types."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest

from deepcac2.schemas import docs
from deepcac2.schemas.registry import TABLES, get_table

REPO = Path(__file__).resolve().parents[2]
OURS = ("cac_series", "cac_lesions", "measurements", "failures", "runs")


def test_docs_tables_md_is_up_to_date() -> None:
    committed = (REPO / "docs" / "tables.md").read_text()
    assert committed == docs.render(), "regenerate: python -m deepcac2.schemas.docs > docs/tables.md"


def test_docs_list_every_column() -> None:
    text = docs.render()
    for table in TABLES.values():
        assert f"## `{table.name}` (schema version {table.version})" in text
        for c in table.columns:
            assert f"| `{c.name}` |" in text


def _plain(t: pa.DataType) -> bool:
    if pa.types.is_list(t):
        return _plain(t.value_type)
    if pa.types.is_struct(t):  # IDC's code structs in measurements
        return all(_plain(t.field(i).type) for i in range(t.num_fields))
    return (
        pa.types.is_string(t)
        or pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_timestamp(t)
        or pa.types.is_date(t)
    )


@pytest.mark.parametrize("name", OURS)
def test_plain_types_docs_versions_and_keys(name: str) -> None:
    table = get_table(name)
    assert re.fullmatch(r"\d+\.\d+\.\d+", table.version)
    assert len({c.name for c in table.columns}) == len(table.columns)
    for c in table.columns:
        assert _plain(c.type), f"{name}.{c.name} has a non-plain type {c.type}"
        assert c.doc.strip(), f"{name}.{c.name} has no doc"
    for k in table.key:
        assert table.column(k.split(".")[0]).required, f"{name}: key column {k} must be required"
    assert table.arrow.metadata[b"schema_version"] == table.version.encode()


def test_measurements_use_idc_column_names() -> None:
    names = [c.name for c in get_table("measurements").columns]
    idc = [
        "PatientID", "SOPInstanceUID", "SeriesInstanceUID", "SeriesDescription", "measurementGroup_number",
        "segmentationInstanceUID", "segmentationSeriesUID", "segmentationSegmentNumber", "sourceSegmentedSeriesUID",
        "trackingIdentifier", "trackingUniqueIdentifier", "Quantity", "derivationModifier", "Value", "Units",
        "finding", "findingSite", "lateralityModifier",
    ]  # fmt: skip
    assert names[: len(idc)] == idc


def test_cac_series_has_columns_for_every_convention_and_scheme() -> None:
    from deepcac2.pipeline.conventions import CONVENTIONS
    from deepcac2.pipeline.risk_categories import SCHEME_NAMES

    names = {c.name for c in get_table("cac_series").columns}
    for conv in CONVENTIONS:
        assert {f"agatston_{conv}", f"volume_mm3_{conv}", f"mass_mg_{conv}", f"lesion_count_{conv}"} <= names
        assert {f"risk_{s}_{conv}" for s in SCHEME_NAMES} <= names
