"""Score columns hold finite numbers: the writer refuses NaN and inf, and QA counts them as out of range."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.convert.parquet_tables import to_arrow
from deepcac2.qa.table_checks import check_ranges
from deepcac2.schemas.registry import get_table

SERIES = get_table("cac_series")
KEY = SERIES.key[0]


def test_every_score_column_is_declared_finite():
    scores = [c for c in SERIES.columns if c.name.startswith(("agatston_", "volume_mm3_", "mass_mg_"))]
    assert scores and all(c.finite for c in scores)
    assert not SERIES.column(KEY).finite  # text, no range


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_the_writer_refuses_a_non_finite_score(bad):
    with pytest.raises(DeepCACError) as err:
        to_arrow(SERIES, [{KEY: "1.2.3", "agatston_deepcac": bad}])
    assert err.value.code is ErrorCode.E_TABLE_WRITE and "agatston_deepcac" in err.value.message


def _row(i: int) -> dict:
    """A row with every required column filled (the values do not matter here)."""
    row = {c.name: ([] if pa.types.is_list(c.type) else "x") for c in SERIES.columns if c.required}
    return {**row, KEY: f"1.2.{i}", "agatston_deepcac": float(i)}


def test_qa_counts_nan_and_inf_as_out_of_range():
    table = to_arrow(SERIES, [_row(i) for i in range(4)])
    index = table.schema.get_field_index("agatston_deepcac")
    values = pa.array([0.0, math.nan, math.inf, 3.0], pa.float64())
    bad = table.set_column(index, table.schema.field(index), values)
    result = next(r for r in check_ranges(bad, SERIES) if r.subject == "cac_series.agatston_deepcac")
    assert not result.passed and result.value == 2.0 and "(finite)" in result.message
    clean = next(r for r in check_ranges(table, SERIES) if r.subject == "cac_series.agatston_deepcac")
    assert clean.passed
